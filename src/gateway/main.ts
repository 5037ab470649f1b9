// Streaming gateway: the uWebSockets.js origin behind Varnish. Serves HLS objects from MinIO for
// READY/PARTIALLY_READY videos and takes playback events for ClickHouse.
//   node --import tsx src/gateway/main.ts     (config from VORA_* variables, see src/common/config.ts)
//
// uWS rules followed throughout: onAborted is registered before the first await; after an await
// every write happens inside res.cork(); nothing touches res once it was aborted or ended; bodies
// are streamed with tryEnd/onWritable so at most one source chunk per response waits in memory.
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import uWS, { type HttpRequest, type HttpResponse, type us_listen_socket, type us_socket } from 'uWebSockets.js';
import { loadConfig, type VoraConfig } from '../common/config.ts';
import { createPool, type Pool } from '../common/db.ts';
import { keys } from '../common/keys.ts';
import { createLogger, type Logger } from '../common/log.ts';
import { createMetrics, prom, type Metrics } from '../common/metrics.ts';
import { verifyPlaybackToken } from '../common/playback-token.ts';
import { EventBuffer } from '../analytics/buffer.ts';
import { clickhouseSink, createClickhouse } from '../analytics/clickhouse.ts';
import { MAX_BODY_BYTES, parseEventBatch } from '../analytics/events.ts';
import {
  CORS_HEADERS,
  ERROR_STATUS,
  NOT_FOUND_CACHE_CONTROL,
  PREFLIGHT_HEADERS,
  PRIVATE_CACHE_CONTROL,
  SERVABLE_STATES,
  cacheControlFor,
  contentTypeFor,
  errorBody,
  etagMatches,
  parseHlsPath,
  parseRange,
  rewritePlaylist,
  routeOf,
  statusLine,
  type ErrorCode,
} from './http.ts';
import { attachLive, type LiveHub } from './live.ts';
import { DEFAULT_OBJECT_CACHE, ObjectCache, cacheableObject, type CachedObject, type ObjectCacheOptions } from './object-cache.ts';
import { createOriginS3 } from './origin-s3.ts';
import { cachedStateLookup, pgStateLookup, toAccess, type StateLookup } from './state.ts';

type Header = readonly [string, string];

/** Per-request flags: uWS forbids touching a response after it was aborted or ended. */
interface Ctx {
  aborted: boolean;
  done: boolean;
  abort: AbortController;
  /** HEAD: responses (errors included) carry headers and Content-Length but no body. */
  head: boolean;
  /** Metrics: called with the status once it is written, and with body bytes as they go out. */
  obs?: { status(status: number): void; bytes(n: number): void };
}

export interface GatewayOptions {
  log?: Logger;
  /** Defaults: PostgreSQL pool / S3 client / EventBuffer into ClickHouse, all from cfg. */
  stateLookup?: StateLookup;
  s3?: S3Client;
  buffer?: EventBuffer;
  /** Port override (0 = any free port, for tests); default cfg.ports.gateway. */
  port?: number;
  /**
   * Live status WebSocket (/v1/live, live.ts): needs PostgreSQL. Default: on unless a fake
   * stateLookup is given (unit tests without a database).
   */
  live?: boolean;
  /** Coalescing window of live pushes per video; default 100 ms. */
  liveCoalesceMs?: number;
  /** Prometheus registry to register on; default a new one (createMetrics('gateway')). */
  metrics?: Metrics;
  /** Hot-object cache bounds; default cfg.gatewayCache (maxBytes 0 turns it off). */
  objectCache?: ObjectCacheOptions;
}

export interface Gateway {
  port: number;
  buffer: EventBuffer;
  metrics: Metrics;
  live: LiveHub | null;
  objects: ObjectCache;
  /** Stops accepting, lets running responses finish (up to drainMs), flushes events, closes clients. */
  close(drainMs?: number): Promise<void>;
}

