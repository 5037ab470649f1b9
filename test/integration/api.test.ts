// The API against REAL PostgreSQL, MinIO and a Temporal dev server (started by api-support.ts in a
// temp dir; no worker runs: workflows are started and stay RUNNING). tus-js-client uploads through
// the real HTTP server started in-process by createApi().
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import * as tus from 'tus-js-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApi, type Api } from '../../src/api/app.ts';
import { createApiKey, ensureBootstrapKey, readApiKeyFile, revokeApiKey } from '../../src/api/auth.ts';
import { videoIdForUpload } from '../../src/api/finalize.ts';
import { PgLocker } from '../../src/api/locker.ts';
import { copyObject, ensureBucket, hashObject } from '../../src/api/objects.ts';
import { uploadViewSchema, videoViewSchema } from '../../src/api/schemas.ts';
import { loadConfig, type VoraConfig } from '../../src/common/config.ts';
import { verifyPlaybackToken } from '../../src/common/playback-token.ts';
import { createPool, type Pool } from '../../src/common/db.ts';
import { newUploadId, workflowIdFor } from '../../src/common/ids.ts';
import { keys } from '../../src/common/keys.ts';
import { createLogger } from '../../src/common/log.ts';
import { createS3 } from '../../src/common/s3.ts';
import { startServices, type Services } from './api-support.ts';

const MiB = 1024 * 1024;
const MAX = 48 * MiB;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const b64 = (algo: string, b: Buffer) => createHash(algo).update(b).digest('base64');

let svc: Services;
let cfg: VoraConfig;
let pool: Pool;
let s3: S3Client;
let connection: Connection;
let temporal: Client;
let api: Api;
let base: string;
/** An API key made for the tests (createApiKey); writes send it. */
let apiKey: string;
let apiKeyId: string;
const auth = (key = apiKey): Record<string, string> => ({ Authorization: `Bearer ${key}` });

async function startApi(options: Parameters<typeof createApi>[0]['options'] = {}) {
  const a = await createApi({
    config: cfg,
    pool,
    s3,
    temporal,
    logger: createLogger('api-test', process.env.VORA_LOG_LEVEL ?? 'warn'),
    options: { maxUploadBytes: MAX, sweepIntervalMs: 0, reconcileIntervalMs: 0, ...options },
  });
  return { api: a, base: await a.listen(0, '127.0.0.1') };
}

beforeAll(async () => {
  svc = await startServices();
  // No Varnish and no ClickHouse in these tests: port 1 refuses (BAN is tolerated, analytics 503).
  cfg = loadConfig({ ...svc.env, VORA_PLAYBACK_URL: 'http://127.0.0.1:1', VORA_CLICKHOUSE_URL: 'http://127.0.0.1:1', VORA_PLAYBACK_SECRET: 'api-test-secret' });
  pool = createPool(cfg);
  s3 = createS3(cfg);
  await ensureBucket(s3, cfg.s3.bucket);
  connection = await Connection.connect({ address: cfg.temporal.address });
  temporal = new Client({ connection, namespace: cfg.temporal.namespace });
  // The first key comes from the start-up bootstrap (as in src/api/main.ts), written to the data dir.
  const boot = await ensureBootstrapKey(pool, cfg.dataDir);
  if (!boot) throw new Error('a fresh database must get a bootstrap key');
  ({ key: apiKey, id: apiKeyId } = boot);
  ({ api, base } = await startApi());
}, 180_000);

afterAll(async () => {
  await api?.close();
  await connection?.close();
  await pool?.end();
  await svc?.stop();
}, 60_000);

type TusOpts = Partial<tus.UploadOptions> & { endpoint?: string };

/** tus-js-client upload of a buffer; resolves with the upload id, rejects with the tus error. */
function tusUpload(data: Buffer, metadata: Record<string, string>, opts: TusOpts = {}): Promise<{ uploadId: string; upload: tus.Upload }> {
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(data, {
      endpoint: `${base}/v1/uploads`,
      metadata: { filename: 'random.bin', filetype: 'application/octet-stream', ...metadata },
      chunkSize: 8 * MiB,
      retryDelays: [0, 200, 500],
      headers: auth(),
      onError: reject,
      onSuccess: () => resolve({ uploadId: upload.url!.split('/').pop()!, upload }),
      ...opts,
    });
    upload.start();
  });
}

async function json(path: string, init?: RequestInit): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

async function tusCreate(length: number | 'defer', metadata = 'filename dGVzdA=='): Promise<{ status: number; location: string | null; body: string }> {
  const res = await fetch(`${base}/v1/uploads`, {
    method: 'POST',
    headers: {
      'Tus-Resumable': '1.0.0', ...auth(),
      ...(length === 'defer' ? { 'Upload-Defer-Length': '1' } : { 'Upload-Length': String(length) }),
      'Upload-Metadata': metadata,
    },
  });
  return { status: res.status, location: res.headers.get('location'), body: await res.text() };
}

async function tusPatch(url: string, offset: number, body: Buffer, headers: Record<string, string> = {}) {
  const res = await fetch(new URL(url, base), {
    method: 'PATCH',
    headers: { 'Tus-Resumable': '1.0.0', ...auth(), 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream', ...headers },
    body,
  });
  return { status: res.status, offset: res.headers.get('upload-offset'), body: await res.text(), headers: res.headers };
}

async function tusHead(url: string) {
  const res = await fetch(new URL(url, base), { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0', ...auth() } });
  return { status: res.status, offset: res.headers.get('upload-offset'), length: res.headers.get('upload-length') };
}

async function until<T>(fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The verified tus object is the video's source in place (videos.source_key): no copy. */
const sourceKeyOf = (uploadId: string) => `${keys.uploadPrefix}${uploadId}`;

async function videoCountForUpload(uploadId: string): Promise<number> {
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM videos WHERE upload_id = $1', [uploadId]);
  return rows[0].n;
}

async function objectExists(key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: cfg.s3.bucket, Key: key }));
    return true;
  } catch {
    return false;
  }
}

