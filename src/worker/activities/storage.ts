// Moving files between the worker's scratch dir and MinIO.
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type HeadObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';

const CONTENT_TYPES: Record<string, string> = {
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.m4s': 'video/iso.segment',
  '.mp4': 'video/mp4',
  '.ts': 'video/mp2t',
  '.vtt': 'text/vtt',
  '.jpg': 'image/jpeg',
  '.json': 'application/json',
};

export const contentTypeOf = (file: string) => CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream';

/** Downloads an object to a local file unless a complete copy is already there (same size). */
export async function downloadObject(s3: S3Client, bucket: string, key: string, file: string): Promise<void> {
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  if (fs.existsSync(file) && fs.statSync(file).size === head.ContentLength) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const tmp = `${file}.part`;
  await pipeline(res.Body as Readable, fs.createWriteStream(tmp));
  fs.renameSync(tmp, file); // never leave a half-downloaded file under the final name
}

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : [p];
  });
}

/**
 * Puts every file under dir to prefix + relative path. Playlists go last, so a playlist is never
 * visible before the segments it names.
 */
export async function uploadDirectory(s3: S3Client, bucket: string, dir: string, prefix: string, signal?: AbortSignal): Promise<number> {
  const files = walk(dir).sort((a, b) => Number(a.endsWith('.m3u8')) - Number(b.endsWith('.m3u8')));
  const isPlaylist = (f: string) => f.endsWith('.m3u8');
  const put = (file: string) =>
    s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: prefix + path.relative(dir, file).split(path.sep).join('/'),
        Body: fs.readFileSync(file),
        ContentType: contentTypeOf(file),
      }),
      { abortSignal: signal },
    );
  const media = files.filter((f) => !isPlaylist(f));
  for (let i = 0; i < media.length; i += 8) await Promise.all(media.slice(i, i + 8).map(put));
  // Media playlists before the master.
  const playlists = files.filter(isPlaylist).sort((a, b) => Number(path.basename(a) === 'master.m3u8') - Number(path.basename(b) === 'master.m3u8'));
  for (const f of playlists) await put(f);
  return files.length;
}

export async function putFile(s3: S3Client, bucket: string, key: string, file: string, contentType = contentTypeOf(file)): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: fs.readFileSync(file), ContentType: contentType }));
}

export async function putText(s3: S3Client, bucket: string, key: string, text: string, contentType: string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: text, ContentType: contentType }));
}

export const putJson = (s3: S3Client, bucket: string, key: string, value: unknown) =>
  putText(s3, bucket, key, JSON.stringify(value), 'application/json');

export async function getJson<T>(s3: S3Client, bucket: string, key: string): Promise<T> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return JSON.parse(await res.Body!.transformToString()) as T;
}

/** HEAD of an object, or null when it does not exist. */
export async function headObject(s3: S3Client, bucket: string, key: string): Promise<HeadObjectCommandOutput | null> {
  try {
    return await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  } catch (err) {
    const name = (err as { name?: string }).name;
    if (name === 'NotFound' || name === 'NoSuchKey') return null;
    throw err;
  }
}

/** Deletes every object under prefix (1000 per request). */
export async function deletePrefix(s3: S3Client, bucket: string, prefix: string): Promise<number> {
  let deleted = 0;
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    const objects = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (objects.length) {
      await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }));
      deleted += objects.length;
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return deleted;
}
