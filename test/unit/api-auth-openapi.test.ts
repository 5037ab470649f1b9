// Playback tokens, API keys, Upload-Metadata flags, the video view, and the OpenAPI document
// against the routes the app really registers (createApi with a fake pool; fastify inject).
import type { S3Client } from '@aws-sdk/client-s3';
import type { Client as TemporalClient } from '@temporalio/client';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApi, type Api } from '../../src/api/app.ts';
import { bearerOf, hashApiKey, lookupApiKey, newApiKeySecret } from '../../src/api/auth.ts';
import { isDocumentedPath, openApiPath } from '../../src/api/openapi.ts';
import { restRoutes } from '../../src/api/routes.ts';
import { uploadViewSchema, videoListSchema, videoViewSchema } from '../../src/api/schemas.ts';
import { parseUploadMetadata } from '../../src/api/tus.ts';
import { loadConfig } from '../../src/common/config.ts';
import { createLogger } from '../../src/common/log.ts';
import { signPlaybackToken, verifyPlaybackToken, withPlaybackToken } from '../../src/common/playback-token.ts';
import { createS3 } from '../../src/common/s3.ts';
import { loadVideoView, videoView, type VideoRow } from '../../src/common/video-view.ts';

const SECRET = 'test-secret';
const VID = `vid_${'a'.repeat(20)}`;

describe('playback tokens', () => {
  const now = 1_800_000_000;
  const token = signPlaybackToken(SECRET, VID, now + 60);

  it('verify what was signed, until the expiry', () => {
    expect(token).toMatch(/^\d+\.[A-Za-z0-9_-]{43}$/);
    expect(verifyPlaybackToken(SECRET, token, VID, now)).toBe(true);
    expect(verifyPlaybackToken(SECRET, token, VID, now + 59)).toBe(true);
    expect(verifyPlaybackToken(SECRET, token, VID, now + 60)).toBe(false); // expiry is exclusive
  });

  it('refuse another video, another secret, a changed expiry or signature, and junk', () => {
    expect(verifyPlaybackToken(SECRET, token, `vid_${'b'.repeat(20)}`, now)).toBe(false);
    expect(verifyPlaybackToken('other', token, VID, now)).toBe(false);
    const [exp, sig] = token.split('.') as [string, string];
    expect(verifyPlaybackToken(SECRET, `${Number(exp) + 3600}.${sig}`, VID, now)).toBe(false);
    const flipped = sig[0] === 'A' ? `B${sig.slice(1)}` : `A${sig.slice(1)}`;
    expect(verifyPlaybackToken(SECRET, `${exp}.${flipped}`, VID, now)).toBe(false);
    for (const junk of ['', '.', 'abc', `${exp}.`, `${exp}.${sig}x`, `-1.${sig}`, `${exp}.${sig}.x`, undefined, null]) {
      expect(verifyPlaybackToken(SECRET, junk as string, VID, now)).toBe(false);
    }
    expect(verifyPlaybackToken('', token, VID, now)).toBe(false);
    expect(() => signPlaybackToken('', VID, now)).toThrow();
  });

  it('appends as ?token= or &token=', () => {
    expect(withPlaybackToken('http://x/a.m3u8', '1.a')).toBe('http://x/a.m3u8?token=1.a');
    expect(withPlaybackToken('http://x/a.m3u8?q=1', '1.a')).toBe('http://x/a.m3u8?q=1&token=1.a');
  });
});

