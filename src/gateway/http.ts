// Pure request/response rules of the streaming gateway: no sockets, no I/O, so they are unit-tested
// directly and shared by the routes (hls-route.ts, events-route.ts) and respond.ts.
import { ID_RE } from '../common/keys.ts';

/** One table of error codes to HTTP statuses; every error body is {"error":{"code","message"}}. */
export const ERROR_STATUS = {
  BAD_VIDEO_ID: 400,
  INVALID_EVENTS: 400,
  PLAYBACK_TOKEN_REQUIRED: 403,
  PLAYBACK_TOKEN_INVALID: 403,
  NOT_FOUND: 404,
  VIDEO_NOT_FOUND: 404,
  OBJECT_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RANGE_NOT_SATISFIABLE: 416,
  INTERNAL: 500,
  UPSTREAM_UNAVAILABLE: 503,
} as const;
export type ErrorCode = keyof typeof ERROR_STATUS;

const REASON: Record<number, string> = {
  200: 'OK',
  202: 'Accepted',
  204: 'No Content',
  206: 'Partial Content',
  304: 'Not Modified',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};
/** uWS wants the whole status line text ("206 Partial Content"). */
export const statusLine = (status: number) => `${status} ${REASON[status] ?? ''}`.trimEnd();

export function errorBody(code: ErrorCode, message: string): string {
  return JSON.stringify({ error: { code, message } });
}

/** Video states whose objects may be served (the playable ones); others and unknown videos are 404. */
export { PLAYABLE_STATES as SERVABLE_STATES } from '../common/video-state.ts';

export type HlsPath =
  | { ok: true; videoId: string; rel: string }
  | { ok: false; code: 'BAD_VIDEO_ID' | 'NOT_FOUND'; message: string };

// A segment name: letters, digits, '_', '.', '-', and not made only of dots ('.' and '..').
const SEGMENT_RE = /^[A-Za-z0-9_.-]{1,128}$/;

/**
 * Splits `/hls/{videoId}/{rel}` and validates it. `rel` is at most two segments ("master.m3u8",
 * "360p/seg_00000.m4s"), each from [A-Za-z0-9_.-], never "." or "..": the object key is built from
 * it, so nothing here can climb out of the video's prefix. Percent-escapes are not decoded, so an
 * encoded slash or dot is simply an invalid character.
 */
export function parseHlsPath(url: string): HlsPath {
  if (!url.startsWith('/hls/')) return { ok: false, code: 'NOT_FOUND', message: 'no such route' };
  const parts = url.slice('/hls/'.length).split('/');
  const videoId = parts[0] ?? '';
  if (!ID_RE.test(videoId) || !videoId.startsWith('vid_')) {
    return { ok: false, code: 'BAD_VIDEO_ID', message: 'video id must look like vid_ + 20 base32 characters' };
  }
  const rel = parts.slice(1);
  if (rel.length < 1 || rel.length > 2) return { ok: false, code: 'NOT_FOUND', message: 'no such object' };
  for (const seg of rel) {
    if (!SEGMENT_RE.test(seg) || /^\.+$/.test(seg)) return { ok: false, code: 'NOT_FOUND', message: 'no such object' };
  }
  return { ok: true, videoId, rel: rel.join('/') };
}

const CONTENT_TYPES: Record<string, string> = {
  m3u8: 'application/vnd.apple.mpegurl',
  m4s: 'video/iso.segment',
  mp4: 'video/mp4',
  m4a: 'audio/mp4',
  ts: 'video/mp2t',
  aac: 'audio/aac',
  vtt: 'text/vtt',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  json: 'application/json',
};

export function extensionOf(rel: string): string {
  const name = rel.slice(rel.lastIndexOf('/') + 1);
  const dot = name.lastIndexOf('.');
  return dot < 0 ? '' : name.slice(dot + 1).toLowerCase();
}

export function contentTypeFor(rel: string): string {
  return CONTENT_TYPES[extensionOf(rel)] ?? 'application/octet-stream';
}

export const IMMUTABLE_EXT = new Set(['m4s', 'mp4', 'm4a', 'ts', 'aac']);

/**
 * Segments and init sections never change once written (the worker writes a rendition's playlist
 * after its segments), so they are immutable. Playlists of a finished video are stable for an hour;
 * while a video is PARTIALLY_READY its master playlist grows as renditions finish, so caches
 * (Varnish, players) must re-ask within seconds.
 */
export function cacheControlFor(rel: string, state: string): string {
  if (IMMUTABLE_EXT.has(extensionOf(rel))) return 'public, max-age=31536000, immutable';
  return state === 'READY' ? 'public, max-age=3600' : 'public, max-age=2';
}

/** Every response about a private video's objects: no shared cache may keep it (Varnish passes). */
export const PRIVATE_CACHE_CONTROL = 'private, no-store';

