// TUS 1.0.0 at /v1/uploads: @tus/server + @tus/s3-store into MinIO, with the upload's state kept
// in PostgreSQL and the checksum extension (which tus-node-server does not implement) done here.
//
// Extensions: creation, creation-with-upload, creation-defer-length, termination, expiration
// (from S3Store) and checksum (sha1, sha256; per request: a mismatch answers 460 and the body is
// not appended).
//
// Object layout: the tus id is `uploads/<uploadId>` (keys.uploadPrefix), so the store's objects are
// `uploads/upl_….info`, `uploads/upl_…` (the multipart upload) and, between PATCHes that do not end
// on a part boundary, `uploads/upl_….part`. URLs carry only `upl_…`.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { S3Store, type MetadataValue } from '@tus/s3-store';
import { MemoryLocker, Server as TusServer } from '@tus/server';
import { ERRORS, EVENTS, type Upload } from '@tus/utils';
import { NodeRequest, sendNodeResponse } from 'srvx/node';
import { z } from 'zod';
import { newUploadId } from '../common/ids.ts';
import { keys } from '../common/keys.ts';
import type { ApiContext } from './context.ts';
import { requireApiKey, type ApiKey } from './auth.ts';
import { ApiError, errorBody, toHttpError } from './errors.ts';
import { finalizeUpload } from './finalize.ts';
import { PgLocker } from './locker.ts';
import * as repo from './repo.ts';

export const TUS_PATH = '/v1/uploads';
export const CHECKSUM_ALGORITHMS = ['sha1', 'sha256'] as const;

export const uploadIdOfTusId = (tusId: string) => tusId.slice(keys.uploadPrefix.length);
export const tusIdOf = (uploadId: string) => `${keys.uploadPrefix}${uploadId}`;
export const UPLOAD_ID_RE = /^upl_[a-z2-7]{20}$/;

/** A yes/no Upload-Metadata key: `1`/`true` (or the key without a value) is yes, `0`/`false` no. */
const flag = z
  .enum(['1', 'true', '0', 'false'], { error: 'must be 1, true, 0 or false' })
  .nullish()
  .transform((v) => v === null || v === '1' || v === 'true');

/**
 * Upload-Metadata: filename, filetype, optional sha256 (hex, the whole file's), `private` (the
 * video needs its owner's key to be seen; playback URLs carry a signed token) and `dedup` (on
 * finish, a file identical to a live video of the same owner resolves to that video).
 */
export const uploadMetadataSchema = z.object({
  filename: z.string().max(1024).nullish(),
  filetype: z.string().max(255).nullish(),
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'sha256 must be 64 hex digits')
    .transform((s) => s.toLowerCase())
    .nullish(),
  private: flag,
  dedup: flag,
});

export function parseUploadMetadata(meta: Record<string, string | null> | undefined) {
  const r = uploadMetadataSchema.safeParse(meta ?? {});
  if (!r.success) {
    throw new ApiError('INVALID_METADATA', r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  }
  return {
    filename: r.data.filename ?? null,
    filetype: r.data.filetype ?? null,
    sha256: r.data.sha256 ?? null,
    private: r.data.private,
    dedup: r.data.dedup,
  };
}

/** `Upload-Checksum: <algorithm> <base64 digest>` (tus checksum extension). */
export function parseChecksumHeader(value: string): { algorithm: (typeof CHECKSUM_ALGORITHMS)[number]; digest: string } {
  const m = /^\s*([A-Za-z0-9-]+)\s+([A-Za-z0-9+/=]+)\s*$/.exec(value);
  if (!m) throw new ApiError('INVALID_CHECKSUM', 'Upload-Checksum must be "<algorithm> <base64 digest>"');
  const algorithm = m[1]!.toLowerCase();
  if (!(CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw new ApiError('UNSUPPORTED_CHECKSUM_ALGORITHM', `checksum algorithm "${m[1]}" is not supported (use ${CHECKSUM_ALGORITHMS.join(', ')})`);
  }
  const digest = Buffer.from(m[2]!, 'base64');
  const want = algorithm === 'sha1' ? 20 : 32;
  if (digest.length !== want) throw new ApiError('INVALID_CHECKSUM', `a ${algorithm} digest is ${want} bytes, got ${digest.length}`);
  return { algorithm: algorithm as (typeof CHECKSUM_ALGORITHMS)[number], digest: digest.toString('base64') };
}

/**
 * A request body that ends (rather than fails) when the client goes away mid-body: tus then stores
 * what did arrive (whole parts, and the rest as the `.part` object), so the client resumes from
 * there and not from the last whole part. Other errors still fail the body.
 */
async function* bodyUntilClosed(req: http.IncomingMessage): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) yield chunk;
  } catch (err) {
    const code = (err as { code?: string } | null)?.code;
    if (req.destroyed && (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (err as Error)?.message === 'aborted')) return;
    throw err;
  }
}

