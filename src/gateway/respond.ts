// How the gateway writes uWebSockets.js responses. uWS rules followed throughout: onAborted is
// registered before the first await (newCtx, called first by every route); after an await every
// write happens inside res.cork(); nothing touches res once it was aborted or ended; bodies are
// streamed with tryEnd/onWritable so at most one source chunk per response waits in memory.
import type { Readable } from 'node:stream';
import type { HttpResponse } from 'uWebSockets.js';
import type { Logger } from '../common/log.ts';
import { CORS_HEADERS, ERROR_STATUS, NOT_FOUND_CACHE_CONTROL, errorBody, statusLine, type ErrorCode } from './http.ts';

export type Header = readonly [string, string];

/** Per-request flags: uWS forbids touching a response after it was aborted or ended. */
export interface Ctx {
  aborted: boolean;
  done: boolean;
  abort: AbortController;
  /** HEAD: responses (errors included) carry headers and Content-Length but no body. */
  head: boolean;
  /** Metrics: called with the status once it is written, and with body bytes as they go out. */
  obs?: { status(status: number): void; bytes(n: number): void };
}

/** Registers onAborted at once: call it before the route's first await. */
export function newCtx(res: HttpResponse, head = false): Ctx {
  const ctx: Ctx = { aborted: false, done: false, abort: new AbortController(), head };
  res.onAborted(() => {
    ctx.aborted = true;
    ctx.abort.abort();
  });
  return ctx;
}

/** The status line and headers; inside a cork. */
function writeHead(res: HttpResponse, ctx: Ctx, status: number, headers: readonly Header[]): void {
  ctx.obs?.status(status);
  res.writeStatus(statusLine(status));
  for (const [k, v] of headers) res.writeHeader(k, v);
}

/**
 * Headers only, with the body's Content-Length (HEAD). endWithoutBody(length) leaves the keep-alive
 * connection unusable in this uWS build (uNetworking/uWebSockets#1557/#1855); the argless form plus
 * our own header is clean.
 */
function endHead(res: HttpResponse, length: number): void {
  res.writeHeader('Content-Length', String(length)).endWithoutBody();
}

/** A whole small response (string body or none). */
export function send(res: HttpResponse, ctx: Ctx, status: number, headers: readonly Header[], body?: string, close = false): void {
  if (ctx.aborted || ctx.done) return;
  ctx.done = true;
  if (body !== undefined && !ctx.head) ctx.obs?.bytes(Buffer.byteLength(body));
  res.cork(() => {
    writeHead(res, ctx, status, headers);
    // 204/304 carry no body and, per RFC 9110, no Content-Length: 0 (endWithoutBody() adds none).
    if (body === undefined) res.endWithoutBody();
    else if (ctx.head) endHead(res, Buffer.byteLength(body));
    else res.end(body, close);
  });
}

/** Answers a HEAD with the object's headers and length, no body. */
export function sendHead(res: HttpResponse, ctx: Ctx, status: number, headers: readonly Header[], length: number): void {
  if (ctx.aborted || ctx.done) return;
  ctx.done = true;
  res.cork(() => {
    writeHead(res, ctx, status, headers);
    endHead(res, length);
  });
}

export function sendError(res: HttpResponse, ctx: Ctx, code: ErrorCode, message: string, extra: readonly Header[] = [], close = false): void {
  const cache: Header = ['Cache-Control', ERROR_STATUS[code] === 404 ? NOT_FOUND_CACHE_CONTROL : 'no-store'];
  send(res, ctx, ERROR_STATUS[code], [...CORS_HEADERS, ['Content-Type', 'application/json'], cache, ...extra], errorBody(code, message), close);
}

/**
 * Bodies sent with backpressure (tryEnd/onWritable). Counts the responses still being written, so
 * that shutdown can wait for them.
 */
export class BodyWriter {
  active = 0;

  constructor(private readonly log: Logger) {}

  /** Sends an in-memory body: uWS copies none of it ahead. */
  buffer(res: HttpResponse, ctx: Ctx, body: Buffer, status: number, headers: readonly Header[]): void {
    if (ctx.aborted || ctx.done) return;
    ctx.obs?.bytes(body.length);
    let done = false;
    const startOffset = res.getWriteOffset();
    res.cork(() => {
      writeHead(res, ctx, status, headers);
      if (ctx.head) {
        endHead(res, body.length);
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
    this.active++;
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        this.active--;
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

  /**
   * Streams an S3 body; headers go out with the first chunk. With `collect`, the chunks are also
   * kept and handed over whole once all `total` bytes arrived (to the object cache).
   */
  stream(
    res: HttpResponse,
    ctx: Ctx,
    body: Readable,
    total: number,
    status: number,
    headers: readonly Header[],
    collect?: (whole: Buffer) => void,
  ): void {
    if (total === 0) {
      body.destroy();
      if (!ctx.aborted && !ctx.done) {
        ctx.done = true;
        res.cork(() => {
          writeHead(res, ctx, status, headers);
          res.end();
        });
      }
      return;
    }
    this.active++;
    let headSent = false;
    let finished = false;
    let received = 0;
    const kept: Buffer[] | null = collect ? [] : null;
    const finish = () => {
      if (finished) return;
      finished = true;
      this.active--;
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
        if (!headSent) writeHead(res, ctx, status, headers);
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
      this.log.warn({ why }, 'object stream ended early');
      if (!headSent) return sendError(res, ctx, 'UPSTREAM_UNAVAILABLE', 'object storage stream failed');
      // Headers (and a Content-Length) are out: closing is the only honest signal of a short body.
      ctx.done = true;
      res.close();
    };
    body.on('error', (err) => broken(String(err)));
    // A complete body may end while its last chunk still waits for onWritable: that is no error.
    body.on('end', () => received < total && broken('short body'));
  }
}