describe('API keys', () => {
  it('the bootstrap key is written to ${dataDir}/api-key (0600) once; hashed in the table', async () => {
    const file = path.join(cfg.dataDir, 'api-key');
    expect(readApiKeyFile(cfg.dataDir)).toBe(apiKey);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(await ensureBootstrapKey(pool, cfg.dataDir)).toBeNull(); // keys exist: nothing new
    const { rows } = await pool.query('SELECT hash FROM api_keys WHERE id = $1', [apiKeyId]);
    expect(rows[0].hash).toBe(sha256(Buffer.from(apiKey)));
  });

  it('tus writes need a live key (401 JSON); HEAD, OPTIONS and GET stay open', async () => {
    const create = (headers: Record<string, string>) =>
      fetch(`${base}/v1/uploads`, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '10', ...headers } });
    const none = await create({});
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(((await none.json()) as any).error.code).toBe('UNAUTHORIZED');
    const revoked = await createApiKey(pool, 'revoked');
    await revokeApiKey(pool, revoked.id);
    for (const h of [auth('vora_' + 'x'.repeat(43)), auth(revoked.key), { Authorization: 'Basic abc' }]) {
      const r = await create(h);
      expect(r.status).toBe(401);
      expect(((await r.json()) as any).error.code).toBe('UNAUTHORIZED');
    }
    // an upload made with the key: PATCH/DELETE without it are 401, even when overridden from HEAD
    const c = await tusCreate(10);
    expect(c.status).toBe(201);
    const url = new URL(c.location!, base);
    const p = await fetch(url, { method: 'PATCH', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, body: Buffer.alloc(10) });
    expect(p.status).toBe(401);
    const sneaky = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0', 'X-HTTP-Method-Override': 'DELETE' } });
    expect(sneaky.status).toBe(401);
    expect((await tusHead(c.location!)).status).toBe(200);
    const uploadId = c.location!.split('/').pop()!;
    expect((await json(`/v1/uploads/${uploadId}`)).body.status).toBe('CREATED');
    expect((await fetch(`${base}/v1/uploads`, { method: 'OPTIONS' })).status).toBe(204);
  });

  it("another key may not write to or terminate someone else's upload (403)", async () => {
    const other = await createApiKey(pool, 'other');
    const c = await tusCreate(10);
    const patch = await tusPatch(c.location!, 0, Buffer.alloc(10), auth(other.key));
    expect(patch.status).toBe(403);
    expect(JSON.parse(patch.body).error.code).toBe('FORBIDDEN');
    const del = await fetch(new URL(c.location!, base), { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0', ...auth(other.key) } });
    expect(del.status).toBe(403);
    expect((await tusPatch(c.location!, 0, Buffer.alloc(10))).status).toBe(204);
  });

  it('an upload records its key as the owner of the upload and of the video', async () => {
    const { uploadId } = await tusUpload(randomBytes(2000), {});
    const { rows } = await pool.query(
      'SELECT u.owner_key_id AS u, v.owner_key_id AS v FROM uploads u JOIN videos v ON v.upload_id = u.upload_id WHERE u.upload_id = $1',
      [uploadId],
    );
    expect(rows[0]).toEqual({ u: apiKeyId, v: apiKeyId });
    const st = await json(`/v1/uploads/${uploadId}`);
    expect(uploadViewSchema.parse(st.body)).toEqual(st.body);
    const v = await json(`/v1/videos/${st.body.videoId}`);
    expect(videoViewSchema.parse(v.body)).toEqual(v.body);
  });
});

describe('private videos', () => {
  it("need their owner's key; the playback URL carries a token the gateway can verify", async () => {
    const { uploadId } = await tusUpload(randomBytes(3000), { private: '1' });
    const videoId = videoIdForUpload(uploadId);
    expect((await json(`/v1/uploads/${uploadId}`)).body).toMatchObject({ status: 'UPLOADED', videoId, private: true });
    expect((await pool.query('SELECT private FROM videos WHERE video_id = $1', [videoId])).rows[0].private).toBe(true);

    expect(await json(`/v1/videos/${videoId}`)).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHORIZED' } } });
    const other = await createApiKey(pool, 'stranger');
    expect(await json(`/v1/videos/${videoId}`, { headers: auth(other.key) })).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN' } } });
    expect(await json(`/v1/videos/${videoId}/analytics`)).toMatchObject({ status: 401 });
    const mine = await json(`/v1/videos/${videoId}`, { headers: auth() });
    expect(mine.body).toMatchObject({ videoId, private: true, playbackUrl: null });

    await pool.query(`UPDATE videos SET state = 'READY' WHERE video_id = $1`, [videoId]);
    const ready = await json(`/v1/videos/${videoId}`, { headers: auth() });
    const url = new URL(ready.body.playbackUrl);
    expect(`${url.origin}${url.pathname}`).toBe(`${cfg.playbackUrl}/hls/${videoId}/master.m3u8`);
    const token = url.searchParams.get('token')!;
    const now = Math.floor(Date.now() / 1000);
    expect(verifyPlaybackToken(cfg.playbackSecret, token, videoId, now)).toBe(true);
    expect(verifyPlaybackToken(cfg.playbackSecret, token, videoId, now + 6 * 3600 + 60)).toBe(false); // ~6 h
    expect(verifyPlaybackToken(cfg.playbackSecret, token, `vid_${'c'.repeat(20)}`, now)).toBe(false);

    // listed to the owner only
    const anon = await json('/v1/videos?limit=100');
    expect(anon.body.videos.map((v: any) => v.videoId)).not.toContain(videoId);
    const owner = await json('/v1/videos?limit=100', { headers: auth() });
    expect(owner.body.videos.map((v: any) => v.videoId)).toContain(videoId);
    // and deleted by the owner only
    expect((await fetch(`${base}/v1/videos/${videoId}`, { method: 'DELETE', headers: auth(other.key) })).status).toBe(403);
  });
});

