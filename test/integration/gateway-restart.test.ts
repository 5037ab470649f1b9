// Restart proof for event ingest: 10,000 events accepted (202) while ClickHouse is stopped arrive
// exactly once after it starts again. Its own ClickHouse 18.16 (gateway-support.ts), so stopping it
// disturbs no other test; the gateway runs with its production EventBuffer settings.
//   npx vitest run --config test/integration/gateway.vitest.config.ts test/integration/gateway-restart.test.ts
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickhouse } from '../../src/analytics/clickhouse.ts';
import { ensureClickhouseSchema } from '../../src/analytics/schema.ts';
import type { VoraConfig } from '../../src/common/config.ts';
import { startGateway, type Gateway } from '../../src/gateway/main.ts';
import { configFor, startClickhouse, tempDir, type ClickhouseServer } from './gateway-support.ts';

const VID = 'vid_restartaaaaaaaaaaaaa';
const TOTAL = 10_000;
const PER_BATCH = 1_000;
let ch: ClickhouseServer;
let cfg: VoraConfig;
let gw: Gateway | null = null;
let dataDir: string;

async function chQuery<T>(query: string): Promise<T> {
  const client = createClickhouse(cfg, { requestTimeoutMs: 5_000 });
  try {
    return (await (await client.query({ query, format: 'JSONEachRow' })).json<T>())[0] as T;
  } finally {
    await client.close();
  }
}

beforeAll(async () => {
  ch = await startClickhouse();
  dataDir = tempDir('restart');
  cfg = configFor({ clickhouse: ch.port, dataDir });
  await ensureClickhouseSchema(cfg);
});
afterAll(async () => {
  await gw?.close(1_000).catch(() => {});
  await ch?.stop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('ClickHouse restart', () => {
  it(`stores ${TOTAL} events accepted while it was down exactly once`, async () => {
    await ch.pause();
    gw = await startGateway(cfg, { port: 0, stateLookup: async () => null, live: false });
    const url = `http://127.0.0.1:${gw.port}/v1/events`;
    const t0 = Date.now();
    for (let b = 0; b < TOTAL / PER_BATCH; b++) {
      const events = Array.from({ length: PER_BATCH }, (_, i) => ({
        videoId: VID,
        sessionId: `s${b}`,
        type: 'segment_fetched',
        ts: t0 + i,
        segment: i,
        bandwidth: 800_000,
      }));
      const r = await fetch(url, { method: 'POST', body: JSON.stringify(events), headers: { 'Content-Type': 'application/json' } });
      expect(r.status).toBe(202);
      expect(await r.json()).toEqual({ accepted: PER_BATCH });
    }
    // The buffer has tried and failed at least once: ClickHouse is really down for it.
    const g = gw;
    for (let i = 0; i < 100 && g.buffer.counters.failures === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(g.buffer.counters.failures).toBeGreaterThan(0);
    expect(g.buffer.counters).toMatchObject({ accepted: TOTAL, flushed: 0, dropped: 0 });

    await ch.resume();
    const deadline = Date.now() + 90_000;
    while (g.buffer.counters.flushed < TOTAL && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(g.buffer.counters).toMatchObject({ accepted: TOTAL, flushed: TOTAL, dropped: 0 });
    await new Promise((r) => setTimeout(r, 1_000)); // nothing more arrives later
    const stored = await chQuery<{ rows: string; events: string; keys: string; final: string }>(
      `SELECT count() AS rows, uniqExact(event_id) AS events, uniqExact(session_id, segment) AS keys,
              (SELECT count() FROM vora.playback_events FINAL WHERE video_id = '${VID}') AS final
       FROM vora.playback_events WHERE video_id = '${VID}'`,
    );
    // Physical rows (no FINAL): none duplicated, none lost.
    expect(stored).toEqual({ rows: String(TOTAL), events: String(TOTAL), keys: String(TOTAL), final: String(TOTAL) });
  }, 180_000);
});