/**
 * A private video's playlist with `?token=` on every URI: players resolve relative URIs against the
 * playlist URL but do not carry its query string over, so each media playlist, init section
 * (EXT-X-MAP URI="..."), audio group (EXT-X-MEDIA URI="...") and segment line gets the token.
 * URI lines are the non-empty lines that are not tags (RFC 8216 §4.1).
 */
export function rewritePlaylist(text: string, token: string): string {
  const q = encodeURIComponent(token);
  const add = (uri: string) => {
    if (/[?&]token=/.test(uri)) return uri;
    return `${uri}${uri.includes('?') ? '&' : '?'}token=${q}`;
  };
  return text
    .split('\n')
    .map((line) => {
      const t = line.replace(/\r$/, '');
      if (t.trim() === '') return line;
      if (t.startsWith('#')) {
        if (!t.startsWith('#EXT')) return line; // a comment
        return line.replace(/URI="([^"]*)"/g, (_m, uri: string) => `URI="${add(uri)}"`);
      }
      return line.replace(t.trim(), add(t.trim()));
    })
    .join('\n');
}

/** Low-cardinality route label for metrics. */
export function routeOf(url: string): string {
  if (url.startsWith('/hls/')) {
    const ext = extensionOf(url);
    if (ext === 'm3u8') return 'hls_playlist';
    if (IMMUTABLE_EXT.has(ext)) return 'hls_segment';
    return 'hls_other';
  }
  if (url === '/v1/events') return 'events';
  if (url === '/v1/live') return 'live';
  if (url === '/healthz') return 'healthz';
  if (url === '/metrics') return 'metrics';
  return 'other';
}

/** 404s under /hls/ are cached briefly: a segment that is not there yet may appear in seconds. */
export const NOT_FOUND_CACHE_CONTROL = 'public, max-age=2';

export type RangeResult =
  | { kind: 'none' } // no Range, or one we ignore (multi-range, other unit, malformed): serve 200
  | { kind: 'unsatisfiable' }
  | { kind: 'range'; start: number; end: number }; // inclusive, clamped to the object

/**
 * RFC 9110 single byte range: "bytes=a-b", "bytes=a-", "bytes=-n". Multi-range requests are
 * answered with the whole object (allowed by the RFC, and no HLS player sends them); a syntactically
 * invalid header is ignored as the RFC says.
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (!header) return { kind: 'none' };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return { kind: 'none' };
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return { kind: 'none' };
  if (a === '') {
    const n = Number(b);
    if (n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const last = b === '' ? Infinity : Number(b);
  if (!Number.isSafeInteger(start) || last < start) return { kind: 'none' }; // "5-3" is invalid: ignored
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', start, end: Math.min(last, size - 1) };
}

/** A request's validators and Range header ('' when absent), read before the first await. */
export interface Preconditions {
  ifNoneMatch: string;
  ifModifiedSince: string;
  range: string;
  ifRange: string;
}

export type ObjectAnswer = RangeResult | { kind: 'not_modified' };

/**
 * What a GET or HEAD of an object with these validators and `size` bytes is answered with, in RFC
 * 9110 §13.2.2 order: If-None-Match (or If-Modified-Since when there is none) may make it a 304;
 * then a Range is honoured unless it is a HEAD or If-Range names another version of the object.
 */
export function answerFor(q: Preconditions, o: { etag?: string; lastModified?: Date }, size: number, head: boolean): ObjectAnswer {
  const ims = !q.ifNoneMatch && q.ifModifiedSince ? safeDate(q.ifModifiedSince) : undefined;
  if (etagMatches(q.ifNoneMatch, o.etag) || (ims && o.lastModified && o.lastModified.getTime() <= ims.getTime())) return { kind: 'not_modified' };
  if (head || (q.ifRange && q.ifRange !== o.etag)) return { kind: 'none' };
  return parseRange(q.range, size);
}

/** An HTTP date, or undefined for one that does not parse (the header is then ignored). */
export function safeDate(s: string): Date | undefined {
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** Weak comparison of an If-None-Match list against an ETag (RFC 9110 §13.1.2). */
export function etagMatches(ifNoneMatch: string | undefined, etag: string | undefined): boolean {
  if (!ifNoneMatch || !etag) return false;
  if (ifNoneMatch.trim() === '*') return true;
  const strip = (t: string) => t.trim().replace(/^W\//, '');
  const want = strip(etag);
  return ifNoneMatch.split(',').some((t) => strip(t) === want);
}

export const CORS_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['Access-Control-Allow-Origin', '*'],
  ['Access-Control-Expose-Headers', 'Content-Length, Content-Range, Accept-Ranges, ETag, X-Cache'],
];

export const PREFLIGHT_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ...CORS_HEADERS,
  ['Access-Control-Allow-Methods', 'GET, HEAD, POST, OPTIONS'],
  ['Access-Control-Allow-Headers', 'Range, Content-Type, If-None-Match, If-Modified-Since'],
  ['Access-Control-Max-Age', '86400'],
];