describe('dedup', () => {
  it('dedup=1: the same file again by the same owner answers with the existing video; nothing new is made', async () => {
    const data = randomBytes(9 * MiB + 77);
    const first = await tusUpload(data, { sha256: sha256(data), dedup: '1' });
    const videoId = videoIdForUpload(first.uploadId);
    expect((await json(`/v1/uploads/${first.uploadId}`)).body).toMatchObject({ status: 'UPLOADED', videoId, deduplicated: false });

    let finishHeaders: Record<string, string | undefined> = {};
    const second = await tusUpload(data, { sha256: sha256(data), dedup: '1' }, {
      onAfterResponse(req, res) {
        if (req.getMethod() === 'PATCH') finishHeaders = { video: res.getHeader('Vora-Video-Id'), dedup: res.getHeader('Vora-Deduplicated') };
      },
    });
    expect(finishHeaders).toEqual({ video: videoId, dedup: '1' });
    const st = await json(`/v1/uploads/${second.uploadId}`);
    expect(st.body).toMatchObject({ status: 'UPLOADED', videoId, deduplicated: true, bytesUploaded: data.length });
    const own = videoIdForUpload(second.uploadId);
    expect(await videoCountForUpload(second.uploadId)).toBe(0);
    expect(await objectExists(keys.source(own))).toBe(false);
    expect(await objectExists(`${keys.uploadPrefix}${second.uploadId}`)).toBe(false);
    await expect(temporal.workflow.getHandle(workflowIdFor(own)).describe()).rejects.toThrow();
    // a repeated finish keeps answering the existing video
    expect(await api.finalize(second.uploadId)).toMatchObject({ videoId, deduplicated: true, workflowStarted: false });
    expect(await videoCountForUpload(second.uploadId)).toBe(0);

    // without dedup=1, or by another key, or once the existing video FAILED: a new video
    const plain = await tusUpload(data, { sha256: sha256(data) });
    expect((await json(`/v1/uploads/${plain.uploadId}`)).body.videoId).toBe(videoIdForUpload(plain.uploadId));
    const other = await createApiKey(pool, 'dedup-other');
    const theirs = await tusUpload(data, { dedup: '1' }, { headers: auth(other.key) });
    expect((await json(`/v1/uploads/${theirs.uploadId}`)).body.videoId).toBe(videoIdForUpload(theirs.uploadId));
    await pool.query(`UPDATE videos SET state = 'FAILED' WHERE video_id IN ($1, $2)`, [videoId, videoIdForUpload(plain.uploadId)]);
    const after = await tusUpload(data, { dedup: '1' });
    expect((await json(`/v1/uploads/${after.uploadId}`)).body).toMatchObject({ videoId: videoIdForUpload(after.uploadId), deduplicated: false });
    expect(await videoCountForUpload(after.uploadId)).toBe(1);
  });
});