describe('video view (src/common/video-view.ts)', () => {
  const cfg = { ...loadConfig({ VORA_PLAYBACK_URL: 'http://cdn.example' }), playbackSecret: SECRET };
  const now = new Date('2026-11-23T12:00:00Z');
  const row: VideoRow = {
    video_id: VID, upload_id: `upl_${'a'.repeat(20)}`, state: 'READY', failure_code: null, failure_message: null,
    duration_sec: 3, source: null, source_key: 's', workflow_id: 'w', owner_key_id: 'key_1', private: false,
    created_at: now, updated_at: now, created_text: '',
  };

  it('public: plain URLs; private: URLs carry a token for this video, valid for the TTL', () => {
    const pub = videoView(cfg, row, []);
    expect(videoViewSchema.parse(pub)).toEqual(pub);
    expect(pub.playbackUrl).toBe(`http://cdn.example/hls/${VID}/master.m3u8`);
    const priv = videoView(cfg, { ...row, private: true }, [], { nowSec: 1000, tokenTtlSec: 600 });
    const url = new URL(priv.playbackUrl!);
    expect(url.pathname).toBe(`/hls/${VID}/master.m3u8`);
    const token = url.searchParams.get('token')!;
    expect(verifyPlaybackToken(SECRET, token, VID, 1599)).toBe(true);
    expect(verifyPlaybackToken(SECRET, token, VID, 1600)).toBe(false);
    expect(new URL(priv.thumbnailUrl!).searchParams.get('token')).toBe(token);
    expect(priv.private).toBe(true);
    // not playable yet: no URLs, no token
    expect(videoView(cfg, { ...row, private: true, state: 'PROCESSING' }, [])).toMatchObject({ playbackUrl: null, thumbnailUrl: null });
  });

  it('loadVideoView reads the row and the renditions', async () => {
    const db = {
      async query(sql: string) {
        if (/FROM videos/.test(sql)) return { rows: [row] };
        return { rows: [{ video_id: VID, name: '360p', state: 'DONE', width: 640, height: 360, bandwidth: 1, attempts: 1, error: null }] };
      },
    } as unknown as pg.Pool;
    const v = await loadVideoView(db, cfg, VID);
    expect(v?.renditions).toEqual([{ name: '360p', state: 'DONE', width: 640, height: 360, bandwidth: 1, attempts: 1, error: null }]);
    const none = { query: async () => ({ rows: [] }) } as unknown as pg.Pool;
    expect(await loadVideoView(none, cfg, VID)).toBeNull();
  });
});

describe('API keys and Upload-Metadata flags', () => {
  it('Bearer parsing; keys are vora_ + 43 chars; only the sha256 is looked up', async () => {
    expect(bearerOf(undefined)).toBeNull();
    expect(bearerOf('Bearer abc')).toBe('abc');
    expect(bearerOf('bearer  abc ')).toBe('abc');
    expect(() => bearerOf('Basic abc')).toThrow(expect.objectContaining({ code: 'UNAUTHORIZED' }));
    const key = newApiKeySecret();
    expect(key).toMatch(/^vora_[A-Za-z0-9_-]{43}$/);
    const seen: unknown[] = [];
    const db = { query: async (_sql: string, p: unknown[]) => (seen.push(...p), { rows: [{ id: 'key_1', name: 'x' }] }) } as unknown as pg.Pool;
    expect(await lookupApiKey(db, key)).toEqual({ id: 'key_1', name: 'x' });
    expect(seen).toEqual([hashApiKey(key)]);
    expect(await lookupApiKey(db, 'not-a-key')).toBeNull(); // malformed: no query
    expect(seen).toHaveLength(1);
  });

  it('private / dedup: 1, true or a bare key are yes; 0, false or absent no; anything else INVALID_METADATA', () => {
    expect(parseUploadMetadata({ private: '1', dedup: 'true' })).toMatchObject({ private: true, dedup: true });
    expect(parseUploadMetadata({ private: null })).toMatchObject({ private: true, dedup: false });
    expect(parseUploadMetadata({ private: '0', dedup: 'false' })).toMatchObject({ private: false, dedup: false });
    expect(() => parseUploadMetadata({ private: 'yes' })).toThrow(expect.objectContaining({ code: 'INVALID_METADATA' }));
  });
});

// ---- OpenAPI against the app ----------------------------------------------------------------

const KEY = newApiKeySecret();
const KEY_ID = 'key_unit';

/** Answers what the routes ask when nothing is found: no videos, no uploads; KEY is a live key. */
const fakePool = {
  async query(sql: string, params: unknown[] = []) {
    if (/FROM api_keys/.test(sql)) return { rows: params[0] === hashApiKey(KEY) ? [{ id: KEY_ID, name: 'unit' }] : [], rowCount: 0 };
    return { rows: [], rowCount: 0 };
  },
  async connect() {
    throw new Error('no connections in unit tests');
  },
  on() {},
  async end() {},
} as unknown as pg.Pool;

