// The ClickHouse client and the event writer (the EventBuffer's sink), written for the pinned
// server, ClickHouse 18.16 (schema set-up: schema.ts; reads: queries.ts):
// - @clickhouse/client 1.x works against it for ping, command, raw (TabSeparated) inserts and JSON selects
//   as long as no newer settings are passed (no query parameters: `{name:Type}` binding arrived in
//   19.x, so values are escaped here; no date_time_input_format, async_insert, ...).
// - No `database` on the client: the database does not exist before ensureClickhouseSchema.
// - UInt64 results come back as JSON strings (output_format_json_quote_64bit_integers).
// - Inserts name every column and send all of them (18.16 fills omitted JSONEachRow columns with the
//   type's zero, not their DEFAULT); a DateTime is sent as unix seconds, which avoids the server
//   time zone.
// - 18.16 formats errors as "Code: 27, e.displayText() = DB::Exception: ..."; the client does not
//   parse the code out of that, clickhouseErrorCode() does.
// - insert_deduplicate only works on Replicated* tables: see clickhouse/001_events.sql for how
//   retries stay idempotent instead.
import { Readable } from 'node:stream';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import type { VoraConfig } from '../common/config.ts';
import type { Batch, Sink } from './buffer.ts';
import { EVENT_TSV_COLUMNS } from './events.ts';

export const EVENTS_TABLE = 'playback_events';

export function createClickhouse(cfg: VoraConfig, opts: { requestTimeoutMs?: number } = {}): ClickHouseClient {
  return createClient({
    url: cfg.clickhouse.url,
    request_timeout: opts.requestTimeoutMs ?? 10_000,
    // gzip costs CPU on both ends and buys nothing on loopback (the dev stack, the benches).
    compression: { request: !isLoopback(cfg.clickhouse.url), response: false },
    max_open_connections: 4,
    // 18.16 closes idle HTTP connections after keep_alive_timeout (3 s); reuse only younger ones.
    keep_alive: { enabled: true, idle_socket_ttl: 2_000 },
    application: 'vora',
    // Failures are reported by the callers (EventBuffer logs retries); the client's own console
    // logging would print every retry of an outage as a stack trace.
    log: { level: ClickHouseLogLevel.OFF },
  });
}

function isLoopback(url: string): boolean {
  try {
    const h = new URL(url).hostname;
    return h === 'localhost' || h === '[::1]' || h.startsWith('127.');
  } catch {
    return false;
  }
}

export const quoteIdent = (name: string) => '`' + name.replace(/[`\\]/g, (c) => '\\' + c) + '`';
/** String literal for 18.16 (no query parameters there). */
export const quoteString = (s: string) => "'" + s.replace(/[\\']/g, (c) => '\\' + c) + "'";

/** ClickHouse exception codes that mean the data itself is refused: retrying cannot help. */
const PERMANENT_CODES = new Set([6, 16, 26, 27, 38, 41, 53, 62, 69, 70, 72, 117, 131, 321]);

/** The client's parser misses 18.16's "Code: 27, e.displayText() = ..." format; read it here. */
export function clickhouseErrorCode(err: unknown): number | undefined {
  const code = Number((err as { code?: unknown })?.code);
  if (Number.isInteger(code) && code > 0) return code;
  const m = /\bCode: (\d+)/.exec(String((err as { message?: unknown })?.message ?? ''));
  return m ? Number(m[1]) : undefined;
}

function markPermanent(err: unknown): unknown {
  const code = clickhouseErrorCode(err);
  if (code !== undefined && PERMANENT_CODES.has(code) && err && typeof err === 'object') {
    (err as { permanent?: boolean }).permanent = true;
  }
  return err;
}

/**
 * Sink for EventBuffer: one TabSeparated INSERT per batch, the buffer's bytes sent as they are
 * (18.16 parses TabSeparated several times faster than JSONEachRow, and nothing is serialised on the
 * gateway's event loop). A retried batch first checks how many rows of its batch ids are stored:
 * all of them means the earlier attempt succeeded (only the answer was lost) and the batch is
 * skipped; a partial batch is written again and the duplicates collapse by event_id (FINAL).
 */
export function clickhouseSink(client: ClickHouseClient, database = 'vora'): Sink {
  const table = `${quoteIdent(database)}.${quoteIdent(EVENTS_TABLE)}`;
  const insert = `INSERT INTO ${table} (${EVENT_TSV_COLUMNS.map(quoteIdent).join(', ')}) FORMAT TabSeparated`;
  return async (batch: Batch, { retry }) => {
    try {
      if (retry && (await storedRows(client, table, batch)) >= batch.rows) return;
      const r = await client.exec({ query: insert, values: pacedBody(batch.tsv) });
      await drain(r.stream);
    } catch (err) {
      throw markPermanent(err);
    }
  };
}

/**
 * An insert body in 64 KiB slices (views, no copies), one per event-loop turn. On loopback the
 * kernel runs the receiver's side of TCP inside the sender's write(): a 2.6 MB batch written in
 * 256 KiB slabs held the gateway's event loop for milliseconds at a time, in front of 202s.
 */
export function pacedBody(parts: readonly Buffer[], slice = 64 * 1024): Readable {
  let i = 0;
  let off = 0;
  return new Readable({
    read() {
      while (i < parts.length && off >= parts[i]!.length) [i, off] = [i + 1, 0];
      if (i >= parts.length) return void this.push(null);
      const part = parts[i]!;
      const piece = part.subarray(off, off + slice);
      off += piece.length;
      setImmediate(() => this.push(piece));
    },
  });
}

async function drain(stream: NodeJS.ReadableStream): Promise<void> {
  for await (const _ of stream as AsyncIterable<unknown>) void _;
}

async function storedRows(client: ClickHouseClient, table: string, batch: Batch): Promise<number> {
  // video_id leads the sorting key, so naming the batch's videos lets the index skip the rest.
  const videos = batch.videoIds.map(quoteString).join(',');
  const rs = await client.query({
    query: `SELECT count() AS n FROM ${table} WHERE video_id IN (${videos}) AND batch_id IN (${batch.batchIds.map(quoteString).join(',')})`,
    format: 'JSONEachRow',
  });
  const rows = await rs.json<{ n: string | number }>();
  return Number(rows[0]?.n ?? 0);
}

