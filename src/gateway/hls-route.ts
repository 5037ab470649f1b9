// GET/HEAD /hls/{videoId}/{rel}: HLS objects of READY and PARTIALLY_READY videos from the hot-object
// cache or MinIO. Cached and origin bodies answer validators and ranges by the same rule
// (answerFor in http.ts); a plain GET leaves If-None-Match/If-Modified-Since to object storage,
// which saves a HEAD round trip.
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { keys } from '../common/keys.ts';
import type { Logger } from '../common/log.ts';
import { verifyPlaybackToken } from '../common/playback-token.ts';
import {
  CORS_HEADERS,
  PRIVATE_CACHE_CONTROL,
  SERVABLE_STATES,
  answerFor,
  cacheControlFor,
  contentTypeFor,
  parseHlsPath,
  rewritePlaylist,
  routeOf,
  safeDate,
  type Preconditions,
} from './http.ts';
import { cacheableObject, type ObjectCache } from './object-cache.ts';
import { s3Status } from './origin-s3.ts';
import { send, sendError, sendHead, type BodyWriter, type Ctx, type Header } from './respond.ts';
import { toAccess, type StateLookup } from './state.ts';

export interface HlsDeps {
  bucket: string;
  playbackSecret: string;
  stateOf: StateLookup;
  s3: S3Client;
  objects: ObjectCache;
  bodies: BodyWriter;
  log: Logger;
  /** A Ctx counted in the request metrics (newCtx underneath: onAborted is registered at once). */
  track(res: HttpResponse, route: string, head: boolean): Ctx;
  /** Times one object-storage call for the origin latency histogram. */
  timed<T>(op: string, p: Promise<T>): Promise<T>;
}

/** Served by /healthz: lets tests and operators see what reached the origin (e.g. coalescing). */
export interface HlsCounters {
  requests: number;
  ok: number;
  partial: number;
  notModified: number;
  notFound: number;
  failed: number;
  forbidden: number;
}

const validatorHeaders = (etag?: string, lastModified?: Date): Header[] => [
  ...(etag ? [['ETag', etag] as Header] : []),
  ...(lastModified ? [['Last-Modified', lastModified.toUTCString()] as Header] : []),
];