/** The API key of the tus request being handled (set in handle(), read by the store and hooks). */
const requestKey = new AsyncLocalStorage<ApiKey>();

/** tus verbs that write: they need `Authorization: Bearer <key>` (HEAD and OPTIONS stay open). */
export const TUS_WRITE_METHODS = new Set(['POST', 'PATCH', 'DELETE']);

/** Needs a key: a writing verb, or any verb overridden to one (X-HTTP-Method-Override). */
function isWrite(req: http.IncomingMessage): boolean {
  const override = req.headers['x-http-method-override'];
  const o = typeof override === 'string' ? override.trim().toUpperCase() : '';
  return TUS_WRITE_METHODS.has(req.method ?? '') || TUS_WRITE_METHODS.has(o);
}

/**
 * Memory for upload parts, shared by all PATCHes of the process: sets of part-sized buffers (one
 * filling from a request while the others are on their way to MinIO), reused from PATCH to PATCH. A
 * PATCH takes at least two buffers or none (then it goes through disk), so memory stays bounded
 * however many uploads run and a stalled client never makes another one wait. Copying the
 * request's chunks into the buffers (instead of holding them until their part is sent) lets them
 * die young: held chunks were promoted by the GC and their memory freed only by full collections,
 * which cost more CPU than the copy and let RSS grow by ~100 MB during a 1 GiB upload.
 */
