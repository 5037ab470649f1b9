// Playback events as players send them (docs/contract.md) and as ClickHouse stores them.
import { Ajv } from 'ajv';
import { z } from 'zod';
import { ID_RE } from '../common/keys.ts';

export const EVENT_TYPES = ['play', 'pause', 'segment_fetched', 'watch_time', 'bitrate_selected', 'rebuffer', 'error'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const MAX_BODY_BYTES = 1024 * 1024;
export const MAX_EVENTS_PER_BATCH = 1000;
/** Players buffer events while offline; older than this is more likely a broken clock than a replay. */
export const MAX_PAST_MS = 7 * 24 * 3600 * 1000;
export const MAX_FUTURE_MS = 10 * 60 * 1000;

const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

const ts = z.union([
  z.number().int().nonnegative(),
  z.string().regex(ISO_RE, 'ts must be ISO 8601 with a time zone, or epoch milliseconds'),
]);

const eventSchema = z.object({
  videoId: z.string().regex(ID_RE, 'videoId is not a video id').startsWith('vid_', 'videoId is not a video id'),
  sessionId: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'sessionId: 1-128 characters of [A-Za-z0-9._:-]'),
  type: z.enum(EVENT_TYPES),
  ts,
  segment: z.number().int().min(0).max(10_000_000).nullish(),
  bandwidth: z.number().int().min(0).max(4_294_967_295).nullish(),
  watchTimeSec: z.number().min(0).max(1e7).nullish(),
  positionSec: z.number().min(0).max(1e7).nullish(),
});

const eventsSchema = z.array(eventSchema).max(MAX_EVENTS_PER_BATCH, `at most ${MAX_EVENTS_PER_BATCH} events per batch`);

/**
 * The same schema compiled by ajv, from z.toJSONSchema: the hot path of POST /v1/events. zod's
 * parse costs ~10 µs per event and copies it (at 100,000 events/s that is a second of CPU per
 * second plus the garbage); ajv checks in place. Only a batch ajv refuses goes through zod, which
 * then decides (it is the reference: it also strips unknown keys that the JSON Schema forbids)
 * and names the culprit. test/unit/analytics-events.test.ts checks the two agree.
 */
const fastCheck = new Ajv({ strict: false, validateFormats: false, allErrors: false }).compile(
  z.toJSONSchema(eventsSchema, { target: 'draft-7' }) as object,
);

/** A validated event; `ts` normalised to epoch milliseconds. */
export interface PlaybackEvent {
  videoId: string;
  sessionId: string;
  type: EventType;
  ts: number;
  segment: number | null;
  bandwidth: number | null;
  watchTimeSec: number | null;
  positionSec: number | null;
}

export type ParseResult = { ok: true; events: PlaybackEvent[] } | { ok: false; message: string };

/**
 * Validates a batch body (already JSON-parsed). All or nothing: one bad event rejects the batch with
 * a message naming it, so a player bug shows up as a 400 instead of silently thinned data.
 */
export function parseEventBatch(body: unknown, now = Date.now()): ParseResult {
  // Picking the shape by hand (not z.union) keeps the issue's path, e.g. "3.type: ...".
  const list = Array.isArray(body) ? body : (body as { events?: unknown } | null)?.events;
  if (!Array.isArray(list)) return { ok: false, message: 'body must be an array of events or {"events": [...]}' };
  let data = list as z.infer<typeof eventsSchema>;
  if (!fastCheck(list)) {
    const r = eventsSchema.safeParse(list);
    if (!r.success) {
      const issue = r.error.issues[0];
      const where = issue?.path.length ? issue.path.join('.') + ': ' : '';
      return { ok: false, message: `${where}${issue?.message ?? 'invalid events'}` };
    }
    data = r.data;
  }
  const events: PlaybackEvent[] = new Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const e = data[i]!;
    const ms = typeof e.ts === 'number' ? e.ts : Date.parse(e.ts);
    if (!Number.isFinite(ms)) return { ok: false, message: `${i}.ts: not a valid time` };
    if (ms < now - MAX_PAST_MS || ms > now + MAX_FUTURE_MS) {
      return { ok: false, message: `${i}.ts: more than 7 days old or 10 minutes in the future` };
    }
    events[i] = {
      videoId: e.videoId,
      sessionId: e.sessionId,
      type: e.type,
      ts: ms,
      segment: e.segment ?? null,
      bandwidth: e.bandwidth ?? null,
      watchTimeSec: e.watchTimeSec ?? null,
      positionSec: e.positionSec ?? null,
    };
  }
  return { ok: true, events };
}

/** Does the compiled fast path accept `list` (tests compare it with zod)? */
export function fastCheckAccepts(list: unknown): boolean {
  return fastCheck(list);
}

/** A row of vora.playback_events (clickhouse/001_events.sql), as spool files of older versions
 *  (JSONEachRow) hold it and as parseTsvRows reads TabSeparated rows back. */
