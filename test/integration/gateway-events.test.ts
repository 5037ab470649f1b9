// Playback events into ClickHouse 18.16 and the analytics read back, against a real ClickHouse
// started here (gateway-support.ts); the gateway runs without PostgreSQL or MinIO (a state lookup
// that knows no video, no live WebSocket), since POST /v1/events needs neither.
//   npx vitest run --config test/integration/gateway.vitest.config.ts test/integration/gateway-events.test.ts
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBuffer, batchOf } from '../../src/analytics/buffer.ts';
import { clickhouseSink, createClickhouse } from '../../src/analytics/clickhouse.ts';
import type { PlaybackEvent } from '../../src/analytics/events.ts';
import { videoAnalytics } from '../../src/analytics/queries.ts';
import { ensureClickhouseSchema } from '../../src/analytics/schema.ts';
import type { VoraConfig } from '../../src/common/config.ts';
import { startGateway, type Gateway } from '../../src/gateway/main.ts';
import { chCount, configFor, freePort, raw, startClickhouse, tempDir, until, type Server } from './gateway-support.ts';

let server: Server;
let cfg: VoraConfig;
let gw: Gateway;
let G: string; // gateway base URL
let dataDir: string;
/** Events need no video state: a lookup that knows none keeps PostgreSQL (and /v1/live) out. */
const noVideos = async () => null;

beforeAll(async () => {
  server = await startClickhouse();
  dataDir = tempDir('events');
  cfg = configFor({ clickhouse: server.port, dataDir });
  expect(await ensureClickhouseSchema(cfg)).toEqual(['001_events.sql']);
  expect(await ensureClickhouseSchema(cfg)).toEqual(['001_events.sql']); // idempotent
  gw = await startGateway(cfg, { port: 0, stateLookup: noVideos });
  G = `http://127.0.0.1:${gw.port}`;
});

