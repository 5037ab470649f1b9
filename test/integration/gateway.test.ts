// The streaming gateway against real servers: ClickHouse 18.16, MinIO, PostgreSQL 15 and Varnish
// 7.1, each started here (gateway-support.ts) on free ports in temp dirs. Events into ClickHouse
// and the analytics read back: gateway-events.test.ts.
//   npx vitest run --config test/integration/gateway.vitest.config.ts
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureClickhouseSchema } from '../../src/analytics/schema.ts';
import type { VoraConfig } from '../../src/common/config.ts';
import { signPlaybackToken } from '../../src/common/playback-token.ts';
import { createS3 } from '../../src/common/s3.ts';
import { startGateway, type Gateway } from '../../src/gateway/main.ts';
import { banVideo, prewarmVideo } from '../../src/common/playback-cache.ts';
import { parseVarnishstat } from '../../src/stack/varnishstat.ts';
import { renderVcl } from '../../src/gateway/vcl.ts';
import {
  applyMigrations,
  chCount,
  configFor,
  freePort,
  raw,
  startClickhouse,
  startMinio,
  startPostgres,
  startVarnish,
  tempDir,
  until,
  type Server,
} from './gateway-support.ts';

const READY = 'vid_readyaaaaaaaaaaaaaaa';
const PARTIAL = 'vid_partialaaaaaaaaaaaaa';
const PROCESSING = 'vid_processingaaaaaaaaaa';
const PRIVATE = 'vid_privateaaaaaaaaaaaaa';
const WARM = 'vid_prewarmaaaaaaaaaaaaa';
const SECRET = 'gateway-test-playback-secret';
const mediaPlaylist = (n: number) =>
  '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI="init.mp4"\n' +
  Array.from({ length: n }, (_, i) => `#EXTINF:4.000,\nseg_${String(i).padStart(5, '0')}.m4s\n`).join('') +
  '#EXT-X-ENDLIST\n';
const warmMaster =
  '#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",DEFAULT=YES,URI="audio/index.m3u8"\n' +
  '#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,AUDIO="aud"\n360p/index.m3u8\n' +
  '#EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720,AUDIO="aud"\n720p/index.m3u8\n';
const BIG = 8 * 1024 * 1024 + 123;

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed + (i >> 11)) & 255;
  return b;
}
const segment = pattern(BIG, 7);
const init = pattern(1500, 3);
const master = '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\n360p/index.m3u8\n';

const servers: Server[] = [];
let cfg: VoraConfig;
let gw: Gateway;
let G: string; // gateway base URL
let V: string; // varnish base URL
let dataDir: string;
let varnishDir: string;
const varnishstat = () => parseVarnishstat(execFileSync('varnishstat', ['-n', path.join(varnishDir, 'work'), '-j'], { encoding: 'utf8' }));
/** Worker threads publish their counters lazily: read until two reads 300 ms apart agree. */
async function settledVarnishstat() {
  let prev = varnishstat();
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 300));
    const cur = varnishstat();
    if (JSON.stringify(cur) === JSON.stringify(prev)) return cur;
    prev = cur;
  }
  return prev;
}