export interface EventRow {
  event_id: string;
  // Sent explicitly: 18.16's JSONEachRow fills omitted columns with the type's zero, not with their
  // DEFAULT expression (input_format_defaults_for_omitted_fields came in 19.x).
  event_date: string; // YYYY-MM-DD (UTC)
  ts: number; // unix seconds: ClickHouse 18.16 parses a number as DateTime regardless of server time zone
  ts_ms: number;
  received_at: number;
  video_id: string;
  session_id: string;
  type: string;
  segment: number | null;
  bandwidth: number | null;
  watch_time_sec: number | null;
  position_sec: number | null;
  batch_id: string;
}

// toISOString per event is a large share of toRow's cost; events of one batch share few days.
let lastDay = NaN;
let lastDayText = '';
function utcDate(ms: number): string {
  const day = Math.floor(ms / 86_400_000);
  if (day !== lastDay) {
    lastDay = day;
    lastDayText = new Date(day * 86_400_000).toISOString().slice(0, 10);
  }
  return lastDayText;
}

export function toRow(e: PlaybackEvent, receivedAtMs: number, batchId: string, index: number): EventRow {
  return {
    // Deterministic per (batch, position): a retried batch writes the same ids, which the
    // ReplacingMergeTree collapses and the queries' FINAL reads once.
    event_id: `${batchId}:${index}`,
    event_date: utcDate(e.ts),
    ts: Math.floor(e.ts / 1000),
    ts_ms: e.ts % 1000,
    received_at: Math.floor(receivedAtMs / 1000),
    video_id: e.videoId,
    session_id: e.sessionId,
    type: e.type,
    segment: e.segment,
    bandwidth: e.bandwidth,
    watch_time_sec: e.watchTimeSec,
    position_sec: e.positionSec,
    batch_id: batchId,
  };
}

/** Columns of a TabSeparated row (tsvRow), in order: the INSERT names them. */
export const EVENT_TSV_COLUMNS = [
  'event_id', 'event_date', 'ts', 'ts_ms', 'received_at', 'video_id', 'session_id', 'type',
  'segment', 'bandwidth', 'watch_time_sec', 'position_sec', 'batch_id',
] as const;

// TabSeparated escaping. Validated ids and types never need it (their patterns exclude these
// characters); it is here so that no caller can break a row.
const TSV_SPECIAL = /[\\\t\n\r]/;
const TSV_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
const tsvText = (s: string): string => (TSV_SPECIAL.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => TSV_ESCAPES[c]!) : s);
const tsvInt = (n: number | null): string => (n === null ? '\\N' : String(n));
// String(1e-7) is "1e-7"; plain decimals read the same in every ClickHouse version.
const tsvFloat = (n: number | null): string => (n === null ? '\\N' : n !== 0 && Math.abs(n) < 1e-6 ? n.toFixed(12) : String(n));

/**
 * One event as a TabSeparated row (EVENT_TSV_COLUMNS, newline-terminated). This is what the gateway
 * buffers: ClickHouse 18.16 parses TabSeparated several times faster than JSONEachRow, and a row
 * written into a byte buffer at accept time keeps buffered events off the V8 heap.
 */
export function tsvRow(e: PlaybackEvent, receivedAtSec: number, batchId: string, index: number): string {
  return `${batchId}:${index}\t${utcDate(e.ts)}\t${Math.floor(e.ts / 1000)}\t${e.ts % 1000}\t${receivedAtSec}\t${tsvText(e.videoId)}\t${tsvText(e.sessionId)}\t${tsvText(e.type)}\t${tsvInt(e.segment)}\t${tsvInt(e.bandwidth)}\t${tsvFloat(e.watchTimeSec)}\t${tsvFloat(e.positionSec)}\t${batchId}\n`;
}

/** An EventRow (a legacy JSONEachRow spool line) as a TabSeparated row. */
export function eventRowToTsv(r: Partial<EventRow>): string {
  const text = (v: unknown) => tsvText(v === undefined || v === null ? '' : String(v));
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  return `${text(r.event_id)}\t${text(r.event_date)}\t${num(r.ts) ?? 0}\t${num(r.ts_ms) ?? 0}\t${num(r.received_at) ?? 0}\t${text(r.video_id)}\t${text(r.session_id)}\t${text(r.type)}\t${tsvInt(num(r.segment))}\t${tsvInt(num(r.bandwidth))}\t${tsvFloat(num(r.watch_time_sec))}\t${tsvFloat(num(r.position_sec))}\t${text(r.batch_id)}\n`;
}

const TSV_UNESCAPES: Record<string, string> = { '\\\\': '\\', '\\t': '\t', '\\n': '\n', '\\r': '\r' };