function newCtx(res: HttpResponse, head = false): Ctx {
  const ctx: Ctx = { aborted: false, done: false, abort: new AbortController(), head };
  res.onAborted(() => {
    ctx.aborted = true;
    ctx.abort.abort();
  });
  return ctx;
}

function send(res: HttpResponse, ctx: Ctx, status: number, headers: readonly Header[], body?: string, close = false): void {
  if (ctx.aborted || ctx.done) return;
  ctx.done = true;
  ctx.obs?.status(status);
  if (body !== undefined && !ctx.head) ctx.obs?.bytes(Buffer.byteLength(body));
  res.cork(() => {
    res.writeStatus(statusLine(status));
    for (const [k, v] of headers) res.writeHeader(k, v);
    // 204/304 carry no body and, per RFC 9110, no Content-Length: 0 (endWithoutBody() adds none).
    if (body === undefined) res.endWithoutBody();
    // (endWithoutBody with arguments is unreliable in this uWS build; see serveHls' HEAD branch.)
    else if (ctx.head) res.writeHeader('Content-Length', String(Buffer.byteLength(body))).endWithoutBody();
    else res.end(body, close);
  });
}

function sendError(res: HttpResponse, ctx: Ctx, code: ErrorCode, message: string, extra: readonly Header[] = [], close = false): void {
  const cache: Header = ['Cache-Control', ERROR_STATUS[code] === 404 ? NOT_FOUND_CACHE_CONTROL : 'no-store'];
  send(res, ctx, ERROR_STATUS[code], [...CORS_HEADERS, ['Content-Type', 'application/json'], cache, ...extra], errorBody(code, message), close);
}

/** Headers of a 202 to POST /v1/events (built once: that route runs thousands of times a second). */
const EVENTS_ACCEPTED_HEADERS: readonly Header[] = [...CORS_HEADERS, ['Content-Type', 'application/json'], ['Cache-Control', 'no-store']];
const s3Status = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;