beforeAll(async () => {
  const [ch, minio, pgs] = await Promise.all([startClickhouse(), startMinio('vora'), startPostgres()]);
  servers.push(ch, minio, pgs);
  await applyMigrations(pgs.url);
  dataDir = tempDir('data');
  cfg = { ...configFor({ minio: minio.port, accessKey: minio.accessKey, secretKey: minio.secretKey, bucket: 'vora', clickhouse: ch.port, pgUrl: pgs.url, dataDir }), playbackSecret: SECRET };
  await ensureClickhouseSchema(cfg); // applied and re-applied: gateway-events.test.ts

  const db = new pg.Client({ connectionString: pgs.url });
  await db.connect();
  for (const [vid, state, priv] of [[READY, 'READY', false], [PARTIAL, 'PARTIALLY_READY', false], [PROCESSING, 'PROCESSING', false], [PRIVATE, 'READY', true], [WARM, 'READY', false]] as const) {
    const upl = vid.replace('vid_', 'upl_');
    await db.query(`INSERT INTO uploads (upload_id, status) VALUES ($1, 'UPLOADED')`, [upl]);
    await db.query(`INSERT INTO videos (video_id, upload_id, state, source_key, workflow_id, private) VALUES ($1, $2, $3, 'src', $4, $5)`, [vid, upl, state, `wf-${vid}`, priv]);
  }
  await db.end();

  const s3 = createS3(cfg);
  for (const vid of [READY, PARTIAL, PROCESSING]) {
    await s3.send(new PutObjectCommand({ Bucket: 'vora', Key: `hls/${vid}/master.m3u8`, Body: master }));
    await s3.send(new PutObjectCommand({ Bucket: 'vora', Key: `hls/${vid}/360p/init.mp4`, Body: init }));
    await s3.send(new PutObjectCommand({ Bucket: 'vora', Key: `hls/${vid}/360p/seg_00000.m4s`, Body: segment }));
  }
  await s3.send(new PutObjectCommand({ Bucket: 'vora', Key: `hls/${READY}/360p/seg_00001.m4s`, Body: init }));
  await s3.send(new PutObjectCommand({ Bucket: 'vora', Key: `hls/${PRIVATE}/master.m3u8`, Body: master }));
  await s3.send(new PutObjectCommand({ Bucket: 'vora', Key: `hls/${PRIVATE}/360p/index.m3u8`, Body: mediaPlaylist(2) }));
  await s3.send(new PutObjectCommand({ Bucket: 'vora', Key: `hls/${PRIVATE}/360p/init.mp4`, Body: init }));
  await s3.send(new PutObjectCommand({ Bucket: 'vora', Key: `hls/${PRIVATE}/360p/seg_00000.m4s`, Body: init }));
  await s3.send(new PutObjectCommand({ Bucket: 'vora', Key: `hls/${WARM}/master.m3u8`, Body: warmMaster }));
  for (const r of ['360p', '720p', 'audio']) {
    await s3.send(new PutObjectCommand({ Bucket: 'vora', Key: `hls/${WARM}/${r}/index.m3u8`, Body: mediaPlaylist(4) }));
    await s3.send(new PutObjectCommand({ Bucket: 'vora', Key: `hls/${WARM}/${r}/init.mp4`, Body: init }));
    for (let i = 0; i < 4; i++) await s3.send(new PutObjectCommand({ Bucket: 'vora', Key: `hls/${WARM}/${r}/seg_0000${i}.m4s`, Body: init }));
  }
  s3.destroy();

  gw = await startGateway(cfg, { port: 0 });
  G = `http://127.0.0.1:${gw.port}`;
  const varnish = await startVarnish(renderVcl({ gatewayHost: '127.0.0.1', gatewayPort: gw.port }));
  servers.push(varnish);
  varnishDir = varnish.dir;
  V = `http://127.0.0.1:${varnish.port}`;
  // The probe must see the gateway healthy before Varnish sends it traffic.
  await until('varnish backend healthy', async () => (await raw(`${V}/hls/${READY}/360p/init.mp4`)).status === 200);
});