/** TabSeparated rows (tsvRow) read back: spool replay needs their batch and video ids, tests their values. */
export function parseTsvRows(tsv: Buffer | string): EventRow[] {
  const rows: EventRow[] = [];
  for (const line of tsv.toString('utf8').split('\n')) {
    if (!line) continue;
    const f = line.split('\t').map((v) => (v === '\\N' ? null : v.replace(/\\[\\tnr]/g, (c) => TSV_UNESCAPES[c]!)));
    if (f.length !== EVENT_TSV_COLUMNS.length) throw new Error(`a row has ${f.length} columns, not ${EVENT_TSV_COLUMNS.length}`);
    const n = (v: string | null) => (v === null ? null : Number(v));
    rows.push({
      event_id: f[0]!, event_date: f[1]!, ts: Number(f[2]), ts_ms: Number(f[3]), received_at: Number(f[4]),
      video_id: f[5]!, session_id: f[6]!, type: f[7]!, segment: n(f[8] ?? null), bandwidth: n(f[9] ?? null),
      watch_time_sec: n(f[10] ?? null), position_sec: n(f[11] ?? null), batch_id: f[12]!,
    });
  }
  return rows;
}

// --- the buffer's row writer ---------------------------------------------------------------------

const NON_ASCII = /[^\x00-\x7f]/;

/** Writes an integer's decimal digits at `pos`; returns the new position. */
function putInt(buf: Buffer, pos: number, n: number): number {
  if (n < 0) {
    buf[pos++] = 0x2d; // '-'
    n = -n;
  }
  let digits = 1;
  for (let t = n; t >= 10; t = Math.floor(t / 10)) digits++;
  if (n <= 0x7fffffff) {
    // Small integers (every field but a bandwidth above 2^31): integer division, no doubles.
    for (let i = pos + digits - 1; i >= pos; i--) {
      const q = (n / 10) | 0;
      buf[i] = 0x30 + n - q * 10;
      n = q;
    }
  } else {
    for (let i = pos + digits - 1; i >= pos; i--) {
      buf[i] = 0x30 + (n % 10);
      n = Math.floor(n / 10);
    }
  }
  return pos + digits;
}

/**
 * Writes `s` as TabSeparated text. Short plain-ASCII strings (ids, types, dates: all of them for
 * validated events) are copied byte by byte here, cheaper than a call into Buffer.write; anything
 * to escape or beyond ASCII takes the general path.
 */
function putText(buf: Buffer, pos: number, s: string): number {
  if (s.length <= 64) {
    let i = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80 || c === 0x5c || c === 0x09 || c === 0x0a || c === 0x0d) break;
      buf[pos + i] = c;
    }
    if (i === s.length) return pos + i;
  }
  const t = tsvText(s);
  return pos + buf.write(t, pos, NON_ASCII.test(t) ? 'utf8' : 'latin1');
}

/** A few bytes copied in JS: cheaper than Buffer#copy's call for an id of ~20 bytes. */
function putBytes(buf: Buffer, pos: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) buf[pos + i] = bytes[i]!;
  return pos + bytes.length;
}

/** `\N`, TabSeparated's NULL. */
function putNull(buf: Buffer, pos: number): number {
  buf[pos] = 0x5c;
  buf[pos + 1] = 0x4e;
  return pos + 2;
}

/** Upper bound of the bytes writeTsvRow may write for `e` (escaping doubles, UTF-8 triples). */
export function tsvRowRoom(e: PlaybackEvent, batchIdBytes: number): number {
  return 2 * batchIdBytes + 6 * (e.videoId.length + e.sessionId.length + e.type.length) + 256;
}

/**
 * tsvRow written straight into `buf` at `pos` (with at least tsvRowRoom bytes free): the same bytes,
 * without building the row as a string. At 110,000 events/s the strings tsvRow builds were most of
 * the gateway's garbage, and so of its young-generation collections. Returns the new position.
 */
export function writeTsvRow(buf: Buffer, pos: number, e: PlaybackEvent, receivedAtSec: number, batchId: Uint8Array, index: number): number {
  const TAB = 0x09;
  pos = putBytes(buf, pos, batchId);
  buf[pos++] = 0x3a; // ':'
  pos = putInt(buf, pos, index);
  buf[pos++] = TAB;
  pos = putText(buf, pos, utcDate(e.ts));
  buf[pos++] = TAB;
  pos = putInt(buf, pos, Math.floor(e.ts / 1000));
  buf[pos++] = TAB;
  pos = putInt(buf, pos, e.ts % 1000);
  buf[pos++] = TAB;
  pos = putInt(buf, pos, receivedAtSec);
  buf[pos++] = TAB;
  pos = putText(buf, pos, e.videoId);
  buf[pos++] = TAB;
  pos = putText(buf, pos, e.sessionId);
  buf[pos++] = TAB;
  pos = putText(buf, pos, e.type);
  buf[pos++] = TAB;
  pos = e.segment === null ? putNull(buf, pos) : putInt(buf, pos, e.segment);
  buf[pos++] = TAB;
  pos = e.bandwidth === null ? putNull(buf, pos) : putInt(buf, pos, e.bandwidth);
  buf[pos++] = TAB;
  pos = e.watchTimeSec === null ? putNull(buf, pos) : putText(buf, pos, tsvFloat(e.watchTimeSec));
  buf[pos++] = TAB;
  pos = e.positionSec === null ? putNull(buf, pos) : putText(buf, pos, tsvFloat(e.positionSec));
  buf[pos++] = TAB;
  pos = putBytes(buf, pos, batchId);
  buf[pos++] = 0x0a;
  return pos;
}