let api: Api;
let doc: any;

beforeAll(async () => {
  const config = { ...loadConfig({ VORA_S3_ACCESS_KEY: 'x', VORA_S3_SECRET_KEY: 'y' }), playbackSecret: SECRET };
  api = await createApi({
    config,
    pool: fakePool,
    s3: createS3(config) as S3Client,
    temporal: {} as TemporalClient,
    logger: createLogger('unit', 'silent'),
    options: { sweepIntervalMs: 0, reconcileIntervalMs: 0, locker: 'memory' },
  });
  await api.app.ready();
  const res = await api.app.inject({ method: 'GET', url: '/v1/openapi.json' });
  expect(res.statusCode).toBe(200);
  doc = res.json();
});

afterAll(async () => {
  await api?.app.close();
});

const authed = { authorization: `Bearer ${KEY}` };

/** Valid path values (checked against the documented pattern below). */
const VALID_PARAMS: Record<string, string> = { videoId: VID, uploadId: `upl_${'a'.repeat(20)}` };

/** Values that break one keyword of a parameter's JSON schema. */
function invalidValues(schema: any): string[] {
  const out: string[] = [];
  if (schema.pattern) out.push('not-an-id!', '');
  if (schema.enum) out.push('NOT_IN_THE_ENUM');
  if (schema.type === 'integer' || schema.type === 'number') out.push('abc');
  if (schema.type === 'integer') out.push('1.5');
  if (typeof schema.minimum === 'number') out.push(String(schema.minimum - 1));
  if (typeof schema.maximum === 'number') out.push(String(schema.maximum + 1));
  if (typeof schema.maxLength === 'number') out.push('x'.repeat(schema.maxLength + 1));
  return out.filter((v) => v !== '' || schema.pattern);
}

/** A minimal check of the same keywords, so "the schema rejects it" is asserted, not assumed. */
function schemaAccepts(schema: any, raw: string): boolean {
  if (schema.pattern && !new RegExp(schema.pattern).test(raw)) return false;
  if (schema.enum && !schema.enum.includes(raw)) return false;
  if (schema.type === 'integer' || schema.type === 'number') {
    if (raw.trim() === '' || !Number.isFinite(Number(raw))) return false;
    const n = Number(raw);
    if (schema.type === 'integer' && !Number.isInteger(n)) return false;
    if (typeof schema.minimum === 'number' && n < schema.minimum) return false;
    if (typeof schema.maximum === 'number' && n > schema.maximum) return false;
  }
  if (typeof schema.maxLength === 'number' && raw.length > schema.maxLength) return false;
  return true;
}

