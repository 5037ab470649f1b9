// Reads of playback analytics: GET /v1/videos/{id}/analytics (the API imports videoAnalytics).
import type { ClickHouseClient } from '@clickhouse/client';
import type { VoraConfig } from '../common/config.ts';
import { EVENTS_TABLE, createClickhouse, quoteIdent, quoteString } from './clickhouse.ts';

export interface VideoAnalytics {
  views: number;
  averageWatchTimeSec: number;
  dropOff: { segment: number; viewers: number }[];
  bitrateDistribution: { bandwidth: number; share: number }[];
  /** Extra fields beyond the founding contract (clients ignore what they do not know). */
  rebufferEvents: number;
  rebufferedSessions: number;
  rebufferRatio: number;
  rebuffersPerMinute: number;
}

/** One shared client per ClickHouse URL for callers that pass none (the API). */
const defaultClients = new Map<string, ClickHouseClient>();

/**
 * `GET /v1/videos/{id}/analytics` (docs/contract.md). Definitions:
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
export async function videoAnalytics(cfg: VoraConfig, videoId: string, given?: ClickHouseClient): Promise<VideoAnalytics> {
  let client = given ?? defaultClients.get(cfg.clickhouse.url);
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