export class PartMemoryBudget {
  #free: number;
  readonly #pool = new Map<number, Buffer[]>();
  constructor(readonly total: number) {
    this.#free = total;
  }
  /** Up to `most` (at least two) buffers of `partSize` bytes, or null when the budget has no room for two. */
  take(partSize: number, most = 2): Buffer[] | null {
    const n = Math.min(most, Math.floor(this.#free / partSize));
    if (n < 2) return null;
    this.#free -= n * partSize;
    const pool = this.#pool.get(partSize) ?? [];
    return Array.from({ length: n }, () => pool.pop() ?? Buffer.allocUnsafeSlow(partSize));
  }
  give(bufs: readonly Buffer[]): void {
    if (bufs.length === 0) return;
    const size = bufs[0]!.length;
    this.#free = Math.min(this.total, this.#free + bufs.length * size);
    const pool = this.#pool.get(size) ?? [];
    this.#pool.set(size, pool);
    // Keep at most what the budget could hand out at once: the pool never outgrows `total`.
    for (const b of bufs) if ((pool.length + 1) * size <= this.total) pool.push(b);
  }
  get free(): number {
    return this.#free;
  }
}

/**
 * Part buffers one PATCH uses at most: one filling, two on their way to MinIO. With one part in
 * flight the API spent a third of a 1 GiB upload waiting for MinIO to store the previous part
 * (bench/upload.ts, debug log "upload parts stored"; lib-storage, the peer, keeps four in flight).
 * Two in flight took TUS / direct from ~0.67 to ~0.9; a fourth buffer added RSS, not speed.
 */
const PART_BUFFERS = 3;

/** S3Store that keeps the uploads table in step with what is durably stored. */
class TrackedS3Store extends S3Store {
  readonly partMemory: PartMemoryBudget;

  constructor(
    options: ConstructorParameters<typeof S3Store>[0],
    private readonly ctx: ApiContext,
  ) {
    super(options);
    this.extensions = [...this.extensions, 'checksum'];
    this.partMemory = new PartMemoryBudget(ctx.opts.partMemoryBytes);
    // Parts and .part objects go with UNSIGNED-PAYLOAD: the SDK would otherwise sha256 every part
    // it gets as a Buffer to sign it (and MinIO hash it again to check), a second full pass over
    // the file next to the whole-file sha256 that is verified on finish (finalize.ts).
    this.client.middlewareStack.add(
      (next, context) => (args) => {
        const req = args.request as { headers?: Record<string, string> };
        if ((context.commandName === 'UploadPartCommand' || context.commandName === 'PutObjectCommand') && req.headers) {
          req.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        }
        return next(args);
      },
      { step: 'build', name: 'voraUnsignedPartPayload' },
    );
  }

  /**
   * The request body to MinIO parts, through memory: S3Store's own uploadParts writes every part to
   * a temp file and reads it back, which on a small host costs as much CPU as the rest of the
   * upload path together. Here one buffer of a pair from the shared budget fills from the request
   * while the other one's part is uploaded; with no pair free the PATCH takes S3Store's disk path. Semantics are S3Store's: full parts are uploaded as they fill;
   * when the body ends, a remainder of at least minPartSize (or the file's last bytes) becomes a
   * part and a smaller one the `.part` object the next PATCH starts from; if the body fails, the
   * unfinished part is dropped and the offset is what was uploaded.
   */
  protected override async uploadParts(metadata: MetadataValue, readStream: Readable, currentPartNumber: number, offset: number): Promise<number> {
    const partSize = this.calcOptimalPartSize(metadata.file.size);
    const bufs = this.partMemory.take(partSize, PART_BUFFERS);
    if (!bufs) return super.uploadParts(metadata, readStream, currentPartNumber, offset);
    const size = metadata.file.size;
    let uploaded = 0;
    let failure: unknown = null;
    // pending[i]: the upload of what buffer i held; it is refilled only once that has settled.
    const pending: (Promise<void> | null)[] = bufs.map(() => null);
    const send = (i: number, body: Buffer) => {
      const partNumber = currentPartNumber++;
      offset += body.length;
      const isFinal = size === offset;
      const p = (async () => {
        if (body.length >= this.minPartSize || isFinal) {
          await this.client.uploadPart({ Bucket: this.bucket, Key: metadata.file.id, UploadId: metadata['upload-id'], PartNumber: partNumber, Body: body });
        } else {
          // The .part object, as S3Store.uploadIncompletePart writes it.
          await this.client.putObject({ Bucket: this.bucket, Key: this.partKey(metadata.file.id, true), Body: body, Tagging: this.useCompleteTag('false') });
        }
        uploaded += body.length;
      })();
      pending[i] = p.catch((err: unknown) => {
        failure ??= err;
      });
    };
    const settled = () => Promise.all(pending);
    // Where the PATCH waited (debug log): on the request body, or on MinIO storing earlier parts.
    const t0 = performance.now();
    let waitStore = 0;
    const waitFor = async (p: Promise<unknown> | null) => {
      if (!p) return;
      const w = performance.now();
      await p;
      waitStore += performance.now() - w;
    };
    try {
      let cur = 0; // the buffer being filled
      let filled = 0;
      for await (const data of readStream as AsyncIterable<Buffer>) {
        let chunk = data;
        while (chunk.length > 0) {
          const n = Math.min(partSize - filled, chunk.length);
          chunk.copy(bufs[cur]!, filled, 0, n);
          filled += n;
          chunk = chunk.subarray(n);
          if (filled === partSize) {
            send(cur, bufs[cur]!);
            cur = (cur + 1) % bufs.length;
            filled = 0;
            await waitFor(pending[cur] ?? null); // that buffer's earlier part is stored: it can be refilled
            if (failure) throw failure;
          }
        }
      }
      if (filled > 0) {
        // A short remainder becomes the .part object, which counts towards the offset: only once
        // every part before it is stored (a part that failed would leave a hole behind it).
        if (filled < this.minPartSize && offset + filled !== size) await waitFor(settled());
        if (failure) throw failure;
        send(cur, bufs[cur]!.subarray(0, filled));
      }
    } catch (err) {
      failure ??= err;
    } finally {
      await waitFor(settled());
      this.partMemory.give(bufs);
    }
    this.ctx.log.debug(
      { id: metadata.file.id, bytes: uploaded, ms: Math.round(performance.now() - t0), waitStoreMs: Math.round(waitStore), buffers: bufs.length },
      'upload parts stored',
    );
    if (failure) throw failure;
    return uploaded;
  }

  /**
   * The stored parts, up to the first missing part number. Parts go to MinIO several at a time, so
   * a PATCH that fails can leave a later part stored behind one that is not: counting it would put
   * the offset past a hole. Cut there, the offset is what is stored contiguously, the next PATCH
   * numbers its parts from the hole on (overwriting the stray part), and completion lists only
   * these parts (S3 drops unlisted ones).
   */
  protected override async retrieveParts(id: string, partNumberMarker?: string): ReturnType<S3Store['retrieveParts']> {
    const parts = await super.retrieveParts(id, partNumberMarker);
    if (partNumberMarker) return parts; // a page of the listing; the first call cuts the whole
    const upTo = parts.findIndex((p, i) => p.PartNumber !== i + 1);
    return upTo < 0 ? parts : parts.slice(0, upTo);
  }

  override async create(upload: Upload): Promise<Upload> {
    const created = await super.create(upload);
    const meta = parseUploadMetadata(upload.metadata);
    await repo.insertUpload(this.ctx.pool, {
      uploadId: uploadIdOfTusId(upload.id),
      size: upload.size ?? null,
      filename: meta.filename,
      filetype: meta.filetype,
      sha256: meta.sha256,
      objectKey: upload.id,
      ownerKeyId: requestKey.getStore()?.id ?? null,
      private: meta.private,
      dedup: meta.dedup,
    });
    return created;
  }

  override async write(src: Readable, id: string, offset: number): Promise<number> {
    const uploadId = uploadIdOfTusId(id);
    await repo.markUploading(this.ctx.pool, uploadId);
    // sha256 of the whole file while it streams in (finalize.ts then need not read it back), as
    // long as this process saw every byte from 0 in order; otherwise the finish re-reads it.
    const digests = this.ctx.streamedDigests;
    let tracked = offset === 0 ? { offset: 0, hash: createHash('sha256') } : digests.get(uploadId);
    if (tracked?.offset !== offset) tracked = undefined;
    digests.delete(uploadId);
    let seen = 0;
    const hashing = tracked;
    const body = hashing
      ? Readable.from(
          (async function* () {
            for await (const chunk of src as AsyncIterable<Buffer>) {
              hashing.hash.update(chunk);
              seen += chunk.length;
              yield chunk;
            }
          })(),
          { objectMode: false },
        )
      : null;
    let newOffset: number;
    try {
      newOffset = await super.write(body ?? src, id, offset);
    } catch (err) {
      // Whatever part of the body was stored counts (S3Store keeps it); record the real offset.
      const stored = await this.getUpload(id).catch(() => null);
      if (stored) await repo.recordOffset(this.ctx.pool, uploadId, stored.offset).catch(() => {});
      throw err;
    }
    if (tracked && offset + seen === newOffset) {
      tracked.offset = newOffset;
      if (digests.size >= 10_000) digests.delete(digests.keys().next().value!); // bounded
      digests.set(uploadId, tracked);
    }
    await repo.recordOffset(this.ctx.pool, uploadId, newOffset);
    return newOffset;
  }

  override async declareUploadLength(id: string, length: number): Promise<void> {
    if (length === 0) throw new ApiError('EMPTY_UPLOAD', 'zero-byte uploads are not accepted');
    await super.declareUploadLength(id, length);
    await repo.declareSize(this.ctx.pool, uploadIdOfTusId(id), length);
  }

  override async remove(id: string): Promise<void> {
    await super.remove(id);
    await repo.failUpload(this.ctx.pool, uploadIdOfTusId(id), 'UPLOAD_TERMINATED', 'the client terminated the upload');
  }

  /** Deferred-length uploads: size parts for our max upload size, not S3's 5 TiB (550 MiB parts). */
  protected override calcOptimalPartSize(size?: number): number {
    return super.calcOptimalPartSize(size ?? this.ctx.opts.maxUploadBytes);
  }
}

export interface TusHandle {
  server: TusServer;
  locker: PgLocker | MemoryLocker;
  handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void>;
  close(): Promise<void>;
}

export function createTus(ctx: ApiContext): TusHandle {
  const { cfg, opts, log } = ctx;
  const store = new TrackedS3Store(
    {
      partSize: opts.partSizeBytes,
      expirationPeriodInMilliseconds: opts.uploadExpiryMs,
      s3ClientConfig: {
        bucket: cfg.s3.bucket,
        endpoint: cfg.s3.endpoint,
        region: cfg.s3.region,
        forcePathStyle: true,
        credentials: { accessKeyId: cfg.s3.accessKeyId, secretAccessKey: cfg.s3.secretAccessKey },
        // No extra CRC32 pass over every part (the SDK's default since 3.729): the whole file's
        // sha256 is checked on finish, and MinIO checks each part's Content-MD5/signature anyway.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      },
    },
    ctx,
  );
  const locker = opts.locker === 'postgres' ? new PgLocker(ctx.lockPool, log, opts.lockTimeoutMs) : new MemoryLocker({ acquireLockTimeout: opts.lockTimeoutMs });

  const server = new TusServer({
    path: TUS_PATH,
    datastore: store,
    locker,
    maxSize: opts.maxUploadBytes,
    disableTerminationForFinishedUploads: true,
    allowedHeaders: ['Upload-Checksum'],
    exposedHeaders: ['Upload-Expires', 'Tus-Checksum-Algorithm', 'Vora-Video-Id', 'Vora-Deduplicated'],
    namingFunction: () => tusIdOf(newUploadId()),
    generateUrl: (_req, { path: p, id }) => `${p}/${uploadIdOfTusId(id)}`, // relative, bare upload id
    getFileIdFromRequest: (_req, lastPath) => (lastPath && UPLOAD_ID_RE.test(lastPath) ? tusIdOf(lastPath) : undefined),
    async onUploadCreate(_req, upload) {
      if (upload.size === 0) throw new ApiError('EMPTY_UPLOAD', 'zero-byte uploads are not accepted (Upload-Length: 0)');
      parseUploadMetadata(upload.metadata);
      return {};
    },
    async onIncomingRequest(req, id) {
      // tus honours X-HTTP-Method-Override: the overriding method is the one that runs.
      const method = req.headers.get('x-http-method-override')?.toUpperCase() ?? req.method;
      if (method !== 'PATCH' && method !== 'HEAD' && method !== 'DELETE') return;
      const row = await repo.getUpload(ctx.pool, uploadIdOfTusId(id));
      if (!row) throw ERRORS.FILE_NOT_FOUND;
      // Only the key that created an upload may write to it or terminate it.
      const key = requestKey.getStore();
      if (method !== 'HEAD' && row.owner_key_id && key?.id !== row.owner_key_id) {
        throw new ApiError('FORBIDDEN', `upload ${row.upload_id} belongs to another API key`);
      }
      if (row.status === 'EXPIRED') throw ERRORS.FILE_NO_LONGER_EXISTS;
      if (row.status === 'FAILED' && method === 'PATCH') {
        throw new ApiError(row.error_code === 'CHECKSUM_MISMATCH' ? 'CHECKSUM_MISMATCH' : 'UPLOAD_FAILED', row.error_message ?? 'the upload failed');
      }
    },
    async onUploadFinish(_req, upload) {
      const done = await finalizeUpload(ctx, uploadIdOfTusId(upload.id), 'wait');
      if (!done) return {};
      return { headers: { 'Vora-Video-Id': done.videoId, ...(done.deduplicated ? { 'Vora-Deduplicated': '1' } : {}) } };
    },
    onResponseError(_req, err) {
      const h = toHttpError(err);
      if (h.unexpected) log.error({ err }, 'tus request failed');
      return { status_code: h.status, body: JSON.stringify(errorBody(h.code, h.message)) };
    },
  });

  // Progress while a long PATCH streams (throttled by tus to postReceiveInterval).
  server.on(EVENTS.POST_RECEIVE, (_req: unknown, upload: Upload) => {
    repo.recordProgress(ctx.pool, uploadIdOfTusId(upload.id), upload.offset).catch(() => {});
  });

  async function respond(res: http.ServerResponse, response: Response): Promise<void> {
    if (response.status >= 400) response.headers.set('Content-Type', 'application/json; charset=utf-8');
    if (response.headers.has('Tus-Extension')) response.headers.set('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','));
    await sendNodeResponse(res, response);
  }

  function errorResponse(err: unknown): Response {
    const h = toHttpError(err);
    if (h.unexpected) log.error({ err }, 'tus request failed');
    const headers: Record<string, string> = { 'Tus-Resumable': '1.0.0', 'Access-Control-Allow-Origin': '*' };
    if (h.status === 401) headers['WWW-Authenticate'] = 'Bearer realm="vora"';
    return new Response(JSON.stringify(errorBody(h.code, h.message)), { status: h.status, headers });
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (!isWrite(req)) return handleAs(req, res);
    let key: ApiKey;
    try {
      key = await requireApiKey(ctx.pool, req.headers);
    } catch (err) {
      if (!req.complete) req.resume(); // drain the body so the client reads the 401
      return respond(res, errorResponse(err));
    }
    return requestKey.run(key, () => handleAs(req, res));
  }

  async function handleAs(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const checksum = req.headers['upload-checksum'];
    if (typeof checksum === 'string' && (req.method === 'PATCH' || req.method === 'POST')) {
      return handleWithChecksum(req, res, checksum);
    }
    try {
      // Bodies (PATCH, creation-with-upload POST) reach tus as a stream of the socket's own
      // Buffers; srvx's NodeRequest adapts with Readable.toWeb, which copies every chunk.
      const request = req.method === 'PATCH' || req.method === 'POST' ? webRequest(req, bodyUntilClosed(req)) : (new NodeRequest({ req, res }) as unknown as Request);
      await respond(res, await server.handleWeb(request));
    } catch (err) {
      await respond(res, errorResponse(err));
    }
  }

  /** A fetch Request for tus with `body` as is (ReadableStream.from: chunks pass by reference). */
  function webRequest(req: http.IncomingMessage, body: AsyncIterable<Buffer>, override?: { drop: string; contentLength: number }): Request {
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) {
      if (v === undefined || k === override?.drop) continue;
      headers.set(k, Array.isArray(v) ? v.join(', ') : v);
    }
    if (override) headers.set('content-length', String(override.contentLength));
    const host = req.headers.host ?? `${cfg.host}:${cfg.ports.api}`;
    let url: URL;
    try {
      url = new URL(req.url ?? '/', `http://${host}`);
    } catch {
      url = new URL(req.url ?? '/', `http://${cfg.host}:${cfg.ports.api}`); // a malformed Host header
    }
    return new Request(url, { method: req.method, headers, body: ReadableStream.from(body), duplex: 'half' } as RequestInit);
  }

  /**
   * Checksum extension: the request body is spooled to a temp file while hashing; only a body whose
   * digest matches goes on to tus (and so into the store). A mismatch answers 460 and stores nothing.
   */
  async function handleWithChecksum(req: http.IncomingMessage, res: http.ServerResponse, header: string): Promise<void> {
    let tmp: string | null = null;
    try {
      const want = parseChecksumHeader(header);
      const declared = Number(req.headers['content-length'] ?? NaN);
      if (Number.isFinite(declared) && declared > opts.maxUploadBytes) throw ERRORS.ERR_MAX_SIZE_EXCEEDED;
      tmp = path.join(os.tmpdir(), `vora-chunk-${process.pid}-${Math.random().toString(36).slice(2)}`);
      const hash = createHash(want.algorithm);
      let received = 0;
      await pipelineAsync(
        req,
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            received += chunk.length;
            if (received > opts.maxUploadBytes) throw ERRORS.ERR_MAX_SIZE_EXCEEDED;
            hash.update(chunk);
            yield chunk;
          }
        },
        fs.createWriteStream(tmp),
      );
      const got = hash.digest('base64');
      if (got !== want.digest) {
        throw new ApiError('CHECKSUM_MISMATCH', `${want.algorithm} of the request body is ${got}, Upload-Checksum says ${want.digest}; nothing was stored`);
      }
      await respond(res, await server.handleWeb(webRequest(req, fs.createReadStream(tmp), { drop: 'upload-checksum', contentLength: received })));
    } catch (err) {
      if (!req.complete) req.resume(); // drain what the client still sends so it can read the answer
      await respond(res, errorResponse(err));
    } finally {
      if (tmp) fs.rm(tmp, { force: true }, () => {});
    }
  }

  return {
    server,
    locker,
    handle,
    async close() {
      if (locker instanceof PgLocker) await locker.close();
    },
  };
}