describe('tus protocol surface', () => {
  it('OPTIONS advertises version, extensions, max size and checksum algorithms', async () => {
    const res = await fetch(`${base}/v1/uploads`, { method: 'OPTIONS' });
    expect(res.status).toBe(204);
    expect(res.headers.get('tus-version')).toBe('1.0.0');
    const ext = res.headers.get('tus-extension')!.split(',');
    for (const e of ['creation', 'creation-with-upload', 'termination', 'checksum', 'expiration', 'creation-defer-length']) {
      expect(ext).toContain(e);
    }
    expect(res.headers.get('tus-max-size')).toBe(String(MAX));
    expect(res.headers.get('tus-checksum-algorithm')).toBe('sha1,sha256');
  });

  it('rejects an upload above the max size with 413 before storing anything', async () => {
    const before = await pool.query('SELECT count(*)::int AS n FROM uploads');
    const r = await tusCreate(MAX + 1);
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body).error.code).toBe('UPLOAD_TOO_LARGE');
    const after = await pool.query('SELECT count(*)::int AS n FROM uploads');
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });

  it('rejects a zero-byte upload with EMPTY_UPLOAD', async () => {
    const r = await tusCreate(0);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).error.code).toBe('EMPTY_UPLOAD');
  });

  it('rejects bad sha256 metadata with INVALID_METADATA', async () => {
    const r = await tusCreate(10, `sha256 ${Buffer.from('nothex').toString('base64')}`);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).error.code).toBe('INVALID_METADATA');
  });

  it('requires Tus-Resumable (412, JSON error)', async () => {
    const res = await fetch(`${base}/v1/uploads`, { method: 'POST', headers: { 'Upload-Length': '5', ...auth() } });
    expect(res.status).toBe(412);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
  });

  it('per-request checksum: a mismatch is 460 and appends nothing; a match appends', async () => {
    const data = randomBytes(1000);
    const c = await tusCreate(data.length);
    expect(c.status).toBe(201);
    expect(c.location).toMatch(/^\/v1\/uploads\/upl_[a-z2-7]{20}$/);
    const first = data.subarray(0, 400);

    const bad = await tusPatch(c.location!, 0, first, { 'Upload-Checksum': `sha256 ${b64('sha256', randomBytes(8))}` });
    expect(bad.status).toBe(460);
    expect(JSON.parse(bad.body).error.code).toBe('CHECKSUM_MISMATCH');
    expect((await tusHead(c.location!)).offset).toBe('0');

    const md5 = await tusPatch(c.location!, 0, first, { 'Upload-Checksum': `md5 ${b64('md5', first)}` });
    expect(md5.status).toBe(400);
    expect(JSON.parse(md5.body).error.code).toBe('UNSUPPORTED_CHECKSUM_ALGORITHM');

    const ok1 = await tusPatch(c.location!, 0, first, { 'Upload-Checksum': `sha1 ${b64('sha1', first)}` });
    expect(ok1.status).toBe(204);
    expect(ok1.offset).toBe('400');
    const uploadId = c.location!.split('/').pop()!;
    let st = await json(`/v1/uploads/${uploadId}`);
    expect(st.body).toMatchObject({ uploadId, status: 'UPLOADING', bytesUploaded: 400, size: 1000, videoId: null, error: null });

    const rest = data.subarray(400);
    const ok2 = await tusPatch(c.location!, 400, rest, { 'Upload-Checksum': `sha256 ${b64('sha256', rest)}` });
    expect(ok2.status).toBe(204);
    expect(ok2.offset).toBe('1000');
    st = await json(`/v1/uploads/${uploadId}`);
    expect(st.body).toMatchObject({ status: 'UPLOADED', bytesUploaded: 1000, videoId: videoIdForUpload(uploadId) });
    const src = await hashObject(s3, cfg.s3.bucket, sourceKeyOf(uploadId));
    expect(src.sha256).toBe(sha256(data));
  });

  it('the whole-file sha256 is computed while the bytes stream in (in order, one process), and used up by the finish', async () => {
    const data = randomBytes(9 * MiB);
    const c = await tusCreate(data.length, `sha256 ${Buffer.from(sha256(data)).toString('base64')}`);
    const uploadId = c.location!.split('/').pop()!;
    expect((await tusPatch(c.location!, 0, data.subarray(0, 8 * MiB))).status).toBe(204);
    expect(api.ctx.streamedDigests.get(uploadId)?.offset).toBe(8 * MiB);
    expect((await tusPatch(c.location!, 8 * MiB, data.subarray(8 * MiB))).status).toBe(204);
    expect(api.ctx.streamedDigests.has(uploadId)).toBe(false);
    expect((await json(`/v1/uploads/${uploadId}`)).body).toMatchObject({ status: 'UPLOADED', videoId: videoIdForUpload(uploadId) });
    // a PATCH that does not continue where this process's hash stopped drops it (read back instead)
    const other = await tusCreate(100);
    await tusPatch(other.location!, 0, randomBytes(10));
    const otherId = other.location!.split('/').pop()!;
    api.ctx.streamedDigests.get(otherId)!.offset = 5; // as if another process had taken bytes
    await tusPatch(other.location!, 10, randomBytes(10));
    expect(api.ctx.streamedDigests.has(otherId)).toBe(false);
  });

  it('creation-with-upload stores a small file in the POST itself', async () => {
    const data = randomBytes(3000);
    const res = await fetch(`${base}/v1/uploads`, {
      method: 'POST',
      headers: {
        'Tus-Resumable': '1.0.0', ...auth(),
        'Upload-Length': String(data.length),
        'Upload-Metadata': `sha256 ${Buffer.from(sha256(data)).toString('base64')}`,
        'Content-Type': 'application/offset+octet-stream',
      },
      body: data,
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('upload-offset')).toBe('3000');
    const uploadId = res.headers.get('location')!.split('/').pop()!;
    expect(res.headers.get('vora-video-id')).toBe(videoIdForUpload(uploadId));
    expect((await json(`/v1/uploads/${uploadId}`)).body.status).toBe('UPLOADED');
  });

  it('creation-defer-length: the length is declared on a later PATCH', async () => {
    const data = randomBytes(2048);
    const c = await tusCreate('defer');
    expect(c.status).toBe(201);
    const h = await fetch(new URL(c.location!, base), { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0', ...auth() } });
    expect(h.headers.get('upload-defer-length')).toBe('1');
    const p = await tusPatch(c.location!, 0, data, { 'Upload-Length': String(data.length) });
    expect(p.status).toBe(204);
    const st = await json(`/v1/uploads/${c.location!.split('/').pop()}`);
    expect(st.body).toMatchObject({ status: 'UPLOADED', size: 2048 });
  });

  it('termination: DELETE removes an unfinished upload and marks it FAILED', async () => {
    const c = await tusCreate(100);
    await tusPatch(c.location!, 0, randomBytes(10));
    const del = await fetch(new URL(c.location!, base), { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0', ...auth() } });
    expect(del.status).toBe(204);
    expect((await tusHead(c.location!)).status).toBe(404);
    const st = await json(`/v1/uploads/${c.location!.split('/').pop()}`);
    expect(st.body).toMatchObject({ status: 'FAILED', error: { code: 'UPLOAD_TERMINATED' } });
  });
});

describe('upload -> video -> workflow', () => {
  let uploadId: string;
  let videoId: string;
  const data = randomBytes(20 * MiB + 12345); // three 8 MiB parts, the last one short

  it('tus-js-client upload with sha256 ends UPLOADED with one video and one workflow', async () => {
    ({ uploadId } = await tusUpload(data, { sha256: sha256(data) }));
    expect(uploadId).toMatch(/^upl_[a-z2-7]{20}$/);
    const st = await json(`/v1/uploads/${uploadId}`);
    expect(st.status).toBe(200);
    videoId = st.body.videoId;
    expect(st.body).toEqual({
      uploadId,
      status: 'UPLOADED',
      bytesUploaded: data.length,
      size: data.length,
      videoId: videoIdForUpload(uploadId),
      error: null,
      filename: 'random.bin',
      filetype: 'application/octet-stream',
      private: false,
      deduplicated: false,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      expiresAt: null,
    });
    // the stored source is byte-identical
    const src = await hashObject(s3, cfg.s3.bucket, sourceKeyOf(uploadId));
    expect(src).toEqual({ sha256: sha256(data), size: data.length });
    // no copy: the tus object is the source, nothing under sources/; HEAD still answers "complete"
    expect(await objectExists(keys.source(videoId))).toBe(false);
    const head = await tusHead(`/v1/uploads/${uploadId}`);
    expect(head).toMatchObject({ status: 200, offset: String(data.length), length: String(data.length) });

    expect(await videoCountForUpload(uploadId)).toBe(1);
    const { rows } = await pool.query('SELECT * FROM videos WHERE video_id = $1', [videoId]);
    expect(rows[0]).toMatchObject({ upload_id: uploadId, state: 'PROCESSING', workflow_id: workflowIdFor(videoId), source_key: sourceKeyOf(uploadId) });
    const d = await temporal.workflow.getHandle(workflowIdFor(videoId)).describe();
    expect(d.type).toBe('VideoProcessingWorkflow');
    expect(d.taskQueue).toBe(cfg.temporal.taskQueue);
    expect(d.status.name).toBe('RUNNING');
  });

  it('the finish hook run again (twice, concurrently) yields the same one video and workflow run', async () => {
    const before = await temporal.workflow.getHandle(workflowIdFor(videoId)).describe();
    const results = await Promise.all([api.finalize(uploadId), api.finalize(uploadId), api.finalize(uploadId)]);
    for (const r of results) expect(r?.videoId).toBe(videoId);
    expect(await videoCountForUpload(uploadId)).toBe(1);
    const after = await temporal.workflow.getHandle(workflowIdFor(videoId)).describe();
    expect(after.runId).toBe(before.runId);
    let runs = 0;
    for await (const _ of temporal.workflow.list({ query: `WorkflowId = '${workflowIdFor(videoId)}'` })) runs++;
    expect(runs).toBeLessThanOrEqual(1); // visibility may lag behind; never two
  });

  it('GET /v1/videos/{id} has the contract shape', async () => {
    const { status, body } = await json(`/v1/videos/${videoId}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      videoId,
      uploadId,
      state: 'PROCESSING',
      failure: null,
      durationSec: null,
      source: null,
      renditions: [],
      playbackUrl: null,
      thumbnailUrl: null,
    });
    // the worker's rows show up, and playback appears once a rendition is done
    await pool.query(
      `INSERT INTO renditions (video_id, name, state, width, height, bandwidth, attempts) VALUES
       ($1, '360p', 'DONE', 640, 360, 800000, 1), ($1, '720p', 'RETRYING', 1280, 720, 2800000, 2)`,
      [videoId],
    );
    await pool.query(`UPDATE videos SET state = 'PARTIALLY_READY', duration_sec = 6.5 WHERE video_id = $1`, [videoId]);
    const again = await json(`/v1/videos/${videoId}`);
    expect(again.body.durationSec).toBe(6.5);
    expect(again.body.playbackUrl).toBe(`${cfg.playbackUrl}/hls/${videoId}/master.m3u8`);
    expect(again.body.renditions).toEqual([
      { name: '360p', state: 'DONE', width: 640, height: 360, bandwidth: 800000, attempts: 1, error: null },
      { name: '720p', state: 'RETRYING', width: 1280, height: 720, bandwidth: 2800000, attempts: 2, error: null },
    ]);
  });

  it('the upload cannot go back from UPLOADED (checked in SQL)', async () => {
    await expect(pool.query(`UPDATE uploads SET status = 'UPLOADING' WHERE upload_id = $1`, [uploadId])).rejects.toThrow(/illegal status transition/);
  });

  it('DELETE /v1/videos/{id} removes objects and rows (cache purge failure tolerated)', async () => {
    await s3.send(new PutObjectCommand({ Bucket: cfg.s3.bucket, Key: keys.hls(videoId, 'master.m3u8'), Body: '#EXTM3U\n' }));
    const del = await fetch(`${base}/v1/videos/${videoId}`, { method: 'DELETE', headers: auth() });
    expect(del.status).toBe(204);
    expect(await objectExists(sourceKeyOf(uploadId))).toBe(false);
    expect(await objectExists(`${sourceKeyOf(uploadId)}.info`)).toBe(false);
    expect(await objectExists(keys.hls(videoId, 'master.m3u8'))).toBe(false);
    expect((await json(`/v1/videos/${videoId}`)).body.error.code).toBe('VIDEO_NOT_FOUND');
    expect((await json(`/v1/uploads/${uploadId}`)).status).toBe(404);
    expect((await fetch(`${base}/v1/videos/${videoId}`, { method: 'DELETE', headers: auth() })).status).toBe(404);
  });
});

describe('whole-file checksum', () => {
  it('a wrong sha256 in metadata fails the upload (CHECKSUM_MISMATCH, 460) and makes no video', async () => {
    const data = randomBytes(9 * MiB);
    let uploadUrl = '';
    const err = (await tusUpload(data, { sha256: sha256(randomBytes(10)) }, {
      onUploadUrlAvailable() {},
      onAfterResponse(_req, res) {
        uploadUrl ||= res.getHeader('Location') ?? '';
      },
    }).catch((e) => e)) as tus.DetailedError;
    expect(err).toBeInstanceOf(Error);
    expect(err.originalResponse?.getStatus()).toBe(460);
    const uploadId = uploadUrl.split('/').pop()!;
    const st = await json(`/v1/uploads/${uploadId}`);
    expect(st.body).toMatchObject({ status: 'FAILED', videoId: null, error: { code: 'CHECKSUM_MISMATCH' } });
    expect(await videoCountForUpload(uploadId)).toBe(0);
    expect(await objectExists(sourceKeyOf(uploadId))).toBe(false); // the mismatching bytes are removed
    // the failed upload takes no more bytes
    const p = await tusPatch(`/v1/uploads/${uploadId}`, data.length, Buffer.from('x'));
    expect(p.status).toBe(460);
  });
});

describe('REST', () => {
  it('GET /healthz', async () => {
    expect(await json('/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  it('CORS: REST answers carry Allow-Origin, preflight for DELETE is 204', async () => {
    const res = await fetch(`${base}/v1/videos`, { headers: { Origin: 'http://localhost:5173' } });
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const pre = await fetch(`${base}/v1/videos/vid_${'a'.repeat(20)}`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://localhost:5173', 'Access-Control-Request-Method': 'DELETE' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-methods')).toContain('DELETE');
  });

  it('unknown and malformed ids', async () => {
    expect(await json(`/v1/videos/vid_${'a'.repeat(20)}`)).toMatchObject({ status: 404, body: { error: { code: 'VIDEO_NOT_FOUND' } } });
    expect(await json('/v1/videos/nope')).toMatchObject({ status: 400, body: { error: { code: 'INVALID_ID' } } });
    expect(await json('/v1/uploads/upl_x')).toMatchObject({ status: 400, body: { error: { code: 'INVALID_ID' } } });
    expect(await json(`/v1/uploads/${newUploadId()}`)).toMatchObject({ status: 404, body: { error: { code: 'UPLOAD_NOT_FOUND' } } });
    expect(await json('/v1/nothing')).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
    expect(await json(`/v1/videos/vid_${'b'.repeat(20)}/analytics`)).toMatchObject({ status: 404, body: { error: { code: 'VIDEO_NOT_FOUND' } } });
  });

  it('DELETE a video whose workflow never started (not found in Temporal) still succeeds', async () => {
    const u = newUploadId();
    const v = videoIdForUpload(u);
    await pool.query(`INSERT INTO uploads (upload_id, status, size, bytes_uploaded) VALUES ($1, 'UPLOADED', 1, 1)`, [u]);
    await pool.query(`INSERT INTO videos (video_id, upload_id, state, source_key, workflow_id) VALUES ($1, $2, 'FAILED', $3, $4)`, [
      v, u, keys.source(v), workflowIdFor(v),
    ]);
    await pool.query(`INSERT INTO renditions (video_id, name) VALUES ($1, '360p')`, [v]);
    expect((await fetch(`${base}/v1/videos/${v}`, { method: 'DELETE', headers: auth() })).status).toBe(204);
    expect((await pool.query('SELECT 1 FROM renditions WHERE video_id = $1', [v])).rowCount).toBe(0);
    expect((await pool.query('SELECT 1 FROM uploads WHERE upload_id = $1', [u])).rowCount).toBe(0);
  });

  it('GET /v1/videos: newest first, state filter, cursor pagination, validation', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { uploadId } = await tusUpload(randomBytes(1000 + i), {});
      ids.push(videoIdForUpload(uploadId));
    }
    await pool.query(`UPDATE videos SET state = 'READY' WHERE video_id = $1`, [ids[1]]);
    const p1 = await json('/v1/videos?limit=2');
    expect(p1.status).toBe(200);
    expect(p1.body.videos.map((v: any) => v.videoId)).toEqual([ids[2], ids[1]]);
    expect(typeof p1.body.nextCursor).toBe('string');
    const p2 = await json(`/v1/videos?limit=2&cursor=${p1.body.nextCursor}`);
    expect(p2.body.videos[0].videoId).toBe(ids[0]);
    const ready = await json('/v1/videos?state=READY&limit=100');
    expect(ready.body.videos.map((v: any) => v.videoId)).toContain(ids[1]);
    expect(ready.body.videos.every((v: any) => v.state === 'READY')).toBe(true);
    expect(ready.body.videos.find((v: any) => v.videoId === ids[1]).playbackUrl).toMatch(/master\.m3u8$/);
    expect((await json('/v1/videos?state=BOGUS')).body.error.code).toBe('VALIDATION_FAILED');
    expect((await json('/v1/videos?limit=0')).status).toBe(400);
    expect((await json('/v1/videos?cursor=garbage')).body.error.code).toBe('VALIDATION_FAILED');
    // analytics: this test runs no ClickHouse, so the query fails and says so
    expect(await json(`/v1/videos/${ids[0]}/analytics`)).toMatchObject({ status: 503, body: { error: { code: 'ANALYTICS_UNAVAILABLE' } } });
  });
});

/** TCP proxy that cuts both sockets once `cutAfter` bytes went client -> server. */
async function cuttingProxy(target: URL, cutAfter: number) {
  let cut = false;
  let forwarded = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk) => {
      if (!cut) {
        forwarded += chunk.length;
        if (forwarded >= cutAfter) {
          cut = true;
          drop();
          return;
        }
      }
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    upstream.on('data', (chunk) => client.write(chunk));
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get cut() {
      return cut;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('resume, locks, expiry, reconcile', () => {
  // Parts go through memory while the process has room (VORA_UPLOAD_MEMORY_MIB), else through temp
  // files as @tus/s3-store does: both paths must resume from exactly what they stored.
  it.each([
    { path: 'parts through memory', partMemoryBytes: undefined },
    { path: 'parts through disk (no memory budget)', partMemoryBytes: 0 },
  ])('an upload whose connection dies at ~40% resumes from the stored offset ($path)', async ({ partMemoryBytes }) => {
    const other = partMemoryBytes === undefined ? null : await startApi({ partMemoryBytes });
    // 40 MiB: the cut at 40% (16 MiB through the proxy) lands well past the first 8 MiB part even
    // with a few MiB still in socket buffers, so some bytes are stored whatever the timing.
    const data = randomBytes(40 * MiB);
    const proxy = await cuttingProxy(new URL(other?.base ?? base), Math.floor(data.length * 0.4));
    const headOffsets: number[] = [];
    const patchOffsets: number[] = [];
    try {
      const { uploadId } = await tusUpload(
        data,
        { sha256: sha256(data) },
        {
          endpoint: `${proxy.url}/v1/uploads`,
          chunkSize: Infinity, // one PATCH for the whole file: the cut lands inside it
          retryDelays: [100, 500, 1000, 2000],
          onBeforeRequest(req) {
            if (req.getMethod() === 'PATCH') patchOffsets.push(Number(req.getHeader('Upload-Offset')));
          },
          onAfterResponse(req, res) {
            if (req.getMethod() === 'HEAD') headOffsets.push(Number(res.getHeader('Upload-Offset')));
          },
        },
      );
      expect(proxy.cut).toBe(true);
      // the resumed PATCH started where the server said it had stored data, not at 0
      expect(headOffsets.length).toBeGreaterThan(0);
      expect(headOffsets[0]).toBeGreaterThan(0);
      expect(patchOffsets[0]).toBe(0);
      expect(patchOffsets.at(-1)).toBe(headOffsets.at(-1));
      const st = await json(`/v1/uploads/${uploadId}`);
      expect(st.body).toMatchObject({ status: 'UPLOADED', bytesUploaded: data.length });
      const src = await hashObject(s3, cfg.s3.bucket, sourceKeyOf(uploadId));
      expect(src.sha256).toBe(sha256(data));
      expect(await videoCountForUpload(uploadId)).toBe(1);
    } finally {
      await proxy.close();
      await other?.api.close();
    }
  });

  it('a part that fails while later parts are stored: the offset stops at the hole, the resumed file is exact', async () => {
    // Parts go to MinIO several at a time. Part 2 fails, but only after part 3 is stored: the
    // offset must be 8 MiB (part 1), not 16 MiB (parts 1 and 3), or the file would have a hole.
    const other = await startApi();
    const client = (other.api.tus.server.datastore as unknown as { client: S3Client }).client;
    let part3Stored: () => void = () => {};
    const part3 = new Promise<void>((r) => (part3Stored = r));
    let failed = false;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const n = (args.input as { PartNumber?: number }).PartNumber;
        if (context.commandName === 'UploadPartCommand' && n === 2 && !failed) {
          failed = true;
          await Promise.race([part3, new Promise((r) => setTimeout(r, 10_000))]);
          throw Object.assign(new Error('injected: MinIO refused part 2'), { $metadata: { httpStatusCode: 500 } });
        }
        const out = await next(args);
        if (context.commandName === 'UploadPartCommand' && n === 3) part3Stored();
        return out;
      },
      { step: 'initialize', name: 'failPart2AfterPart3' },
    );
    const data = randomBytes(40 * MiB);
    const headOffsets: number[] = [];
    const opts = (url?: string): TusOpts => ({
      endpoint: `${other.base}/v1/uploads`,
      uploadUrl: url ?? null,
      chunkSize: Infinity,
      retryDelays: [],
      onAfterResponse(req, res) {
        if (req.getMethod() === 'HEAD') headOffsets.push(Number(res.getHeader('Upload-Offset')));
      },
    });
    try {
      // The PATCH fails (a store failure mid-body answers 400 UPLOAD_ABORTED, which tus-js-client does
      // not retry); resuming the same upload URL is what `vora upload` does when run again.
      let url: string | null = null;
      const first: TusOpts = {
        ...opts(),
        onAfterResponse(req, res) {
          if (req.getMethod() === 'POST') url = new URL(res.getHeader('Location') ?? '', other.base).toString();
        },
      };
      await expect(tusUpload(data, { sha256: sha256(data) }, first)).rejects.toThrow(/PATCH/);
      expect(failed).toBe(true);
      expect(url).not.toBeNull();
      const { uploadId } = await tusUpload(data, { sha256: sha256(data) }, opts(url!));
      expect(headOffsets[0]).toBe(8 * MiB);
      expect((await json(`/v1/uploads/${uploadId}`)).body).toMatchObject({ status: 'UPLOADED', bytesUploaded: data.length });
      expect((await hashObject(s3, cfg.s3.bucket, sourceKeyOf(uploadId))).sha256).toBe(sha256(data));
    } finally {
      await other.api.close();
    }
  });

  it('a connection cut inside the first part keeps what arrived and resumes from it', async () => {
    const data = randomBytes(3 * MiB); // under one 8 MiB part: what arrives becomes the .part object
    const proxy = await cuttingProxy(new URL(base), Math.floor(data.length * 0.4));
    const headOffsets: number[] = [];
    try {
      const { uploadId } = await tusUpload(
        data,
        { sha256: sha256(data) },
        {
          endpoint: `${proxy.url}/v1/uploads`,
          chunkSize: Infinity,
          retryDelays: [100, 500, 1000, 2000],
          onAfterResponse(req, res) {
            if (req.getMethod() === 'HEAD') headOffsets.push(Number(res.getHeader('Upload-Offset')));
          },
        },
      );
      expect(proxy.cut).toBe(true);
      expect(headOffsets[0]).toBeGreaterThan(0);
      expect(headOffsets[0]).toBeLessThan(data.length);
      const src = await hashObject(s3, cfg.s3.bucket, sourceKeyOf(uploadId));
      expect(src.sha256).toBe(sha256(data));
    } finally {
      await proxy.close();
    }
  });

  it('PostgreSQL advisory lock: one holder across processes, and the holder is asked to let go', async () => {
    const log = createLogger('lock-test', 'silent');
    const poolA = createPool(cfg, 4);
    const poolB = createPool(cfg, 4);
    const a = new PgLocker(poolA, log, 5_000);
    const b = new PgLocker(poolB, log, 5_000);
    try {
      const id = `uploads/${newUploadId()}`;
      const lockA = a.newLock(id);
      let asked = 0;
      await lockA.lock(new AbortController().signal, () => {
        asked++;
      });
      const lockB = b.newLock(id);
      let bHas = false;
      const pending = lockB.lock(new AbortController().signal, () => {}).then(() => {
        bHas = true;
      });
      await new Promise((r) => setTimeout(r, 600));
      expect(bHas).toBe(false);
      expect(asked).toBe(1); // NOTIFY reached the other "process"
      await lockA.unlock();
      await pending;
      expect(bHas).toBe(true);
      await lockB.unlock();
      // a lock nobody releases times out
      const lockC = a.newLock(id);
      await lockC.lock(new AbortController().signal, () => {});
      const slow = new PgLocker(poolB, log, 300);
      await expect(slow.newLock(id).lock(new AbortController().signal, () => {})).rejects.toMatchObject({ status_code: 500 });
      await lockC.unlock();
      await slow.close();
    } finally {
      await a.close();
      await b.close();
      await poolA.end();
      await poolB.end();
    }
  });

  it('a second API process takes over an upload whose PATCH is stuck in the first', async () => {
    const other = await startApi();
    try {
      const c = await tusCreate(10 * MiB);
      // a PATCH to the first process that sends 1 MiB and then stalls
      let stop!: () => void;
      const stalled = new ReadableStream<Uint8Array>({
        start(ctrl) {
          ctrl.enqueue(randomBytes(MiB));
          stop = () => ctrl.close();
        },
      });
      const hung = fetch(new URL(c.location!, base), {
        method: 'PATCH',
        headers: { 'Tus-Resumable': '1.0.0', ...auth(), 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
        body: stalled,
        duplex: 'half',
      } as RequestInit).catch((e) => e);
      // progress of the streaming PATCH is visible while it runs (tus reports it every second)
      const mid = await until(async () => {
        const r = await json(`/v1/uploads/${c.location!.split('/').pop()}`);
        return r.body.bytesUploaded === MiB ? r : undefined;
      });
      expect(mid.body).toMatchObject({ status: 'UPLOADING', bytesUploaded: MiB, size: 10 * MiB });
      expect(Date.parse(mid.body.expiresAt)).toBeGreaterThan(Date.now());
      const t0 = Date.now();
      const head = await fetch(new URL(c.location!, other.base), { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0', ...auth() } });
      expect(head.status).toBe(200);
      // tus lets the holder drain for lockDrainTimeout (3 s) before it is cut
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(Number(head.headers.get('upload-offset'))).toBe(MiB);
      stop();
      await hung;
    } finally {
      await other.api.close();
    }
  });

  it('the expiration sweeper expires unfinished uploads and their objects; HEAD/PATCH answer 410', async () => {
    const short = await startApi({ uploadExpiryMs: 3000 });
    try {
      const c = await fetch(`${short.base}/v1/uploads`, {
        method: 'POST',
        headers: { 'Tus-Resumable': '1.0.0', ...auth(), 'Upload-Length': '100' },
      });
      expect(c.status).toBe(201);
      expect(c.headers.get('upload-expires')).toBeTruthy();
      const loc = c.headers.get('location')!;
      await fetch(new URL(loc, short.base), {
        method: 'PATCH',
        headers: { 'Tus-Resumable': '1.0.0', ...auth(), 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
        body: randomBytes(10),
      });
      const uploadId = loc.split('/').pop()!;
      expect((await json(`/v1/uploads/${uploadId}`)).body.bytesUploaded).toBe(10);
      await new Promise((r) => setTimeout(r, 3300));
      const res = await short.api.sweep();
      expect(res.expired).toBeGreaterThanOrEqual(1);
      expect(res.abortedMultipart).toBeGreaterThanOrEqual(1);
      const st = await json(`/v1/uploads/${uploadId}`);
      expect(st.body).toMatchObject({ status: 'EXPIRED', error: { code: 'UPLOAD_EXPIRED' } });
      expect(await objectExists(`${keys.uploadPrefix}${uploadId}.info`)).toBe(false);
      const head = await fetch(new URL(loc, short.base), { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0', ...auth() } });
      expect(head.status).toBe(410);
      const patch = await tusPatch(loc, 10, Buffer.from('x'));
      expect(patch.status).toBe(410);
      expect(JSON.parse(patch.body).error.code).toBe('UPLOAD_GONE');
    } finally {
      await short.api.close();
    }
  });

  it('the reconciler finishes uploads and workflows a crash left behind', async () => {
    // (a) crash after the bytes were stored, before the finish hook ran
    const data = randomBytes(5000);
    const u1 = newUploadId();
    await s3.send(new PutObjectCommand({ Bucket: cfg.s3.bucket, Key: `${keys.uploadPrefix}${u1}`, Body: data }));
    await pool.query(
      `INSERT INTO uploads (upload_id, status, size, bytes_uploaded, sha256_expected, object_key, created_at, updated_at)
       VALUES ($1, 'UPLOADING', $2, $2, $3, $4, now() - interval '5 minutes', now() - interval '5 minutes')`,
      [u1, data.length, sha256(data), `${keys.uploadPrefix}${u1}`],
    );
    // (b) crash after the video row was committed, before the workflow was started
    const u2 = newUploadId();
    const v2 = videoIdForUpload(u2);
    await pool.query(`INSERT INTO uploads (upload_id, status, size, bytes_uploaded) VALUES ($1, 'UPLOADED', 1, 1)`, [u2]);
    await pool.query(`INSERT INTO videos (video_id, upload_id, source_key, workflow_id) VALUES ($1, $2, $3, $4)`, [
      v2, u2, keys.source(v2), workflowIdFor(v2),
    ]);
    // a finalize already running elsewhere (its lock held) is left alone...
    const holder = await pool.connect();
    await holder.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`vora-finalize:${u1}`]);
    const first = await api.reconcile();
    expect(first.started).toBeGreaterThanOrEqual(1); // (b) does not wait for (a)
    expect((await json(`/v1/uploads/${u1}`)).body.status).toBe('UPLOADING');
    await holder.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [`vora-finalize:${u1}`]);
    holder.release();
    // ...and finished by the next pass
    const r = await api.reconcile();
    expect(r.finalized).toBeGreaterThanOrEqual(1);
    for (const [u, v] of [[u1, videoIdForUpload(u1)], [u2, v2]] as const) {
      const st = await json(`/v1/uploads/${u}`);
      expect(st.body).toMatchObject({ status: 'UPLOADED', videoId: v });
      expect((await json(`/v1/videos/${v}`)).body.state).toBe('PROCESSING');
      expect((await temporal.workflow.getHandle(workflowIdFor(v)).describe()).status.name).toBe('RUNNING');
    }
    expect((await pool.query('SELECT source_key FROM videos WHERE upload_id = $1', [u1])).rows[0].source_key).toBe(sourceKeyOf(u1));
    expect(await objectExists(sourceKeyOf(u1))).toBe(true);
  });

  it('Temporal down at finish: the upload still succeeds, the video waits CREATED, the reconciler starts it', async () => {
    const down = await createApi({
      config: cfg,
      pool,
      s3,
      temporal: { workflow: { start: async () => { throw new Error('14 UNAVAILABLE: connection refused'); } } } as unknown as Client,
      logger: createLogger('api-test', 'silent'),
      options: { maxUploadBytes: MAX, sweepIntervalMs: 0, reconcileIntervalMs: 0 },
    });
    const downBase = await down.listen(0, '127.0.0.1');
    try {
      const data = randomBytes(4096);
      const { uploadId } = await tusUpload(data, { sha256: sha256(data) }, { endpoint: `${downBase}/v1/uploads` });
      const videoId = videoIdForUpload(uploadId);
      expect((await json(`/v1/uploads/${uploadId}`)).body).toMatchObject({ status: 'UPLOADED', videoId });
      expect((await json(`/v1/videos/${videoId}`)).body.state).toBe('CREATED');
      await api.reconcile(); // the healthy process
      expect((await json(`/v1/videos/${videoId}`)).body.state).toBe('PROCESSING');
      expect((await temporal.workflow.getHandle(workflowIdFor(videoId)).describe()).status.name).toBe('RUNNING');
    } finally {
      await down.close();
    }
  });

  it('multipart copy (the > 5 GiB path) yields an identical object', async () => {
    const data = randomBytes(12 * MiB + 7);
    const src = `test-src/${newUploadId()}`;
    const dst = `test-dst/${newUploadId()}`;
    await s3.send(new PutObjectCommand({ Bucket: cfg.s3.bucket, Key: src, Body: data }));
    await copyObject(s3, cfg.s3.bucket, src, dst, data.length, { singleCopyLimit: 0, partBytes: 5 * MiB });
    const got = await s3.send(new GetObjectCommand({ Bucket: cfg.s3.bucket, Key: dst }));
    expect(sha256(Buffer.from(await got.Body!.transformToByteArray()))).toBe(sha256(data));
  });
});