export function hlsRoute(d: HlsDeps) {
  const { s3, objects, bodies, bucket, log } = d;
  const hls: HlsCounters = { requests: 0, ok: 0, partial: 0, notModified: 0, notFound: 0, failed: 0, forbidden: 0 };

  async function serve(res: HttpResponse, req: HttpRequest, isHead: boolean): Promise<void> {
    // HttpRequest is stack-allocated: read everything before the first await.
    const url = req.getUrl();
    const q: Preconditions = {
      range: req.getHeader('range'),
      ifNoneMatch: req.getHeader('if-none-match'),
      ifModifiedSince: req.getHeader('if-modified-since'),
      ifRange: req.getHeader('if-range'),
    };
    const token = req.getQuery('token');
    const ctx = d.track(res, routeOf(url), isHead);
    hls.requests++;

    const p = parseHlsPath(url);
    if (!p.ok) return sendError(res, ctx, p.code, p.message);
    let access: { state: string; private: boolean } | null;
    try {
      access = toAccess(await d.stateOf(p.videoId));
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
      if (!verifyPlaybackToken(d.playbackSecret, token, p.videoId, Math.floor(Date.now() / 1000))) {
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
    const notModified = (etag?: string) => {
      hls.notModified++;
      send(res, ctx, 304, [...CORS_HEADERS, ['Cache-Control', cacheControl], ...(etag ? [['ETag', etag] as Header] : [])]);
    };
    /**
     * Answers 304 or 416 itself; otherwise says which bytes to send, with their headers (the
     * object's validators, and Content-Range for a range).
     */
    const decide = (etag: string | undefined, lastModified: Date | undefined, size: number) => {
      const a = answerFor(q, { etag, lastModified }, size, isHead);
      if (a.kind === 'not_modified') return void notModified(etag);
      if (a.kind === 'unsatisfiable') {
        return void sendError(res, ctx, 'RANGE_NOT_SATISFIABLE', `object has ${size} bytes`, [['Content-Range', `bytes */${size}`]]);
      }
      const headers = [...base, ...validatorHeaders(etag, lastModified)];
      if (a.kind === 'none') return { whole: true, headers } as const;
      headers.push(['Content-Range', `bytes ${a.start}-${a.end}/${size}`]);
      return { whole: false, start: a.start, end: a.end, headers } as const;
    };

    const signal = ctx.abort.signal;
    const cacheable = objects.enabled && !access.private && cacheableObject(p.rel, state);
    if (cacheable) {
      const hit = objects.get(Key);
      if (hit) {
        const r = decide(hit.etag, hit.lastModified, hit.body.length);
        if (!r) return;
        if (r.whole) hls.ok++;
        else hls.partial++;
        return bodies.buffer(res, ctx, r.whole ? hit.body : hit.body.subarray(r.start, r.end + 1), r.whole ? 200 : 206, r.headers);
      }
    }

    try {
      if (access.private && p.rel.endsWith('.m3u8')) {
        // Rewritten per token: no validators, no ranges, never cached (PRIVATE_CACHE_CONTROL).
        const o = await d.timed('get', s3.send(new GetObjectCommand({ Bucket: bucket, Key }), { abortSignal: signal }));
        const text = await readText(o.Body as Readable);
        if (ctx.aborted) return;
        hls.ok++;
        return send(res, ctx, 200, base, rewritePlaylist(text, token!));
      }
      const conditional = {
        IfNoneMatch: q.ifNoneMatch || undefined,
        // If-None-Match wins over If-Modified-Since (RFC 9110 §13.1.3).
        IfModifiedSince: !q.ifNoneMatch && q.ifModifiedSince ? safeDate(q.ifModifiedSince) : undefined,
      };
      if (isHead) {
        const h = await d.timed('head', s3.send(new HeadObjectCommand({ Bucket: bucket, Key, ...conditional }), { abortSignal: signal }));
        if (ctx.aborted) return;
        return sendHead(res, ctx, 200, [...base, ...validatorHeaders(h.ETag, h.LastModified)], h.ContentLength ?? 0);
      }
      if (q.range) {
        // The object's size decides the range: ask for it first (ranges are rare in HLS).
        const h = await d.timed('head', s3.send(new HeadObjectCommand({ Bucket: bucket, Key }), { abortSignal: signal }));
        if (ctx.aborted) return;
        const r = decide(h.ETag, h.LastModified, h.ContentLength ?? 0);
        if (!r) return;
        if (!r.whole) {
          const o = await d.timed(
            'get',
            s3.send(new GetObjectCommand({ Bucket: bucket, Key, Range: `bytes=${r.start}-${r.end}`, IfMatch: h.ETag }), { abortSignal: signal }),
          );
          if (ctx.aborted) return void (o.Body as Readable | undefined)?.destroy();
          hls.partial++;
          return bodies.stream(res, ctx, o.Body as Readable, r.end - r.start + 1, 206, r.headers);
        }
        // No range to honour (If-Range names another version, or one we ignore): the whole object.
      }
      const o = await d.timed('get', s3.send(new GetObjectCommand({ Bucket: bucket, Key, ...conditional }), { abortSignal: signal }));
      if (ctx.aborted) return void (o.Body as Readable | undefined)?.destroy();
      hls.ok++;
      const size = o.ContentLength ?? 0;
      const keep = cacheable && objects.fits(size) ? (body: Buffer) => objects.set(Key, { body, etag: o.ETag, lastModified: o.LastModified }) : undefined;
      return bodies.stream(res, ctx, o.Body as Readable, size, 200, [...base, ...validatorHeaders(o.ETag, o.LastModified)], keep);
    } catch (err) {
      if (ctx.aborted) return;
      const status = s3Status(err);
      if (status === 304) return notModified(q.ifNoneMatch && !q.ifNoneMatch.includes(',') ? q.ifNoneMatch : undefined);
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

  return { serve, counters: hls };
}

async function readText(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks).toString('utf8');
}