afterAll(async () => {
  await gw?.close(2_000).catch(() => {});
  await Promise.allSettled(servers.reverse().map((s) => s.stop()));
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('gateway: HLS objects', () => {
  it('serves a playlist with type, caching, validators and CORS', async () => {
    const r = await raw(`${G}/hls/${READY}/master.m3u8`);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe(master);
    expect(r.headers['content-type']).toBe('application/vnd.apple.mpegurl');
    expect(r.headers['cache-control']).toBe('public, max-age=3600');
    expect(r.headers['access-control-allow-origin']).toBe('*');
    expect(r.headers['access-control-expose-headers']).toMatch(/Content-Range/);
    expect(r.headers.etag).toMatch(/^"[0-9a-f]+"$/);
    expect(r.headers['last-modified']).toBeTruthy();
    expect(Number(r.headers['content-length'])).toBe(master.length);
  });

  it('streams a large segment byte for byte, also to a slow reader (backpressure)', async () => {
    const r = await raw(`${G}/hls/${READY}/360p/seg_00000.m4s`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('video/iso.segment');
    expect(r.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(r.body.equals(segment)).toBe(true);

    // A reader that stalls makes the socket full: the gateway must pause and resume, not drop.
    const slow = await new Promise<Buffer>((resolve, reject) => {
      http.get(`${G}/hls/${READY}/360p/seg_00000.m4s`, (res) => {
        const chunks: Buffer[] = [];
        res.pause();
        setTimeout(() => {
          res.on('data', (c: Buffer) => {
            chunks.push(c);
            res.pause();
            setTimeout(() => res.resume(), 1);
          });
          res.on('end', () => resolve(Buffer.concat(chunks)));
          res.resume();
        }, 500);
      }).on('error', reject);
    });
    expect(slow.length).toBe(BIG);
    expect(slow.equals(segment)).toBe(true);
  });

  it('survives clients that disconnect mid-body', async () => {
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = http.get(`${G}/hls/${READY}/360p/seg_00000.m4s`, { agent: false }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', (e) => (req.destroyed ? resolve() : reject(e)));
      });
    }
    const r = await raw(`${G}/hls/${READY}/360p/seg_00000.m4s`);
    expect(r.body.equals(segment)).toBe(true);
    expect((await raw(`${G}/healthz`)).status).toBe(200);
  });

  it('answers HEAD with the length and no body', async () => {
    const r = await raw(`${G}/hls/${READY}/360p/seg_00000.m4s`, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(Number(r.headers['content-length'])).toBe(BIG);
    expect(r.body.length).toBe(0);
    // Errors to HEAD have no body either, and the keep-alive connection stays usable.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const head404 = await new Promise<number>((resolve, reject) =>
      http.request(`${G}/hls/${READY}/missing.m3u8`, { method: 'HEAD', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      }).on('error', reject).end(),
    );
    expect(head404).toBe(404);
    const after = await new Promise<Buffer>((resolve, reject) =>
      http.get(`${G}/hls/${READY}/master.m3u8`, { agent }, (res) => {
        const c: Buffer[] = [];
        res.on('data', (d: Buffer) => c.push(d));
        res.on('end', () => resolve(Buffer.concat(c)));
      }).on('error', reject),
    );
    expect(after.toString()).toBe(master);
    agent.destroy();
  });

  it('serves byte ranges (206) and refuses unsatisfiable ones (416)', async () => {
    const r = await raw(`${G}/hls/${READY}/360p/seg_00000.m4s`, { headers: { Range: 'bytes=1000-1999999' } });
    expect(r.status).toBe(206);
    expect(r.headers['content-range']).toBe(`bytes 1000-1999999/${BIG}`);
    expect(r.body.equals(segment.subarray(1000, 2_000_000))).toBe(true);
    const tail = await raw(`${G}/hls/${READY}/360p/seg_00000.m4s`, { headers: { Range: 'bytes=-100' } });
    expect(tail.status).toBe(206);
    expect(tail.body.equals(segment.subarray(BIG - 100))).toBe(true);
    const bad = await raw(`${G}/hls/${READY}/360p/seg_00000.m4s`, { headers: { Range: `bytes=${BIG}-` } });
    expect(bad.status).toBe(416);
    expect(bad.headers['content-range']).toBe(`bytes */${BIG}`);
    expect(JSON.parse(bad.body.toString()).error.code).toBe('RANGE_NOT_SATISFIABLE');
  });

  it('answers If-None-Match with 304', async () => {
    const first = await raw(`${G}/hls/${READY}/360p/init.mp4`);
    expect(first.headers['content-type']).toBe('video/mp4');
    const r = await raw(`${G}/hls/${READY}/360p/init.mp4`, { headers: { 'If-None-Match': first.headers.etag! } });
    expect(r.status).toBe(304);
    expect(r.body.length).toBe(0);
    expect(r.headers.etag).toBe(first.headers.etag);
    const other = await raw(`${G}/hls/${READY}/360p/init.mp4`, { headers: { 'If-None-Match': '"nope"' } });
    expect(other.status).toBe(200);
  });

  it('keeps playlists of partially ready videos short-lived', async () => {
    const r = await raw(`${G}/hls/${PARTIAL}/master.m3u8`);
    expect(r.status).toBe(200);
    expect(r.headers['cache-control']).toBe('public, max-age=2');
    const s = await raw(`${G}/hls/${PARTIAL}/360p/init.mp4`);
    expect(s.headers['cache-control']).toBe('public, max-age=31536000, immutable');
  });

  it('404s videos that are not playable, unknown objects and bad paths; 400s bad ids', async () => {
    const codeOf = async (p: string) => {
      const r = await raw(`${G}${p}`);
      return [r.status, JSON.parse(r.body.toString()).error.code];
    };
    expect(await codeOf(`/hls/${PROCESSING}/master.m3u8`)).toEqual([404, 'VIDEO_NOT_FOUND']);
    expect(await codeOf('/hls/vid_unknownaaaaaaaaaaaaa/master.m3u8')).toEqual([404, 'VIDEO_NOT_FOUND']);
    expect(await codeOf(`/hls/${READY}/360p/seg_99999.m4s`)).toEqual([404, 'OBJECT_NOT_FOUND']);
    expect(await codeOf(`/hls/${READY}/../${PARTIAL}/master.m3u8`)).toEqual([404, 'NOT_FOUND']);
    expect(await codeOf(`/hls/${READY}/a/b/c.m4s`)).toEqual([404, 'NOT_FOUND']);
    expect(await codeOf('/hls/not-an-id/master.m3u8')).toEqual([400, 'BAD_VIDEO_ID']);
    expect(await codeOf('/nothing')).toEqual([404, 'NOT_FOUND']);
  });

  it('answers CORS preflight', async () => {
    const r = await raw(`${G}/hls/${READY}/master.m3u8`, { method: 'OPTIONS', headers: { Origin: 'http://x', 'Access-Control-Request-Method': 'GET' } });
    expect(r.status).toBe(204);
    expect(r.headers['access-control-allow-origin']).toBe('*');
    expect(r.headers['access-control-allow-headers']).toMatch(/Range/);
  });
});

describe('gateway: hot-object cache', () => {
  const HOT = 'vid_hotcacheaaaaaaaaaaaa';
  const hotSeg = pattern(300_000, 11);
  /** GETs the gateway sent to MinIO so far (its origin latency histogram's counts). */
  const originGets = async () => {
    const text = await gw.metrics.registry.getSingleMetricAsString('vora_gateway_origin_fetch_seconds');
    return [...text.matchAll(/^vora_gateway_origin_fetch_seconds_count\{[^}]*op="get"[^}]*\} (\d+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
  };

  beforeAll(async () => {
    const db = new pg.Client({ connectionString: cfg.postgres.url });
    await db.connect();
    await db.query(`INSERT INTO uploads (upload_id, status) VALUES ($1, 'UPLOADED')`, [HOT.replace('vid_', 'upl_')]);
    await db.query(`INSERT INTO videos (video_id, upload_id, state, source_key, workflow_id) VALUES ($1, $2, 'READY', 'src', 'wf-hot')`, [HOT, HOT.replace('vid_', 'upl_')]);
    await db.end();
    const s3 = createS3(cfg);
    await s3.send(new PutObjectCommand({ Bucket: 'vora', Key: `hls/${HOT}/master.m3u8`, Body: master }));
    await s3.send(new PutObjectCommand({ Bucket: 'vora', Key: `hls/${HOT}/360p/seg_00000.m4s`, Body: hotSeg }));
    s3.destroy();
  });

  it('answers repeats from memory with the same bytes, headers, ranges, HEAD and validators', async () => {
    const url = `${G}/hls/${HOT}/360p/seg_00000.m4s`;
    const gets0 = await originGets();
    const first = await raw(url);
    expect(first.status).toBe(200);
    expect(first.body.equals(hotSeg)).toBe(true);
    expect(gw.objects.has(`hls/${HOT}/360p/seg_00000.m4s`)).toBe(true);
    expect((await originGets()) - gets0).toBe(1);

    const hits0 = gw.objects.stats().hits;
    const again = await raw(url);
    expect(again.status).toBe(200);
    expect(again.body.equals(hotSeg)).toBe(true);
    for (const h of ['content-type', 'content-length', 'cache-control', 'etag', 'last-modified', 'accept-ranges', 'access-control-allow-origin']) {
      expect(again.headers[h], h).toBe(first.headers[h]);
    }
    const range = await raw(url, { headers: { Range: 'bytes=1000-1999' } });
    expect(range.status).toBe(206);
    expect(range.headers['content-range']).toBe(`bytes 1000-1999/${hotSeg.length}`);
    expect(range.body.equals(hotSeg.subarray(1000, 2000))).toBe(true);
    const staleIfRange = await raw(url, { headers: { Range: 'bytes=0-9', 'If-Range': '"other"' } });
    expect(staleIfRange.status).toBe(200);
    expect(staleIfRange.body.length).toBe(hotSeg.length);
    expect((await raw(url, { headers: { Range: `bytes=${hotSeg.length}-` } })).status).toBe(416);
    const head = await raw(url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBe(hotSeg.length);
    expect(head.body.length).toBe(0);
    expect((await raw(url, { headers: { 'If-None-Match': first.headers.etag! } })).status).toBe(304);
    expect((await raw(url, { headers: { 'If-Modified-Since': first.headers['last-modified']! } })).status).toBe(304);
    expect(gw.objects.stats().hits - hits0).toBe(7);
    expect((await originGets()) - gets0).toBe(1); // one MinIO GET for all of the above
  });

  it('never holds a partially ready video\'s playlists or a private video\'s objects', async () => {
    await raw(`${G}/hls/${PARTIAL}/master.m3u8`);
    const tok = signPlaybackToken(SECRET, PRIVATE, Math.floor(Date.now() / 1000) + 60);
    expect((await raw(`${G}/hls/${PRIVATE}/360p/init.mp4?token=${tok}`)).status).toBe(200);
    expect(gw.objects.has(`hls/${PARTIAL}/master.m3u8`)).toBe(false);
    expect(gw.objects.has(`hls/${PRIVATE}/360p/init.mp4`)).toBe(false);
    expect((await raw(`${G}/hls/${PARTIAL}/360p/init.mp4`)).status).toBe(200);
    expect(gw.objects.has(`hls/${PARTIAL}/360p/init.mp4`)).toBe(true); // segments are final at once
  });

  it('stops serving a video that is no longer playable (deleted: READY never fails) and forgets its objects', async () => {
    expect((await raw(`${G}/hls/${HOT}/master.m3u8`)).status).toBe(200);
    expect(gw.objects.has(`hls/${HOT}/master.m3u8`)).toBe(true);
    const db = new pg.Client({ connectionString: cfg.postgres.url });
    await db.connect();
    await db.query(`DELETE FROM videos WHERE video_id = $1`, [HOT]);
    await db.end();
    await until('video refused', async () => (await raw(`${G}/hls/${HOT}/360p/seg_00000.m4s`)).status === 404);
    expect(gw.objects.has(`hls/${HOT}/master.m3u8`)).toBe(false);
    expect(gw.objects.has(`hls/${HOT}/360p/seg_00000.m4s`)).toBe(false);
  });
});

describe('varnish in front of the gateway', () => {
  it('misses once, then hits, with identical bytes', async () => {
    const url = `${V}/hls/${READY}/360p/seg_00000.m4s`;
    const a = await raw(url);
    const b = await raw(url);
    expect([a.status, a.headers['x-cache']]).toEqual([200, 'MISS']);
    expect([b.status, b.headers['x-cache']]).toEqual([200, 'HIT']);
    expect(a.body.equals(segment)).toBe(true);
    expect(b.body.equals(segment)).toBe(true);
    expect(b.headers['x-url']).toBeUndefined();
  });

  it('coalesces concurrent misses into one gateway request', async () => {
    const stats = async () => JSON.parse((await raw(`${G}/healthz`)).body.toString()).hls.requests as number;
    const before = await stats();
    const url = `${V}/hls/${PARTIAL}/360p/seg_00000.m4s`;
    const all = await Promise.all(Array.from({ length: 12 }, () => raw(url)));
    expect(all.every((r) => r.status === 200 && r.body.equals(segment))).toBe(true);
    expect(all.filter((r) => r.headers['x-cache'] === 'MISS').length).toBeGreaterThanOrEqual(1);
    expect((await stats()) - before).toBe(1);
  });

  it('serves ranges equal to the object slice', async () => {
    const r = await raw(`${V}/hls/${READY}/360p/seg_00000.m4s`, { headers: { Range: 'bytes=500-8191' } });
    expect(r.status).toBe(206);
    expect(r.body.equals(segment.subarray(500, 8192))).toBe(true);
  });

  it('strips cookies on /hls/ so they do not defeat caching', async () => {
    const url = `${V}/hls/${READY}/master.m3u8`;
    await raw(url, { headers: { Cookie: 'a=1' } });
    const r = await raw(url, { headers: { Cookie: 'a=2' } });
    expect(r.headers['x-cache']).toBe('HIT');
  });

  it('bans a video by prefix (localhost only) and purges single URLs', async () => {
    const url = `${V}/hls/${READY}/360p/init.mp4`;
    await raw(url);
    expect((await raw(url)).headers['x-cache']).toBe('HIT');
    await banVideo(V, READY);
    expect((await raw(url)).headers['x-cache']).toBe('MISS');
    expect((await raw(url)).headers['x-cache']).toBe('HIT');
    const p = await raw(url, { method: 'PURGE' });
    expect(p.status).toBe(200);
    expect((await raw(url)).headers['x-cache']).toBe('MISS');
    const bad = await raw(`${V}/hls/../`, { method: 'BAN' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body.toString()).error.code).toBe('BAD_BAN_PREFIX');
  });

  it('passes /v1/events to the gateway uncached', async () => {
    const body = JSON.stringify([{ videoId: READY, sessionId: 'via-varnish', type: 'play', ts: Date.now() }]);
    const r = await raw(`${V}/v1/events`, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
    expect(r.status).toBe(202);
    expect(JSON.parse(r.body.toString())).toEqual({ accepted: 1 });
    await until('event via varnish stored', async () => (await chCount(cfg, `session_id = 'via-varnish'`)) === 1);
  });
});

describe('private videos', () => {
  const good = () => signPlaybackToken(SECRET, PRIVATE, Math.floor(Date.now() / 1000) + 600);
  const codeOf = async (url: string) => {
    const r = await raw(url);
    return [r.status, JSON.parse(r.body.toString()).error.code, r.headers['cache-control']];
  };

  it('refuses requests without a token or with a bad, foreign or expired one (403)', async () => {
    expect(await codeOf(`${G}/hls/${PRIVATE}/master.m3u8`)).toEqual([403, 'PLAYBACK_TOKEN_REQUIRED', 'no-store']);
    expect(await codeOf(`${G}/hls/${PRIVATE}/360p/seg_00000.m4s`)).toEqual([403, 'PLAYBACK_TOKEN_REQUIRED', 'no-store']);
    expect(await codeOf(`${G}/hls/${PRIVATE}/master.m3u8?token=nonsense`)).toEqual([403, 'PLAYBACK_TOKEN_INVALID', 'no-store']);
    const foreign = signPlaybackToken(SECRET, READY, Math.floor(Date.now() / 1000) + 600);
    expect((await codeOf(`${G}/hls/${PRIVATE}/master.m3u8?token=${foreign}`))[1]).toBe('PLAYBACK_TOKEN_INVALID');
    const expired = signPlaybackToken(SECRET, PRIVATE, Math.floor(Date.now() / 1000) - 1);
    expect((await codeOf(`${G}/hls/${PRIVATE}/master.m3u8?token=${expired}`))[1]).toBe('PLAYBACK_TOKEN_INVALID');
    const otherSecret = signPlaybackToken('another-secret', PRIVATE, Math.floor(Date.now() / 1000) + 600);
    expect((await codeOf(`${G}/hls/${PRIVATE}/master.m3u8?token=${otherSecret}`))[1]).toBe('PLAYBACK_TOKEN_INVALID');
    // Through Varnish: the same answers, never from the cache.
    expect((await codeOf(`${V}/hls/${PRIVATE}/master.m3u8`))[0]).toBe(403);
    expect((await codeOf(`${V}/hls/${PRIVATE}/master.m3u8?token=nonsense`))[1]).toBe('PLAYBACK_TOKEN_INVALID');
  });

  it('serves playlists rewritten so every URI carries the token, and media, all private/no-store', async () => {
    const token = good();
    const m = await raw(`${G}/hls/${PRIVATE}/master.m3u8?token=${token}`);
    expect(m.status).toBe(200);
    expect(m.headers['cache-control']).toBe('private, no-store');
    expect(m.headers.etag).toBeUndefined();
    expect(m.body.toString()).toBe(master.replace('360p/index.m3u8', `360p/index.m3u8?token=${token}`));
    const p = await raw(`${G}/hls/${PRIVATE}/360p/index.m3u8?token=${token}`);
    const text = p.body.toString();
    expect(text).toContain(`#EXT-X-MAP:URI="init.mp4?token=${token}"`);
    expect(text).toContain(`seg_00000.m4s?token=${token}\n`);
    expect(text).toContain(`seg_00001.m4s?token=${token}\n`);
    expect(text.split('\n').filter((l) => l && !l.startsWith('#')).every((l) => l.endsWith(`?token=${token}`))).toBe(true);
    const seg = await raw(`${G}/hls/${PRIVATE}/360p/seg_00000.m4s?token=${token}`);
    expect(seg.status).toBe(200);
    expect(seg.body.equals(init)).toBe(true);
    expect(seg.headers['cache-control']).toBe('private, no-store');
  });

  it('is passed by Varnish (never cached), while public media ignores tokens in its cache key', async () => {
    const token = good();
    const before = (await settledVarnishstat()).backendRequests;
    for (let i = 0; i < 3; i++) {
      const r = await raw(`${V}/hls/${PRIVATE}/360p/seg_00000.m4s?token=${token}`);
      expect([r.status, r.headers['x-cache'], r.headers['cache-control']]).toEqual([200, 'MISS', 'private, no-store']);
    }
    const pl = await raw(`${V}/hls/${PRIVATE}/360p/index.m3u8?token=${token}`);
    expect(pl.body.toString()).toContain(`seg_00000.m4s?token=${token}`);
    expect((await settledVarnishstat()).backendRequests - before).toBe(4);
    // A public object fetched with and without a query string is one cache object.
    const plain = await raw(`${V}/hls/${READY}/master.m3u8?cb=1`);
    expect(plain.status).toBe(200);
    expect((await raw(`${V}/hls/${READY}/master.m3u8?cb=2`)).headers['x-cache']).toBe('HIT');
    // A token on a public video: passed (not cached under a token key), still served.
    const withToken = await raw(`${V}/hls/${READY}/master.m3u8?token=x`);
    expect([withToken.status, withToken.headers['x-cache']]).toEqual([200, 'MISS']);
    expect((await raw(`${V}/hls/${READY}/master.m3u8`)).headers['x-cache']).toBe('HIT');
  });
});

describe('pre-warming', () => {
  it('fetches master, media playlists, init and the first 2 segments of each rendition through Varnish', async () => {
    const r = await prewarmVideo({ playbackUrl: V }, WARM, { concurrency: 3 });
    expect(r).toMatchObject({ videoId: WARM, failed: 0, playlists: 4, segments: 9, requested: 13, ok: 13, alreadyCached: 0, errors: [] });
    for (const rend of ['360p', '720p', 'audio']) {
      for (const obj of ['index.m3u8', 'init.mp4', 'seg_00000.m4s', 'seg_00001.m4s']) {
        expect((await raw(`${V}/hls/${WARM}/${rend}/${obj}`)).headers['x-cache']).toBe('HIT');
      }
      expect((await raw(`${V}/hls/${WARM}/${rend}/seg_00002.m4s`)).headers['x-cache']).toBe('MISS');
    }
    const again = await prewarmVideo({ playbackUrl: V }, WARM);
    expect(again.alreadyCached).toBe(13);
  });

  it('never throws: unknown videos, bad ids and dead endpoints are counted', async () => {
    expect(await prewarmVideo({ playbackUrl: V }, 'vid_unknownaaaaaaaaaaaaa')).toMatchObject({ requested: 1, ok: 0, failed: 1 });
    expect(await prewarmVideo({ playbackUrl: V }, '../x')).toMatchObject({ requested: 0, failed: 1 });
    const dead = await prewarmVideo({ playbackUrl: `http://127.0.0.1:${await freePort()}` }, WARM, { timeoutMs: 500 });
    expect(dead).toMatchObject({ requested: 1, ok: 0, failed: 1 });
  });
});

describe('coalescing at scale and metrics', () => {
  it('100 concurrent first requests for one segment make exactly one origin request', async () => {
    const url = `${V}/hls/${READY}/360p/seg_00001.m4s`;
    const gwCount = async () => JSON.parse((await raw(`${G}/healthz`)).body.toString()).hls.requests as number;
    const [g0, v0] = [await gwCount(), await settledVarnishstat()];
    const all = await Promise.all(Array.from({ length: 100 }, () => raw(url)));
    expect(all.every((r) => r.status === 200 && r.body.equals(init))).toBe(true);
    expect((await gwCount()) - g0).toBe(1);
    const v1 = await settledVarnishstat();
    expect(v1.hits + v1.misses - (v0.hits + v0.misses)).toBe(100);
    // (MAIN.cache_miss may count waiting-list requests woken before the object was inserted; what
    // matters is what reached the origin.)
    expect(v1.backendRequests - v0.backendRequests).toBe(1);
  });

  it('exposes Prometheus metrics', async () => {
    const r = await raw(`${G}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    const text = r.body.toString();
    expect(text).toMatch(/vora_gateway_http_requests_total\{route="hls_segment",status="200",service="gateway"\} [1-9]\d*/);
    expect(text).toMatch(/vora_gateway_http_requests_total\{route="hls_playlist",status="403",service="gateway"\} [1-9]\d*/);
    expect(text).toMatch(/vora_gateway_response_body_bytes_total\{route="hls_segment",service="gateway"\} [1-9]\d*/);
    expect(text).toMatch(/vora_gateway_origin_fetch_seconds_bucket\{le="0\.005",service="gateway",op="get",outcome="ok"\} \d+/);
    for (const o of ['accepted', 'flushed', 'spilled', 'dropped']) expect(text).toContain(`vora_events_total{outcome="${o}",service="gateway"}`);
    expect(text).toContain('vora_live_subscriptions{service="gateway"} 0');
    expect(text).toContain('vora_live_sockets{service="gateway"}');
    expect(text).toContain('vora_process_cpu_seconds_total{service="gateway"}');
  });
});

describe('varnish grace', () => {
  it('serves stale objects while the gateway is down', async () => {
    // A PARTIALLY_READY playlist lives 2 s in the cache; after that only grace can serve it.
    const url = `${V}/hls/${PARTIAL}/master.m3u8`;
    const first = await raw(url);
    expect(first.status).toBe(200);
    await gw.close(500);
    // Wait for the probe to mark the gateway sick and for the object's TTL to pass.
    await new Promise((r) => setTimeout(r, 9_000));
    const stale = await raw(url);
    expect(stale.status).toBe(200);
    expect(stale.body.toString()).toBe(master);
    expect(stale.headers['x-cache']).toBe('HIT');
    expect(Number(stale.headers.age)).toBeGreaterThanOrEqual(2);
    // Nothing cached: the JSON error from vcl_backend_error.
    const miss = await raw(`${V}/hls/${READY}/never-fetched.m3u8`);
    expect(miss.status).toBe(503);
    expect(JSON.parse(miss.body.toString()).error.code).toMatch(/^[A-Z_]+$/);
  }, 30_000);
});