export async function startGateway(cfg: VoraConfig, opts: GatewayOptions = {}): Promise<Gateway> {
  const log = opts.log ?? createLogger('gateway', cfg.logLevel);
  const liveOn = opts.live ?? !opts.stateLookup;
  let pool: Pool | null = null;
  if (!opts.stateLookup || liveOn) pool = createPool(cfg, 5);
  const cachedState = opts.stateLookup ? null : cachedStateLookup(pgStateLookup(pool!));
  const stateOf = opts.stateLookup ?? cachedState!;
  const metrics = opts.metrics ?? createMetrics('gateway');
  const m = gatewayMetrics(metrics);
  // The lean signed-HTTP client for the hot path (origin-s3.ts); tests may pass the SDK or a fake.
  const s3 = opts.s3 ?? (createOriginS3(cfg) as unknown as S3Client);
  const ch = opts.buffer ? null : createClickhouse(cfg);
  const buffer =
    opts.buffer ??
    new EventBuffer({ sink: clickhouseSink(ch!, cfg.clickhouse.database), spoolDir: path.join(cfg.dataDir, 'spool'), log });
  buffer.start();
  const bucket = cfg.s3.bucket;
  const objects = new ObjectCache(opts.objectCache ?? cfg.gatewayCache ?? DEFAULT_OBJECT_CACHE);
  let active = 0; // responses being streamed, waited for on shutdown
  // Served by /healthz: lets tests and operators see what reached the origin (e.g. coalescing).
  const hls = { requests: 0, ok: 0, partial: 0, notModified: 0, notFound: 0, failed: 0, forbidden: 0 };
  /** A Ctx whose responses are counted per route and status (Prometheus). */
  const track = (res: HttpResponse, route: string, head = false): Ctx => {
    const ctx = newCtx(res, head);
    ctx.obs = {
      status: (status) => m.requests.inc({ route, status: String(status) }),
      bytes: (n) => m.bytes.inc({ route }, n),
    };
    return ctx;
  };
  /** Times one object-storage call (until its response headers) for the origin latency histogram. */
  const timed = async <T>(op: string, p: Promise<T>): Promise<T> => {
    const end = m.originFetch.startTimer({ op });
    try {
      const r = await p;
      end({ outcome: 'ok' });
      return r;
    } catch (err) {
      const st = s3Status(err);
      end({ outcome: st === 304 ? 'not_modified' : st === 404 ? 'not_found' : 'error' });
      throw err;
    }
  };

  /**
   * Streams an S3 body with backpressure; headers go out with the first chunk. With `collect`, the
   * chunks are also kept and handed over whole once all `total` bytes arrived (to the object cache).
   */
  function streamBody(
    res: HttpResponse,
    ctx: Ctx,
    body: Readable,
    total: number,
    status: number,
    headers: readonly Header[],
    collect?: (whole: Buffer) => void,
  ): void {
    const writeHead = () => {
      ctx.obs?.status(status);
      res.writeStatus(statusLine(status));
      for (const [k, v] of headers) res.writeHeader(k, v);
    };
    if (total === 0) {
      body.destroy();
      if (!ctx.aborted && !ctx.done) {
        ctx.done = true;
        res.cork(() => {
          writeHead();
          res.end();
        });
      }
      return;
    }
    active++;
    let headSent = false;
    let finished = false;
    let received = 0;
    const kept: Buffer[] | null = collect ? [] : null;
    const finish = () => {
      if (finished) return;
      finished = true;
      active--;
      body.destroy();
    };
    ctx.abort.signal.addEventListener('abort', finish, { once: true });
    body.on('data', (chunk: Buffer) => {
      if (ctx.aborted || ctx.done) return finish();
      received += chunk.length;
      ctx.obs?.bytes(chunk.length);
      if (kept) {
        kept.push(chunk);
        if (received === total) collect!(kept.length === 1 ? kept[0]! : Buffer.concat(kept, total));
      }
      const startOffset = res.getWriteOffset();
      let ok = false;
      let done = false;
      res.cork(() => {
        if (!headSent) writeHead();
        headSent = true;
        [ok, done] = res.tryEnd(chunk, total);
      });
      if (done) {
        ctx.done = true;
        return finish();
      }
      if (ok) return;
      // The socket is full: hold this one chunk, stop reading MinIO, continue when writable.
      body.pause();
      res.onWritable((offset) => {
        if (ctx.aborted || ctx.done) return true;
        const [ok2, done2] = res.tryEnd(chunk.subarray(offset - startOffset), total);
        if (done2) {
          ctx.done = true;
          finish();
        } else if (ok2) {
          body.resume();
        }
        return ok2;
      });
    });
    const broken = (why: string) => {
      if (finished) return;
      finish();
      if (ctx.aborted || ctx.done) return;
      log.warn({ why }, 'object stream ended early');
      if (!headSent) return sendError(res, ctx, 'UPSTREAM_UNAVAILABLE', 'object storage stream failed');
      // Headers (and a Content-Length) are out: closing is the only honest signal of a short body.
      ctx.done = true;
      res.close();
    };
    body.on('error', (err) => broken(String(err)));
    // A complete body may end while its last chunk still waits for onWritable: that is no error.
    body.on('end', () => received < total && broken('short body'));
  }

  /** Sends an in-memory body with backpressure (tryEnd/onWritable): uWS copies none of it ahead. */
  function sendBuffer(res: HttpResponse, ctx: Ctx, body: Buffer, status: number, headers: readonly Header[]): void {
    if (ctx.aborted || ctx.done) return;
    ctx.obs?.status(status);
    ctx.obs?.bytes(body.length);
    let done = false;
    const startOffset = res.getWriteOffset();
    res.cork(() => {
      res.writeStatus(statusLine(status));
      for (const [k, v] of headers) res.writeHeader(k, v);
      if (ctx.head) {
        res.writeHeader('Content-Length', String(body.length)).endWithoutBody();
        done = true;
      } else {
        done = res.tryEnd(body, body.length)[1];
      }
    });
    // A whole body either went out at once or met a full socket (ok false): then continue on writable.
    if (done) {
      ctx.done = true;
      return;
    }
    active++;
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        active--;
      }
    };
    ctx.abort.signal.addEventListener('abort', release, { once: true });
    res.onWritable((offset) => {
      if (ctx.aborted || ctx.done) {
        release();
        return true;
      }
      const [ok2, done2] = res.tryEnd(body.subarray(offset - startOffset), body.length);
      if (done2) {
        ctx.done = true;
        release();
      }
      return ok2;
    });
  }

  /** A request answered from the object cache: the same validators, ranges and HEAD as from MinIO. */
  function serveCached(
    res: HttpResponse,
    ctx: Ctx,
    o: CachedObject,
    base: readonly Header[],
    cacheControl: string,
    q: { ifNoneMatch: string; ifModifiedSince: string; rangeHeader: string; ifRange: string },
  ): void {
    const meta: Header[] = [];
    if (o.etag) meta.push(['ETag', o.etag]);
    if (o.lastModified) meta.push(['Last-Modified', o.lastModified.toUTCString()]);
    const ims = !q.ifNoneMatch && q.ifModifiedSince ? safeDate(q.ifModifiedSince) : undefined;
    if (etagMatches(q.ifNoneMatch, o.etag) || (ims && o.lastModified && o.lastModified.getTime() <= ims.getTime())) {
      hls.notModified++;
      return send(res, ctx, 304, [...CORS_HEADERS, ['Cache-Control', cacheControl], ...(o.etag ? [['ETag', o.etag] as Header] : [])]);
    }
    const size = o.body.length;
    const r = !q.rangeHeader || ctx.head || (q.ifRange && q.ifRange !== o.etag) ? ({ kind: 'none' } as const) : parseRange(q.rangeHeader, size);
    if (r.kind === 'unsatisfiable') {
      return sendError(res, ctx, 'RANGE_NOT_SATISFIABLE', `object has ${size} bytes`, [['Content-Range', `bytes */${size}`]]);
    }
    if (r.kind === 'range') {
      hls.partial++;
      return sendBuffer(res, ctx, o.body.subarray(r.start, r.end + 1), 206, [...base, ...meta, ['Content-Range', `bytes ${r.start}-${r.end}/${size}`]]);
    }
    hls.ok++;
    return sendBuffer(res, ctx, o.body, 200, [...base, ...meta]);
  }

  async function serveHls(res: HttpResponse, req: HttpRequest, isHead: boolean): Promise<void> {
    // HttpRequest is stack-allocated: read everything before the first await.
    const url = req.getUrl();
    const rangeHeader = req.getHeader('range');
    const ifNoneMatch = req.getHeader('if-none-match');
    const ifModifiedSince = req.getHeader('if-modified-since');
    const ifRange = req.getHeader('if-range');
    const token = req.getQuery('token');
    const ctx = track(res, routeOf(url), isHead);
    hls.requests++;

    const p = parseHlsPath(url);
    if (!p.ok) return sendError(res, ctx, p.code, p.message);
    let access: { state: string; private: boolean } | null;
    try {
      access = toAccess(await stateOf(p.videoId));
    } catch (err) {
      log.error({ err: String(err) }, 'video state lookup failed');
      return sendError(res, ctx, 'UPSTREAM_UNAVAILABLE', 'metadata store unavailable');
    }
    if (ctx.aborted) return;
    if (!access || !SERVABLE_STATES.has(access.state)) {
      hls.notFound++;
      return sendError(res, ctx, 'VIDEO_NOT_FOUND', `no playable video ${p.videoId}`);
    }
    const state = access.state;
    if (access.private) {
      if (!token) {
        hls.forbidden++;
        return sendError(res, ctx, 'PLAYBACK_TOKEN_REQUIRED', 'this video is private: add ?token= from GET /v1/videos/{id}');
      }
      if (!verifyPlaybackToken(cfg.playbackSecret, token, p.videoId, Math.floor(Date.now() / 1000))) {
        hls.forbidden++;
        return sendError(res, ctx, 'PLAYBACK_TOKEN_INVALID', 'playback token is invalid or expired for this video');
      }
    }

    const Key = keys.hls(p.videoId, p.rel);
    const cacheControl = access.private ? PRIVATE_CACHE_CONTROL : cacheControlFor(p.rel, state);
    const base: Header[] = [
      ...CORS_HEADERS,
      ['Content-Type', contentTypeFor(p.rel)],
      ['Cache-Control', cacheControl],
      ['Accept-Ranges', 'bytes'],
    ];
    const meta = (etag?: string, lastModified?: Date): Header[] => [
      ...(etag ? [['ETag', etag] as Header] : []),
      ...(lastModified ? [['Last-Modified', lastModified.toUTCString()] as Header] : []),
    ];
    const notModified = (etag?: string) => {
      hls.notModified++;
      send(res, ctx, 304, [...CORS_HEADERS, ['Cache-Control', cacheControl], ...(etag ? [['ETag', etag] as Header] : [])]);
    };
    const conditional = {
      IfNoneMatch: ifNoneMatch || undefined,
      // If-None-Match wins over If-Modified-Since (RFC 9110 §13.1.3).
      IfModifiedSince: !ifNoneMatch && ifModifiedSince ? safeDate(ifModifiedSince) : undefined,
    };
    const signal = ctx.abort.signal;
    const cacheable = objects.enabled && !access.private && cacheableObject(p.rel, state);
    if (cacheable) {
      const hit = objects.get(Key);
      if (hit) return serveCached(res, ctx, hit, base, cacheControl, { ifNoneMatch, ifModifiedSince, rangeHeader, ifRange });
    }

    try {
      if (access.private && p.rel.endsWith('.m3u8')) {
        // Rewritten per token: no validators, no ranges, never cached (PRIVATE_CACHE_CONTROL).
        const o = await timed('get', s3.send(new GetObjectCommand({ Bucket: bucket, Key }), { abortSignal: signal }));
        const text = await readText(o.Body as Readable);
        if (ctx.aborted) return;
        hls.ok++;
        return send(res, ctx, 200, base, rewritePlaylist(text, token!));
      }
      if (isHead) {
        const h = await timed('head', s3.send(new HeadObjectCommand({ Bucket: bucket, Key, ...conditional }), { abortSignal: signal }));
        if (ctx.aborted || ctx.done) return;
        ctx.done = true;
        ctx.obs?.status(200);
        res.cork(() => {
          res.writeStatus('200 OK');
          for (const [k, v] of [...base, ...meta(h.ETag, h.LastModified)]) res.writeHeader(k, v);
          // endWithoutBody(length) leaves the keep-alive connection unusable in this uWS build
          // (uNetworking/uWebSockets#1557/#1855); the argless form plus our own header is clean.
          res.writeHeader('Content-Length', String(h.ContentLength ?? 0));
          res.endWithoutBody();
        });
        return;
      }
      if (rangeHeader) {
        // The object's size decides the range: ask for it first (ranges are rare in HLS).
        const h = await timed('head', s3.send(new HeadObjectCommand({ Bucket: bucket, Key }), { abortSignal: signal }));
        if (ctx.aborted) return;
        if (etagMatches(ifNoneMatch, h.ETag)) return notModified(h.ETag);
        const size = h.ContentLength ?? 0;
        // If-Range with a different validator means "send the whole (new) object".
        const r = ifRange && ifRange !== h.ETag ? ({ kind: 'none' } as const) : parseRange(rangeHeader, size);
        if (r.kind === 'unsatisfiable') {
          return sendError(res, ctx, 'RANGE_NOT_SATISFIABLE', `object has ${size} bytes`, [['Content-Range', `bytes */${size}`]]);
        }
        if (r.kind === 'range') {
          const o = await timed(
            'get',
            s3.send(new GetObjectCommand({ Bucket: bucket, Key, Range: `bytes=${r.start}-${r.end}`, IfMatch: h.ETag }), { abortSignal: signal }),
          );
          if (ctx.aborted) return void (o.Body as Readable | undefined)?.destroy();
          const len = r.end - r.start + 1;
          hls.partial++;
          return streamBody(res, ctx, o.Body as Readable, len, 206, [
            ...base,
            ...meta(h.ETag, h.LastModified),
            ['Content-Range', `bytes ${r.start}-${r.end}/${size}`],
          ]);
        }
      }
      const o = await timed('get', s3.send(new GetObjectCommand({ Bucket: bucket, Key, ...conditional }), { abortSignal: signal }));
      if (ctx.aborted) return void (o.Body as Readable | undefined)?.destroy();
      hls.ok++;
      const size = o.ContentLength ?? 0;
      const keep = cacheable && objects.fits(size) ? (body: Buffer) => objects.set(Key, { body, etag: o.ETag, lastModified: o.LastModified }) : undefined;
      return streamBody(res, ctx, o.Body as Readable, size, 200, [...base, ...meta(o.ETag, o.LastModified)], keep);
    } catch (err) {
      if (ctx.aborted) return;
      const status = s3Status(err);
      if (status === 304) return notModified(ifNoneMatch && !ifNoneMatch.includes(',') ? ifNoneMatch : undefined);
      if (status === 404 || (err as Error).name === 'NoSuchKey') {
        hls.notFound++;
        return sendError(res, ctx, 'OBJECT_NOT_FOUND', `no object ${p.rel}`);
      }
      hls.failed++;
      if (status === 412) return sendError(res, ctx, 'UPSTREAM_UNAVAILABLE', 'object changed while reading; retry');
      log.error({ err: String(err), key: Key }, 'object storage request failed');
      return sendError(res, ctx, 'UPSTREAM_UNAVAILABLE', 'object storage unavailable');
    }
  }

  function postEvents(res: HttpResponse, req: HttpRequest): void {
    const declared = Number(req.getHeader('content-length') || '0');
    const ctx = track(res, 'events');
    if (declared > MAX_BODY_BYTES) {
      return sendError(res, ctx, 'PAYLOAD_TOO_LARGE', `at most ${MAX_BODY_BYTES} bytes per batch`, [], true);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((ab, isLast) => {
      if (ctx.done || ctx.aborted) return;
      size += ab.byteLength;
      if (size > MAX_BODY_BYTES) {
        // Chunked bodies have no declared length; stop at the bound and drop the connection.
        return sendError(res, ctx, 'PAYLOAD_TOO_LARGE', `at most ${MAX_BODY_BYTES} bytes per batch`, [], true);
      }
      // uWS neuters the ArrayBuffer after this callback: a body in one piece (the usual case) is
      // decoded right here without a copy, pieces of a longer one are copied and joined.
      if (!isLast) return void chunks.push(Buffer.from(ab.slice(0)));
      const text = chunks.length === 0 ? Buffer.from(ab).toString('utf8') : Buffer.concat([...chunks, Buffer.from(ab)]).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return sendError(res, ctx, 'INVALID_EVENTS', 'body is not valid JSON');
      }
      const parsed = parseEventBatch(body);
      if (!parsed.ok) return sendError(res, ctx, 'INVALID_EVENTS', parsed.message);
      const accepted = buffer.push(parsed.events);
      send(res, ctx, 202, EVENTS_ACCEPTED_HEADERS, `{"accepted":${accepted}}`);
    });
  }

  const app = uWS.App();
  const live = liveOn
    ? attachLive(app, { cfg, db: pool!, log, coalesceMs: opts.liveCoalesceMs, onChange: (id) => {
          cachedState?.invalidate(id);
          objects.deletePrefix(keys.hlsPrefix(id));
        },
      })
    : null;
  m.observeObjects(() => objects.stats());
  m.observe(() => buffer.stats() as Partial<ReturnType<EventBuffer['stats']>>, () => live?.stats() ?? null);
  app
    .get('/healthz', (res) => {
      const ctx = newCtx(res);
      send(res, ctx, 200, [['Content-Type', 'application/json'], ['Cache-Control', 'no-store']], JSON.stringify({ status: 'ok', hls, objectCache: objects.stats(), events: buffer.stats(), live: live?.stats() ?? null }));
    })
    .get('/metrics', (res) => {
      const ctx = track(res, 'metrics');
      metrics.metrics().then(
        (text) => send(res, ctx, 200, [['Content-Type', metrics.contentType], ['Cache-Control', 'no-store']], text),
        (err) => sendError(res, ctx, 'INTERNAL', String(err)),
      );
    })
    .head('/healthz', (res) => {
      res.cork(() => res.writeStatus('200 OK').writeHeader('Content-Length', '0').endWithoutBody());
    })
    .get('/hls/*', (res, req) => void serveHls(res, req, false))
    .head('/hls/*', (res, req) => void serveHls(res, req, true))
    .post('/v1/events', postEvents)
    .options('/*', (res) => {
      const ctx = newCtx(res);
      send(res, ctx, 204, PREFLIGHT_HEADERS);
    })
    .any('/hls/*', (res) => {
      sendError(res, newCtx(res), 'METHOD_NOT_ALLOWED', 'use GET or HEAD', [['Allow', 'GET, HEAD, OPTIONS']]);
    })
    .any('/v1/events', (res) => {
      sendError(res, newCtx(res), 'METHOD_NOT_ALLOWED', 'use POST', [['Allow', 'POST, OPTIONS']]);
    })
    .any('/*', (res) => {
      sendError(res, newCtx(res), 'NOT_FOUND', 'no such route');
    });

  const wantPort = opts.port ?? cfg.ports.gateway;
  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(cfg.host, wantPort, (ls) => {
      if (ls) resolve(ls);
      else reject(new Error(`gateway cannot listen on ${cfg.host}:${wantPort} (port taken? set VORA_GATEWAY_PORT)`));
    });
  });
  const port = uWS.us_socket_local_port(listenSocket as unknown as us_socket);
  log.info({ host: cfg.host, port }, 'gateway listening');

  let closing: Promise<void> | null = null;
  return {
    port,
    buffer,
    metrics,
    live,
    objects,
    close(drainMs = 5_000) {
      closing ??= (async () => {
        uWS.us_listen_socket_close(listenSocket);
        await live?.close();
        const until = Date.now() + drainMs;
        while (active > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
        app.close(); // drops idle keep-alive connections, which would otherwise hold the process
        await buffer.close();
        await Promise.allSettled([ch?.close(), pool?.end()]);
        if (!opts.s3) s3.destroy();
        log.info({ events: buffer.stats() }, 'gateway stopped');
      })();
      return closing;
    },
  };
}

