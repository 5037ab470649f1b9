// POST /v1/events: a batch of playback events, answered 202 as soon as the buffer took it (the
// EventBuffer writes them to ClickHouse, or spools them while it is down).
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { EventBuffer } from '../analytics/buffer.ts';
import { MAX_BODY_BYTES, parseEventBatch } from '../analytics/events.ts';
import { CORS_HEADERS } from './http.ts';
import { send, sendError, type Ctx, type Header } from './respond.ts';

/** Headers of a 202 (built once: this route runs thousands of times a second). */
const ACCEPTED_HEADERS: readonly Header[] = [...CORS_HEADERS, ['Content-Type', 'application/json'], ['Cache-Control', 'no-store']];

export function eventsRoute(buffer: Pick<EventBuffer, 'push'>, track: (res: HttpResponse, route: string) => Ctx) {
  return (res: HttpResponse, req: HttpRequest): void => {
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
      send(res, ctx, 202, ACCEPTED_HEADERS, `{"accepted":${accepted}}`);
    });
  };
}
