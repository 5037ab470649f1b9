// ClickHouse access for playback analytics, written for the pinned server, ClickHouse 18.16:
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
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { REPO_ROOT, loadConfig, type VoraConfig } from '../common/config.ts';
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

/** Splits a .sql file into statements: `--` comments removed, then split on ';'. */
export function splitSql(sql: string): string[] {
  return sql
    .split('\n')
    .map((l) => l.replace(/--.*$/, ''))
    .join('\n')
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Applies clickhouse/*.sql in name order. Every statement is written to be idempotent
 * (IF NOT EXISTS), so this runs on every start; the supervisor calls it once ClickHouse is up.
 */
export async function ensureClickhouseSchema(
  cfg: VoraConfig,
  opts: { dir?: string; client?: ClickHouseClient } = {},
): Promise<string[]> {
  const dir = opts.dir ?? path.join(REPO_ROOT, 'clickhouse');
  const client = opts.client ?? createClickhouse(cfg);
  const applied: string[] = [];
  try {
    for (const name of fs.readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()) {
      const sql = fs.readFileSync(path.join(dir, name), 'utf8');
      for (const stmt of splitSql(sql)) {
        // The schema files name the database "vora"; a different configured name is substituted.
        await client.command({ query: renameDb(stmt, cfg.clickhouse.database) });
      }
      applied.push(name);
    }
    await addMissingColumns(client, cfg.clickhouse.database);
  } finally {
    if (!opts.client) await client.close();
  }
  return applied;
}

/** Columns the writer sends (EventRow), with their types in clickhouse/001_events.sql. */
const EVENT_COLUMNS: [string, string][] = [
  ['event_date', 'Date'],
  ['ts', 'DateTime'],
  ['ts_ms', 'UInt16 DEFAULT 0'],
  ['received_at', 'DateTime'],
  ['video_id', 'String'],
  ['session_id', 'String'],
  ['type', 'String'],
  ['segment', 'Nullable(Int32)'],
  ['bandwidth', 'Nullable(UInt32)'],
  ['watch_time_sec', 'Nullable(Float64)'],
  ['position_sec', 'Nullable(Float64)'],
  ['batch_id', 'String'],
  ['event_id', 'String'],
];

/**
 * A table created by an older schema file survives CREATE TABLE IF NOT EXISTS; without the newer
 * columns every insert would be refused. Missing columns are added (the engine cannot be changed
 * in place: such a table keeps working, only without the ReplacingMergeTree de-duplication).
 */
async function addMissingColumns(client: ClickHouseClient, db: string): Promise<string[]> {
  const rs = await client.query({
    query: `SELECT name FROM system.columns WHERE database = ${quoteString(db)} AND table = ${quoteString(EVENTS_TABLE)}`,
    format: 'JSONEachRow',
  });
  const have = new Set((await rs.json<{ name: string }>()).map((r) => r.name));
  const added: string[] = [];
  for (const [name, type] of EVENT_COLUMNS) {
    if (have.has(name)) continue;
    await client.command({ query: `ALTER TABLE ${quoteIdent(db)}.${quoteIdent(EVENTS_TABLE)} ADD COLUMN ${quoteIdent(name)} ${type}` });
    added.push(name);
  }
  return added;
}

function renameDb(stmt: string, db: string): string {
  if (db === 'vora') return stmt;
  return stmt.replace(/\bvora\./g, `${quoteIdent(db)}.`).replace(/(DATABASE IF NOT EXISTS\s+)vora\b/i, `$1${quoteIdent(db)}`);
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

export interface VideoAnalytics {
  views: number;
  averageWatchTimeSec: number;
  dropOff: { segment: number; viewers: number }[];
  bitrateDistribution: { bandwidth: number; share: number }[];
  /** Extra fields beyond CONTRACT.md (clients ignore what they do not know). */
  rebufferEvents: number;
  rebufferedSessions: number;
  rebufferRatio: number;
  rebuffersPerMinute: number;
}

/** One shared client per ClickHouse URL for callers that pass none (the API). */
const defaultClients = new Map<string, ClickHouseClient>();

/**
 * CONTRACT.md `GET /v1/videos/{id}/analytics`. Definitions:
 * - views: distinct sessions that sent any event for the video;
 * - averageWatchTimeSec: per session the largest `watchTimeSec` of its `watch_time` events (players
 *   report the session's cumulative watch time, so a lost or repeated event does not skew it),
 *   summed and divided by views (a session without watch_time events counts as 0);
 * - dropOff: per segment index, distinct sessions with a `segment_fetched` for it (renditions are
 *   segment-aligned, so the index is comparable across renditions), ascending by segment;
 * - bitrateDistribution: share of `segment_fetched` events per `bandwidth` (time spent per rung);
 *   if no segment_fetched carries a bandwidth, the share of `bitrate_selected` events instead.
 * Beyond the contract (rebuffering; players send one `rebuffer` event per stall, no duration):
 * - rebufferEvents: `rebuffer` events; rebufferedSessions: sessions with at least one;
 * - rebufferRatio: rebufferEvents / views, i.e. stalls per session (0 without views);
 * - rebuffersPerMinute: rebufferEvents per minute of watch time (the summed per-session watch time
 *   above; 0 without watch time): comparable between short and long videos.
 * All reads use FINAL (on the ReplacingMergeTree of 001_events.sql) so rows of a retried batch that
 * are not merged yet count once.
 */
export async function videoAnalytics(
  videoId: string,
  opts: { client?: ClickHouseClient; cfg?: VoraConfig } = {},
): Promise<VideoAnalytics> {
  const cfg = opts.cfg ?? loadConfig();
  let client = opts.client ?? defaultClients.get(cfg.clickhouse.url);
  if (!client) defaultClients.set(cfg.clickhouse.url, (client = createClickhouse(cfg)));
  const t = `${quoteIdent(cfg.clickhouse.database)}.${quoteIdent(EVENTS_TABLE)}${await finalFor(client, cfg.clickhouse.database)}`;
  const v = quoteString(videoId);
  const q = async <T>(query: string): Promise<T[]> => (await client.query({ query, format: 'JSONEachRow' })).json<T>();

  const [viewRows, watchRows, drop, rates, stalls] = await Promise.all([
    q<{ views: string }>(`SELECT uniqExact(session_id) AS views FROM ${t} WHERE video_id = ${v}`),
    q<{ total: number | null }>(
      `SELECT sum(w) AS total FROM (
         SELECT session_id, max(assumeNotNull(watch_time_sec)) AS w
         FROM ${t}
         WHERE video_id = ${v} AND type = 'watch_time' AND isNotNull(watch_time_sec)
         GROUP BY session_id)`,
    ),
    q<{ segment: number; viewers: string }>(
      `SELECT assumeNotNull(segment) AS segment, uniqExact(session_id) AS viewers
       FROM ${t}
       WHERE video_id = ${v} AND type = 'segment_fetched' AND isNotNull(segment)
       GROUP BY segment ORDER BY segment`,
    ),
    q<{ type: string; bandwidth: number; n: string }>(
      `SELECT type, assumeNotNull(bandwidth) AS bandwidth, count() AS n
       FROM ${t}
       WHERE video_id = ${v} AND type IN ('segment_fetched', 'bitrate_selected') AND isNotNull(bandwidth)
       GROUP BY type, bandwidth`,
    ),
    q<{ events: string; sessions: string }>(
      `SELECT count() AS events, uniqExact(session_id) AS sessions FROM ${t} WHERE video_id = ${v} AND type = 'rebuffer'`,
    ),
  ]);

  const views = Number(viewRows[0]?.views ?? 0);
  const watchTotal = Number(watchRows[0]?.total ?? 0);
  const fetched = rates.filter((r) => r.type === 'segment_fetched');
  const basis = fetched.length > 0 ? fetched : rates.filter((r) => r.type === 'bitrate_selected');
  const total = basis.reduce((s, r) => s + Number(r.n), 0);
  const rebufferEvents = Number(stalls[0]?.events ?? 0);
  return {
    views,
    averageWatchTimeSec: views > 0 ? round(watchTotal / views, 3) : 0,
    dropOff: drop.map((r) => ({ segment: Number(r.segment), viewers: Number(r.viewers) })),
    bitrateDistribution: basis
      .map((r) => ({ bandwidth: Number(r.bandwidth), share: total > 0 ? round(Number(r.n) / total, 4) : 0 }))
      .sort((a, b) => a.bandwidth - b.bandwidth),
    rebufferEvents,
    rebufferedSessions: Number(stalls[0]?.sessions ?? 0),
    rebufferRatio: views > 0 ? round(rebufferEvents / views, 4) : 0,
    rebuffersPerMinute: watchTotal > 0 ? round(rebufferEvents / (watchTotal / 60), 4) : 0,
  };
}

const finalCache = new WeakMap<ClickHouseClient, Map<string, string>>();

/** " FINAL" for a ReplacingMergeTree table; nothing for a plain MergeTree left by an old schema
 *  (18.16 refuses FINAL there, code 181). Asked once per client and database. */
async function finalFor(client: ClickHouseClient, db: string): Promise<string> {
  let perDb = finalCache.get(client);
  if (!perDb) finalCache.set(client, (perDb = new Map()));
  const known = perDb.get(db);
  if (known !== undefined) return known;
  const rs = await client.query({
    query: `SELECT engine FROM system.tables WHERE database = ${quoteString(db)} AND name = ${quoteString(EVENTS_TABLE)}`,
    format: 'JSONEachRow',
  });
  const engine = (await rs.json<{ engine: string }>())[0]?.engine;
  if (engine === undefined) return ' FINAL'; // no table yet: ask again next time, the query will say so
  const clause = /Replacing|Collapsing/.test(engine) ? ' FINAL' : '';
  perDb.set(db, clause);
  return clause;
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Closes the client videoAnalytics created for itself (tests, shutdown). */
export async function closeDefaultClickhouse(): Promise<void> {
  const all = [...defaultClients.values()];
  defaultClients.clear();
  await Promise.allSettled(all.map((c) => c.close()));
}