describe('GET /v1/openapi.json', () => {
  it('is OpenAPI 3.1 with the bearer scheme and the tus verbs', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(Object.keys(doc.paths['/v1/uploads']).sort()).toEqual(['options', 'post']);
    expect(Object.keys(doc.paths['/v1/uploads/{uploadId}']).sort()).toEqual(['delete', 'get', 'head', 'patch']);
    for (const [p, m] of [['/v1/uploads', 'post'], ['/v1/uploads/{uploadId}', 'patch'], ['/v1/uploads/{uploadId}', 'delete'], ['/v1/videos/{videoId}', 'delete']] as const) {
      expect(doc.paths[p][m].security, `${m} ${p}`).toEqual([{ bearer: [] }]);
    }
    expect(doc.paths['/v1/uploads'].post['x-vora-upload-metadata'].properties).toHaveProperty('private');
    expect(doc.paths['/v1/uploads'].post['x-vora-upload-metadata'].properties).toHaveProperty('dedup');
    expect(doc.paths['/v1/videos/{videoId}'].get.responses['200'].content['application/json'].schema.properties).toHaveProperty('playbackUrl');
  });

  it('documents every route the app registers', () => {
    const gets = new Set(api.routes.filter((r) => r.method === 'GET').map((r) => r.url));
    // The API's namespace (the web app's static files and SPA fallback are not API routes).
    const ours = api.routes.filter((r) => isDocumentedPath(r.url));
    expect(ours.length).toBeGreaterThanOrEqual(restRoutes({} as never).length);
    for (const r of ours) {
      if (r.method === 'HEAD' && gets.has(r.url)) continue; // fastify's automatic HEAD for GET routes
      expect(doc.paths[openApiPath(r.url)]?.[r.method.toLowerCase()], `${r.method} ${r.url}`).toBeDefined();
    }
    // and nothing documented that is not served (REST part)
    for (const [p, ops] of Object.entries<any>(doc.paths)) {
      for (const m of Object.keys(ops)) {
        const tus = p.startsWith('/v1/uploads') && m !== 'get';
        if (!tus) expect(api.routes.some((r) => openApiPath(r.url) === p && r.method.toLowerCase() === m), `${m} ${p}`).toBe(true);
      }
    }
  });

  it('a request the schema rejects is rejected by the route (400), and a valid one is not', async () => {
    let checked = 0;
    for (const [p, ops] of Object.entries<any>(doc.paths)) {
      for (const [method, op] of Object.entries<any>(ops)) {
        if (!['get', 'delete'].includes(method) || p.startsWith('/v1/uploads') && method !== 'get') continue;
        const params: any[] = op.parameters ?? [];
        const build = (override: { name: string; value: string } | null) => {
          let url = p;
          const qs = new URLSearchParams();
          for (const prm of params) {
            const v = override && override.name === prm.name ? override.value : VALID_PARAMS[prm.name];
            if (prm.in === 'path') url = url.replace(`{${prm.name}}`, encodeURIComponent(v!));
            else if (v !== undefined) qs.set(prm.name, v);
          }
          return qs.size ? `${url}?${qs}` : url;
        };
        for (const prm of params) {
          if (prm.in === 'path') expect(schemaAccepts(prm.schema, VALID_PARAMS[prm.name]!), prm.name).toBe(true);
          for (const bad of invalidValues(prm.schema)) {
            expect(schemaAccepts(prm.schema, bad), `${prm.name}=${bad}`).toBe(false);
            const url = build({ name: prm.name, value: bad });
            const res = await api.app.inject({ method: method.toUpperCase() as 'GET', url, headers: authed });
            expect(res.statusCode, `${method} ${url}`).toBe(400);
            expect(['INVALID_ID', 'VALIDATION_FAILED']).toContain(res.json().error.code);
            checked++;
          }
        }
        // the valid request passes validation (it may still be 404: the fake database is empty)
        const ok = await api.app.inject({ method: method.toUpperCase() as 'GET', url: build(null), headers: authed });
        expect(ok.statusCode, `${method} ${build(null)}`).not.toBe(400);
      }
    }
    expect(checked).toBeGreaterThanOrEqual(8);
  });

  it('bodies match the documented response schemas', async () => {
    const list = await api.app.inject({ method: 'GET', url: '/v1/videos?limit=3' });
    expect(list.statusCode).toBe(200);
    expect(videoListSchema.parse(list.json())).toEqual({ videos: [], nextCursor: null });
    expect(uploadViewSchema.shape.videoId.isNullable()).toBe(true);
  });

  it('DELETE /v1/videos/{id} needs a key: 401 UNAUTHORIZED without, or with an unknown one', async () => {
    for (const headers of [{}, { authorization: `Bearer ${newApiKeySecret()}` }, { authorization: 'Basic x' }]) {
      const res = await api.app.inject({ method: 'DELETE', url: `/v1/videos/${VID}`, headers });
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('UNAUTHORIZED');
    }
    const res = await api.app.inject({ method: 'DELETE', url: `/v1/videos/${VID}`, headers: authed });
    expect(res.json().error.code).toBe('VIDEO_NOT_FOUND');
  });

  it('CORS preflight allows the Authorization header', async () => {
    const res = await api.app.inject({ method: 'OPTIONS', url: `/v1/videos/${VID}` });
    expect(res.headers['access-control-allow-headers']).toContain('Authorization');
  });
});