afterAll(async () => {
  await gw?.close(2_000).catch(() => {});
  await server?.stop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('events into ClickHouse 18.16', () => {
  const VID = 'vid_analyticsaaaaaaaaaaa';
  it('takes a batch with 202 and stores it; analytics read it back', async () => {
    const now = Date.now();
    const events = [
      { videoId: VID, sessionId: 'a', type: 'play', ts: new Date(now).toISOString() },
      { videoId: VID, sessionId: 'a', type: 'segment_fetched', ts: now, segment: 0, bandwidth: 800000 },
      { videoId: VID, sessionId: 'a', type: 'segment_fetched', ts: now, segment: 1, bandwidth: 800000 },
      { videoId: VID, sessionId: 'a', type: 'segment_fetched', ts: now, segment: 2, bandwidth: 2500000 },
      { videoId: VID, sessionId: 'a', type: 'watch_time', ts: now, watchTimeSec: 10, positionSec: 10 },
      { videoId: VID, sessionId: 'a', type: 'watch_time', ts: now, watchTimeSec: 18, positionSec: 18 },
      { videoId: VID, sessionId: 'b', type: 'play', ts: now },
      { videoId: VID, sessionId: 'b', type: 'segment_fetched', ts: now, segment: 0, bandwidth: 800000 },
      { videoId: VID, sessionId: 'b', type: 'watch_time', ts: now, watchTimeSec: 4 },
      { videoId: VID, sessionId: 'b', type: 'rebuffer', ts: now, positionSec: 3 },
    ];
    const r = await raw(`${G}/v1/events`, { method: 'POST', body: JSON.stringify({ events }) });
    expect(r.status).toBe(202);
    expect(JSON.parse(r.body.toString())).toEqual({ accepted: events.length });
    await until('rows in ClickHouse', async () => (await chCount(cfg, `video_id = '${VID}'`)) === events.length);
    expect(await videoAnalytics(cfg, VID)).toEqual({
      views: 2,
      averageWatchTimeSec: 11, // (18 + 4) / 2
      dropOff: [
        { segment: 0, viewers: 2 },
        { segment: 1, viewers: 1 },
        { segment: 2, viewers: 1 },
      ],
      bitrateDistribution: [
        { bandwidth: 800000, share: 0.75 },
        { bandwidth: 2500000, share: 0.25 },
      ],
      // One stall in 2 sessions and 22 s of watch time.
      rebufferEvents: 1,
      rebufferedSessions: 1,
      rebufferRatio: 0.5,
      rebuffersPerMinute: 2.7273, // 1 / (22 / 60)
    });
    expect(await videoAnalytics(cfg, 'vid_nothingaaaaaaaaaaaaa')).toEqual({
      views: 0,
      averageWatchTimeSec: 0,
      dropOff: [],
      bitrateDistribution: [],
      rebufferEvents: 0,
      rebufferedSessions: 0,
      rebufferRatio: 0,
      rebuffersPerMinute: 0,
    });
  });

  it('rejects invalid batches with INVALID_EVENTS and oversized ones with 413', async () => {
    const bad = await raw(`${G}/v1/events`, { method: 'POST', body: JSON.stringify([{ videoId: VID, sessionId: 'a', type: 'seek', ts: Date.now() }]) });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body.toString()).error).toMatchObject({ code: 'INVALID_EVENTS', message: expect.stringMatching(/^0\.type/) });
    const notJson = await raw(`${G}/v1/events`, { method: 'POST', body: '{' });
    expect(JSON.parse(notJson.body.toString()).error.code).toBe('INVALID_EVENTS');
    const big = await raw(`${G}/v1/events`, { method: 'POST', body: 'x'.repeat(1024 * 1024 + 10) }).catch((e: Error) => ({ status: 0, err: e }));
    // The gateway answers 413 and closes; depending on timing the client may see the reset instead.
    expect([413, 0]).toContain(big.status);
    const get = await raw(`${G}/v1/events`);
    expect(get.status).toBe(405);
  });

  it('brings a table from the older schema up to date (and honours another database name)', async () => {
    const legacy = { ...cfg, clickhouse: { ...cfg.clickhouse, database: 'vora_legacy' } };
    const ch = createClickhouse(cfg);
    await ch.command({ query: 'CREATE DATABASE IF NOT EXISTS vora_legacy' });
    await ch.command({
      query: `CREATE TABLE vora_legacy.playback_events (event_date Date DEFAULT toDate(ts), ts DateTime, received_at DateTime,
        video_id String, session_id String, type String, segment Nullable(Int32), bandwidth Nullable(UInt32),
        watch_time_sec Nullable(Float64), position_sec Nullable(Float64), batch_id String)
        ENGINE = MergeTree() PARTITION BY (toYYYYMM(event_date), cityHash64(video_id) % 16) ORDER BY (video_id, ts, session_id)`,
    });
    await ensureClickhouseSchema(legacy);
    const ev: PlaybackEvent = { videoId: VID, sessionId: 'legacy', type: 'play', ts: Date.now(), segment: null, bandwidth: null, watchTimeSec: null, positionSec: null };
    await clickhouseSink(ch, 'vora_legacy')(batchOf([ev]), { retry: false });
    expect((await videoAnalytics(legacy, VID, ch)).views).toBe(1);
    await ch.command({ query: 'DROP DATABASE vora_legacy' });
    await ch.close();
  });

  it('makes retried batches idempotent (ReplacingMergeTree + FINAL, batch_id check)', async () => {
    const VID2 = 'vid_retryaaaaaaaaaaaaaaa';
    const ch = createClickhouse(cfg);
    const sink = clickhouseSink(ch);
    const ev: PlaybackEvent = { videoId: VID2, sessionId: 's', type: 'segment_fetched', ts: Date.now(), segment: 0, bandwidth: 1, watchTimeSec: null, positionSec: null };
    const batch = batchOf([0, 1, 2].map((i) => ({ ...ev, segment: i })));
    await sink(batch, { retry: false });
    await sink(batch, { retry: false }); // an attempt whose answer was lost, resent blindly
    await sink(batch, { retry: true }); // a retry: sees the batch stored, skips
    const rs = await ch.query({ query: `SELECT count() AS n FROM vora.playback_events WHERE video_id = '${VID2}'`, format: 'JSONEachRow' });
    expect(Number((await rs.json<{ n: string }>())[0]!.n)).toBe(6); // physical rows before merges
    expect(await chCount(cfg, `video_id = '${VID2}'`)).toBe(3); // FINAL: each event once
    expect((await videoAnalytics(cfg, VID2, ch)).dropOff).toEqual([0, 1, 2].map((s) => ({ segment: s, viewers: 1 })));
    await ch.close();
  });

  it('spools events while ClickHouse is unreachable and replays them into it', async () => {
    const VID3 = 'vid_spoolaaaaaaaaaaaaaaa';
    const spoolDir = path.join(dataDir, 'spool-test');
    // "Down": a client pointed at a port nothing listens on, so the errors are the real client's.
    const downCfg = { ...cfg, clickhouse: { ...cfg.clickhouse, url: `http://127.0.0.1:${await freePort()}` } };
    const down = createClickhouse(downCfg, { requestTimeoutMs: 1000 });
    const b1 = new EventBuffer({ sink: clickhouseSink(down), spoolDir, batchSize: 50, maxBuffered: 100, flushIntervalMs: 20, backoffMinMs: 20 }).start();
    const evs = Array.from({ length: 250 }, (_, i): PlaybackEvent => ({ videoId: VID3, sessionId: `s${i}`, type: 'play', ts: Date.now(), segment: null, bandwidth: null, watchTimeSec: null, positionSec: null }));
    for (let i = 0; i < evs.length; i += 25) b1.push(evs.slice(i, i + 25));
    await until('a failed attempt', async () => b1.counters.failures > 0);
    await b1.close(200);
    await down.close();
    expect(b1.counters.flushed).toBe(0);
    expect(b1.counters.spilled).toBe(250);
    expect(fs.readdirSync(spoolDir).filter((f) => f.endsWith('.tsv')).length).toBeGreaterThan(0);

    const up = createClickhouse(cfg);
    const b2 = new EventBuffer({ sink: clickhouseSink(up), spoolDir, flushIntervalMs: 20 }).start();
    await until('spool replayed', async () => (await chCount(cfg, `video_id = '${VID3}'`)) === 250);
    await until('spool empty', async () => fs.readdirSync(spoolDir).length === 0);
    expect(b2.counters.replayed).toBe(250);
    await b2.close();
    await up.close();
  });

  it('flushes buffered events on graceful shutdown', async () => {
    const VID4 = 'vid_shutdownaaaaaaaaaaaa';
    // A second gateway whose timer would not flush on its own for a minute.
    const buffer = new EventBuffer({ sink: clickhouseSink(createClickhouse(cfg)), spoolDir: path.join(dataDir, 'spool-2'), flushIntervalMs: 60_000 });
    const g2 = await startGateway(cfg, { port: 0, buffer, stateLookup: noVideos });
    const body = JSON.stringify(Array.from({ length: 5 }, (_, i) => ({ videoId: VID4, sessionId: `x${i}`, type: 'pause', ts: Date.now() })));
    const r = await raw(`http://127.0.0.1:${g2.port}/v1/events`, { method: 'POST', body });
    expect(r.status).toBe(202);
    expect(await chCount(cfg, `video_id = '${VID4}'`)).toBe(0);
    await g2.close();
    expect(await chCount(cfg, `video_id = '${VID4}'`)).toBe(5);
    await expect(raw(`http://127.0.0.1:${g2.port}/healthz`)).rejects.toThrow();
  });
});
