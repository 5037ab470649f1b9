// The gateway's HTTP behaviour with fake dependencies (state lookup, S3, event buffer): error
// paths that are hard to provoke with real servers. The real-server test is
// test/integration/gateway.test.ts.
import http from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventBuffer } from '../../src/analytics/buffer.ts';
import type { PlaybackEvent } from '../../src/analytics/events.ts';
import { loadConfig } from '../../src/common/config.ts';
import { startGateway, type Gateway } from '../../src/gateway/main.ts';

const VID = 'vid_abcdefghijklmnopqrst';
type Send = (cmd: { constructor: { name: string }; input: Record<string, unknown> }) => Promise<unknown>;
let s3Send: Send;
const states: Record<string, string> = { [VID]: 'READY', vid_failedaaaaaaaaaaaaaa: 'FAILED' };
let stateFails = false;
const pushed: PlaybackEvent[] = [];
let gw: Gateway;
let base: string;

const s3Error = (status: number, name = 'Err') => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });

function get(path: string, headers: Record<string, string> = {}, method = 'GET', body?: string) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; aborted: boolean }>((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, headers, agent: false }, (res) => {
      let data = '';
      let aborted = false;
      res.setEncoding('latin1');
      res.on('data', (c: string) => (data += c));
      res.on('aborted', () => (aborted = true));
      res.on('error', () => (aborted = true));
      res.on('close', () => resolve({ status: res.statusCode!, headers: res.headers, body: data, aborted: aborted || !res.complete }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

beforeAll(async () => {
  const buffer = {
    start() {},
    stats: () => ({}),
    close: async () => {},
    push: (e: PlaybackEvent[]) => (pushed.push(...e), e.length),
  } as unknown as EventBuffer;
  const s3 = { send: (cmd: never) => s3Send(cmd), destroy() {} };
  gw = await startGateway(loadConfig({ VORA_DATA_DIR: '/tmp/vora-gw-unit-test', VORA_LOG_LEVEL: 'silent' }), {
    port: 0,
    buffer,
    s3: s3 as never,
    stateLookup: async (id) => {
      if (stateFails) throw new Error('pg down');
      return states[id] ?? null;
    },
  });
  base = `http://127.0.0.1:${gw.port}`;
});
afterAll(() => gw?.close(100));

describe('gateway error paths', () => {
  it('404s FAILED and unknown videos, 503s when the state lookup fails', async () => {
    s3Send = async () => {
      throw new Error('not reached');
    };
    expect((await get('/hls/vid_failedaaaaaaaaaaaaaa/master.m3u8')).status).toBe(404);
    expect((await get('/hls/vid_unknownaaaaaaaaaaaaa/master.m3u8')).status).toBe(404);
    stateFails = true;
    const r = await get(`/hls/${VID}/master.m3u8`);
    stateFails = false;
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toEqual({ error: { code: 'UPSTREAM_UNAVAILABLE', message: 'metadata store unavailable' } });
    expect(r.headers['cache-control']).toBe('no-store');
  });

  it('maps S3 answers: 404 -> OBJECT_NOT_FOUND (briefly cacheable), 500 -> 503, 304 -> 304', async () => {
    s3Send = async () => {
      throw s3Error(404, 'NoSuchKey');
    };
    const nf = await get(`/hls/${VID}/360p/index.m3u8`);
    expect([nf.status, JSON.parse(nf.body).error.code, nf.headers['cache-control']]).toEqual([404, 'OBJECT_NOT_FOUND', 'public, max-age=2']);
    s3Send = async () => {
      throw s3Error(500, 'InternalError');
    };
    expect((await get(`/hls/${VID}/360p/index.m3u8`)).status).toBe(503);
    let seen: Record<string, unknown> = {};
    s3Send = async (cmd) => {
      seen = cmd.input;
      throw s3Error(304, 'NotModified');
    };
    const nm = await get(`/hls/${VID}/360p/index.m3u8`, { 'If-None-Match': '"abc"' });
    expect([nm.status, nm.headers.etag, nm.body]).toEqual([304, '"abc"', '']);
    expect(seen.IfNoneMatch).toBe('"abc"');
    const ims = await get(`/hls/${VID}/360p/index.m3u8`, { 'If-Modified-Since': 'Tue, 01 Jan 2030 00:00:00 GMT' });
    expect(ims.status).toBe(304);
    expect((seen.IfModifiedSince as Date).toISOString()).toBe('2030-01-01T00:00:00.000Z');
  });

  it('answers 503 when the object stream fails before any byte', async () => {
    s3Send = async () => {
      const body = new PassThrough();
      setTimeout(() => body.destroy(new Error('reset')), 10);
      return { Body: body, ContentLength: 100, ETag: '"e"' };
    };
    const r = await get(`/hls/${VID}/360p/seg_00001.m4s`);
    expect(r.status).toBe(503);
  });

  it('closes the connection when the object stream fails mid-body', async () => {
    s3Send = async () => {
      const body = new PassThrough();
      body.write(Buffer.alloc(1000, 1));
      setTimeout(() => body.destroy(new Error('reset')), 20);
      return { Body: body, ContentLength: 5000, ETag: '"e"' };
    };
    const r = await get(`/hls/${VID}/360p/seg_00001.m4s`);
    expect(r.status).toBe(200);
    expect(r.aborted).toBe(true);
    expect(r.body.length).toBeLessThan(5000);
  });

  it('closes the connection when the object is shorter than announced', async () => {
    s3Send = async () => ({ Body: Readable.from([Buffer.alloc(10, 2)]), ContentLength: 50, ETag: '"e"' });
    // The close may discard the corked headers too: a reset before the status line is as good.
    const r = await get(`/hls/${VID}/360p/seg_00001.m4s`).catch(() => ({ aborted: true, body: '' }));
    expect(r.aborted).toBe(true);
    expect((await get('/healthz')).status).toBe(200);
  });

  it('serves empty objects', async () => {
    s3Send = async () => ({ Body: Readable.from([]), ContentLength: 0, ETag: '"e"' });
    const r = await get(`/hls/${VID}/360p/empty.vtt`);
    expect([r.status, r.body, r.headers['content-type'], r.headers['content-length']]).toEqual([200, '', 'text/vtt', '0']);
  });

  it('asks S3 for the byte range it serves', async () => {
    const calls: Record<string, unknown>[] = [];
    s3Send = async (cmd) => {
      calls.push({ op: cmd.constructor.name, ...cmd.input });
      if (cmd.constructor.name === 'HeadObjectCommand') return { ContentLength: 100, ETag: '"e"' };
      return { Body: Readable.from([Buffer.from('0123456789')]), ContentLength: 10, ETag: '"e"' };
    };
    const r = await get(`/hls/${VID}/360p/seg_00001.m4s`, { Range: 'bytes=10-19' });
    expect([r.status, r.body, r.headers['content-range']]).toEqual([206, '0123456789', 'bytes 10-19/100']);
    expect(calls.map((c) => [c.op, c.Range ?? null, c.IfMatch ?? null])).toEqual([
      ['HeadObjectCommand', null, null],
      ['GetObjectCommand', 'bytes=10-19', '"e"'],
    ]);
    // If-Range with another validator: the whole object, no range.
    calls.length = 0;
    s3Send = async (cmd) => {
      calls.push({ op: cmd.constructor.name, ...cmd.input });
      if (cmd.constructor.name === 'HeadObjectCommand') return { ContentLength: 3, ETag: '"new"' };
      return { Body: Readable.from([Buffer.from('abc')]), ContentLength: 3, ETag: '"new"' };
    };
    const whole = await get(`/hls/${VID}/360p/seg_00001.m4s`, { Range: 'bytes=1-1', 'If-Range': '"old"' });
    expect([whole.status, whole.body]).toEqual([200, 'abc']);
  });

  it('answers validators and ranges alike from the object cache and from object storage', async () => {
    const lastModified = new Date('2030-01-01T00:00:00Z');
    const calls: string[] = [];
    s3Send = async (cmd) => {
      calls.push(cmd.constructor.name);
      if (cmd.constructor.name === 'HeadObjectCommand') return { ContentLength: 10, ETag: '"c"', LastModified: lastModified };
      const range = /bytes=(\d+)-(\d+)/.exec(String(cmd.input.Range ?? ''));
      const body = Buffer.from('0123456789').subarray(range ? Number(range[1]) : 0, range ? Number(range[2]) + 1 : 10);
      return { Body: Readable.from([body]), ContentLength: body.length, ETag: '"c"', LastModified: lastModified };
    };
    const seg = `/hls/${VID}/360p/seg_00042.m4s`;
    const ask = async () => {
      const ims = await get(seg, { Range: 'bytes=1-2', 'If-Modified-Since': 'Tue, 01 Jan 2030 00:00:00 GMT' });
      const range = await get(seg, { Range: 'bytes=1-2' });
      const bad = await get(seg, { Range: 'bytes=50-' });
      return [ims.status, range.status, range.body, range.headers['content-range'], range.headers.etag, bad.status, bad.headers['content-range']];
    };
    const fromOrigin = await ask();
    expect(fromOrigin).toEqual([304, 206, '12', 'bytes 1-2/10', '"c"', 416, 'bytes */10']);
    const whole = await get(seg); // fills the object cache
    expect([whole.status, whole.body]).toEqual([200, '0123456789']);
    calls.length = 0;
    expect(await ask()).toEqual(fromOrigin);
    expect(calls).toEqual([]); // all three from the cache
  });

  it('pushes valid events to the buffer and answers 202', async () => {
    pushed.length = 0;
    const body = JSON.stringify([{ videoId: VID, sessionId: 's', type: 'rebuffer', ts: Date.now(), positionSec: 3 }]);
    const r = await get('/v1/events', { 'Content-Type': 'text/plain' }, 'POST', body);
    expect([r.status, JSON.parse(r.body)]).toEqual([202, { accepted: 1 }]);
    expect(pushed).toMatchObject([{ videoId: VID, type: 'rebuffer', positionSec: 3 }]);
  });

  it('rejects other methods with 405 and unknown routes with 404', async () => {
    expect((await get(`/hls/${VID}/master.m3u8`, {}, 'PUT', 'x')).status).toBe(405);
    expect((await get('/v1/events', {}, 'GET')).status).toBe(405);
    expect((await get('/v2/whatever')).status).toBe(404);
  });
});