type BufferStats = Partial<ReturnType<EventBuffer['stats']>>;
type LiveStatsFn = () => ReturnType<LiveHub['stats']> | null;

/** The gateway's Prometheus series on `metrics.registry`. */
function gatewayMetrics(metrics: Metrics) {
  const registers = [metrics.registry];
  const requests = new prom.Counter({
    name: 'vora_gateway_http_requests_total',
    help: 'HTTP responses by route (hls_playlist, hls_segment, hls_other, events, metrics) and status',
    labelNames: ['route', 'status'],
    registers,
  });
  const bytes = new prom.Counter({ name: 'vora_gateway_response_body_bytes_total', help: 'Response body bytes sent, by route', labelNames: ['route'], registers });
  const originFetch = new prom.Histogram({
    name: 'vora_gateway_origin_fetch_seconds',
    help: 'Object storage (MinIO/S3) request latency until response headers, by operation and outcome',
    labelNames: ['op', 'outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  let objectStats: () => ReturnType<ObjectCache['stats']> | null = () => null;
  const objSeen: Record<string, number> = {};
  new prom.Counter({
    name: 'vora_gateway_object_cache_lookups_total',
    help: 'Hot-object cache lookups of cacheable /hls/ objects, by outcome (hit, miss)',
    labelNames: ['outcome'],
    registers,
    collect() {
      const st = objectStats();
      for (const [k, outcome] of [['hits', 'hit'], ['misses', 'miss']] as const) {
        const v = st?.[k] ?? 0;
        this.inc({ outcome }, Math.max(0, v - (objSeen[k] ?? 0)));
        objSeen[k] = Math.max(v, objSeen[k] ?? 0);
      }
    },
  });
  new prom.Gauge({
    name: 'vora_gateway_object_cache_bytes',
    help: 'Bytes of object bodies held by the hot-object cache',
    registers,
    collect() {
      this.set(objectStats()?.bytes ?? 0);
    },
  });
  let bufferStats: () => BufferStats = () => ({});
  let liveStats: LiveStatsFn = () => null;
  // Counters mirrored from the EventBuffer's own counters (increased by the difference at scrape).
  const seen: Record<string, number> = {};
  new prom.Counter({
    name: 'vora_events_total',
    help: 'Playback events by outcome: accepted (202), flushed (stored in ClickHouse), spilled (to the disk spool), replayed (from the spool), dropped (spool full)',
    labelNames: ['outcome'],
    registers,
    collect() {
      const s = bufferStats();
      for (const k of ['accepted', 'flushed', 'spilled', 'replayed', 'dropped'] as const) {
        const v = Number(s[k] ?? 0);
        const d = v - (seen[k] ?? 0);
        if (d > 0) this.inc({ outcome: k }, d);
        seen[k] = Math.max(v, seen[k] ?? 0);
        if (d === 0 && seen[k] === 0) this.inc({ outcome: k }, 0);
      }
    },
  });
  new prom.Gauge({
    name: 'vora_events_buffered',
    help: 'Events held in memory waiting for ClickHouse',
    registers,
    collect() {
      this.set(Number(bufferStats().buffered ?? 0));
    },
  });
  new prom.Gauge({
    name: 'vora_events_spool_bytes',
    help: 'Bytes of events spooled to disk while ClickHouse is unavailable',
    registers,
    collect() {
      this.set(Number(bufferStats().spoolBytes ?? 0));
    },
  });
  new prom.Gauge({
    name: 'vora_live_sockets',
    help: 'Open /v1/live WebSockets',
    registers,
    collect() {
      this.set(liveStats()?.sockets ?? 0);
    },
  });
  new prom.Gauge({
    name: 'vora_live_subscriptions',
    help: 'Video subscriptions over all /v1/live WebSockets',
    registers,
    collect() {
      this.set(liveStats()?.subscriptions ?? 0);
    },
  });
  return {
    requests,
    bytes,
    originFetch,
    observeObjects(o: () => ReturnType<ObjectCache['stats']>) {
      objectStats = o;
    },
    observe(b: () => BufferStats, l: LiveStatsFn) {
      bufferStats = b;
      liveStats = l;
    },
  };
}

async function readText(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks).toString('utf8');
}

function safeDate(s: string): Date | undefined {
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

async function main(): Promise<void> {
  const cfg = loadConfig();
  const log = createLogger('gateway', cfg.logLevel);
  const gw = await startGateway(cfg, { log });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    gw.close().then(
      () => process.exit(0),
      (err) => {
        log.error({ err: String(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
