// Object-store operations the API needs beyond tus: hash an object by streaming it, copy it to its
// final key (server-side; multipart copy above S3's 5 GiB single-copy limit), delete by prefix.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

/** S3's limit for a single CopyObject. */
export const MAX_SINGLE_COPY_BYTES = 5 * 1024 ** 3;
/** Part size of a multipart copy: 20 GiB -> 40 parts (S3 allows 10,000; parts >= 5 MiB). */
export const COPY_PART_BYTES = 512 * 1024 ** 2;

export async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch {
    try {
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw err;
    }
  }
}

export async function objectSize(s3: S3Client, bucket: string, key: string): Promise<number | null> {
  try {
    const h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return h.ContentLength ?? 0;
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

export function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}

/** sha256 (hex) and length of an object, streamed (constant memory for any size). */
export async function hashObject(s3: S3Client, bucket: string, key: string): Promise<{ sha256: string; size: number }> {
  const obj = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of obj.Body as Readable) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

/**
 * Server-side copy `src` -> `dst`. Objects above `singleCopyLimit` (S3: 5 GiB) are copied with
 * UploadPartCopy in `partBytes` ranges, a few at a time. Re-running it just copies again (idempotent).
 */
export async function copyObject(
  s3: S3Client,
  bucket: string,
  src: string,
  dst: string,
  size: number,
  opts: { singleCopyLimit?: number; partBytes?: number; concurrency?: number } = {},
): Promise<void> {
  const limit = opts.singleCopyLimit ?? MAX_SINGLE_COPY_BYTES;
  const copySource = `${bucket}/${src.split('/').map(encodeURIComponent).join('/')}`;
  if (size <= limit) {
    await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: dst, CopySource: copySource }));
    return;
  }
  const partBytes = opts.partBytes ?? COPY_PART_BYTES;
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: dst }));
  try {
    const ranges: { n: number; start: number; end: number }[] = [];
    for (let start = 0, n = 1; start < size; start += partBytes, n++) {
      ranges.push({ n, start, end: Math.min(start + partBytes, size) - 1 });
    }
    const parts: { PartNumber: number; ETag: string }[] = [];
    let next = 0;
    const worker = async () => {
      while (next < ranges.length) {
        const r = ranges[next++]!;
        const out = await s3.send(
          new UploadPartCopyCommand({
            Bucket: bucket,
            Key: dst,
            UploadId,
            PartNumber: r.n,
            CopySource: copySource,
            CopySourceRange: `bytes=${r.start}-${r.end}`,
          }),
        );
        parts.push({ PartNumber: r.n, ETag: out.CopyPartResult!.ETag! });
      }
    };
    await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 4, ranges.length) }, worker));
    parts.sort((a, b) => a.PartNumber - b.PartNumber);
    await s3.send(
      new CompleteMultipartUploadCommand({ Bucket: bucket, Key: dst, UploadId, MultipartUpload: { Parts: parts } }),
    );
  } catch (err) {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: dst, UploadId })).catch(() => {});
    throw err;
  }
}

export async function deleteKeys(s3: S3Client, bucket: string, keysToDelete: string[]): Promise<void> {
  for (let i = 0; i < keysToDelete.length; i += 1000) {
    const batch = keysToDelete.slice(i, i + 1000);
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
  }
}

/** Deletes every object under `prefix`; returns how many. */
export async function deletePrefix(s3: S3Client, bucket: string, prefix: string): Promise<number> {
  let token: string | undefined;
  let n = 0;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    const found = (page.Contents ?? []).map((o) => o.Key!).filter(Boolean);
    await deleteKeys(s3, bucket, found);
    n += found.length;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return n;
}

/**
 * Aborts multipart uploads under `prefix` started before `olderThan` (only there: the bucket is
 * shared with the worker's own uploads). Returns the aborted keys. The prefix is applied here, not
 * in the request: MinIO's ListMultipartUploads matches `Prefix` against whole object names only
 * (`uploads/` lists nothing), while no prefix lists every upload in the bucket.
 */
export async function abortStaleMultipartUploads(s3: S3Client, bucket: string, prefix: string, olderThan: Date): Promise<string[]> {
  const aborted: string[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const page = await s3.send(
      new ListMultipartUploadsCommand({ Bucket: bucket, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
    );
    for (const u of page.Uploads ?? []) {
      if (!u.Key?.startsWith(prefix) || !u.UploadId || !u.Initiated || u.Initiated >= olderThan) continue;
      await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId })).catch((err) => {
        if (!isNotFound(err)) throw err;
      });
      aborted.push(u.Key);
    }
    if (!page.IsTruncated) return aborted;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
  }
}
