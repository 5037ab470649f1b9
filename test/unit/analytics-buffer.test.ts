import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBuffer, batchRows, type Batch } from '../../src/analytics/buffer.ts';
import type { PlaybackEvent } from '../../src/analytics/events.ts';
import { quoteString, clickhouseErrorCode } from '../../src/analytics/clickhouse.ts';
import { splitSql } from '../../src/analytics/schema.ts';

const dirs: string[] = [];
const spoolDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vora-spool-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const ev = (i: number): PlaybackEvent => ({
  videoId: 'vid_abcdefghijklmnopqrst',
  sessionId: `s${i}`,
  type: 'segment_fetched',
  ts: Date.now(),
  segment: i,
  bandwidth: 1000,
  watchTimeSec: null,
  positionSec: null,
});
const evs = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ev(from + i));
const until = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timeout');
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** A sink that stores batches and can be switched off, like ClickHouse going down. */
function fakeSink() {
  const stored = new Map<string, Batch>();
  const calls: { batchId: string; retry: boolean }[] = [];
  const s = {
    up: true,
    stored,
    calls,
    rows: () => [...stored.values()].flatMap(batchRows),
    sink: async (b: Batch, o: { retry: boolean }) => {
      calls.push({ batchId: b.batchId, retry: o.retry });
      if (!s.up) throw new Error('ECONNREFUSED');
      stored.set(b.batchId, { ...b, tsv: [Buffer.concat(b.tsv)] }); // keyed by batch id: a retried batch is stored once (a copy: the buffer reuses its slabs)
    },
  };
  return s;
}

describe('EventBuffer', () => {
  it('flushes by size', async () => {
    const f = fakeSink();
    const b = new EventBuffer({ sink: f.sink, spoolDir: spoolDir(), batchSize: 10, flushIntervalMs: 60_000 }).start();
    expect(b.push(evs(25))).toBe(25);
    await until(() => f.rows().length === 20);
    expect(f.stored.size).toBe(2);
    expect(b.buffered).toBe(5);
    await b.close();
    expect(f.rows().length).toBe(25);
    expect(b.counters).toMatchObject({ accepted: 25, flushed: 25, spilled: 0, dropped: 0 });
  });

  it('drains a backlog in larger inserts (whole multiples of batchSize, at most maxBatchRows)', async () => {
    const f = fakeSink();
    const b = new EventBuffer({ sink: f.sink, spoolDir: spoolDir(), batchSize: 10, maxBatchRows: 45, flushIntervalMs: 60_000 });
    b.push(evs(95));
    b.start();
    await until(() => f.rows().length === 90);
    expect([...f.stored.values()].map((x) => x.rows)).toEqual([40, 40, 10]);
    await b.close();
    expect(f.rows().length).toBe(95);
    expect(new Set(f.rows().map((r) => r.segment)).size).toBe(95);
  });

  it('flushes by age', async () => {
    const f = fakeSink();
    const b = new EventBuffer({ sink: f.sink, spoolDir: spoolDir(), batchSize: 1000, flushIntervalMs: 100 }).start();
    b.push(evs(3));
    await until(() => f.rows().length === 3, 2000);
    await b.close();
  });

  it('retries a failed batch with the same batch id and backoff', async () => {
    const f = fakeSink();
    f.up = false;
    const b = new EventBuffer({ sink: f.sink, spoolDir: spoolDir(), batchSize: 5, flushIntervalMs: 20, backoffMinMs: 10, backoffMaxMs: 40 }).start();
    b.push(evs(5));
    await until(() => f.calls.length >= 3);
    const ids = new Set(f.calls.map((c) => c.batchId));
    expect(ids.size).toBe(1);
    expect(f.calls[0]!.retry).toBe(false);
    expect(f.calls.slice(1).every((c) => c.retry)).toBe(true);
    f.up = true;
    await until(() => f.rows().length === 5);
    expect(f.stored.has([...ids][0]!)).toBe(true);
    expect(b.counters.failures).toBeGreaterThanOrEqual(2);
    await b.close();
  });

  it('spills to disk when full while the sink is down, and replays later', async () => {
    const f = fakeSink();
    f.up = false;
    const dir = spoolDir();
    const b = new EventBuffer({ sink: f.sink, spoolDir: dir, batchSize: 10, maxBuffered: 30, flushIntervalMs: 20, backoffMinMs: 10, backoffMaxMs: 20 }).start();
    for (let i = 0; i < 10; i++) b.push(evs(10, i * 10));
    await new Promise((r) => setTimeout(r, 50));
    expect(b.counters.spilled).toBeGreaterThan(0);
    expect(b.buffered).toBeLessThanOrEqual(40); // memory stays bounded (pending + one in flight)
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tsv')).length).toBeGreaterThan(0);
    f.up = true;
    await until(() => new Set(f.rows().map((r) => r.session_id)).size === 100);
    await until(() => fs.readdirSync(dir).length === 0);
    expect(b.counters.replayed).toBeGreaterThan(0);
    expect(b.counters.dropped).toBe(0);
    await b.close();
  });

  it('spills what it cannot deliver on close and a new buffer replays it', async () => {
    const f = fakeSink();
    f.up = false;
    const dir = spoolDir();
    const b1 = new EventBuffer({ sink: f.sink, spoolDir: dir, batchSize: 10, flushIntervalMs: 10, backoffMinMs: 1000 }).start();
    b1.push(evs(15));
    await until(() => f.calls.length >= 1);
    await b1.close(200);
    expect(b1.counters.spilled).toBe(15);
    expect(f.rows().length).toBe(0);
    f.up = true;
    const b2 = new EventBuffer({ sink: f.sink, spoolDir: dir, flushIntervalMs: 10 }).start();
    await until(() => f.rows().length === 15);
    // The batch that was in flight keeps its id on disk, so its replay is marked as a retry.
    expect(f.calls.filter((c) => c.retry).length).toBeGreaterThanOrEqual(1);
    await b2.close();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('drops (and counts) events once the spool is full', async () => {
    const f = fakeSink();
    f.up = false;
    const b = new EventBuffer({ sink: f.sink, spoolDir: spoolDir(), batchSize: 10, maxBuffered: 10, maxSpoolBytes: 3000, flushIntervalMs: 60_000, backoffMinMs: 60_000 }).start();
    for (let i = 0; i < 10; i++) b.push(evs(10));
    expect(b.counters.dropped).toBeGreaterThan(0);
    expect(b.stats().spoolBytes).toBeLessThanOrEqual(3000);
    expect(b.counters.accepted).toBe(100);
    await b.close(50);
  });

  it('sets aside a spooled batch that the sink keeps refusing as data errors', async () => {
    const dir = spoolDir();
    fs.writeFileSync(path.join(dir, '000000000000001-bad.jsonl'), JSON.stringify({ batch_id: 'bad', video_id: 'v' }) + '\n');
    let calls = 0;
    const sink = async () => {
      calls++;
      throw Object.assign(new Error('Code: 27, cannot parse'), { permanent: true });
    };
    const b = new EventBuffer({ sink, spoolDir: dir, flushIntervalMs: 10, backoffMinMs: 5, backoffMaxMs: 5, maxReplayAttempts: 2 }).start();
    await until(() => fs.existsSync(path.join(dir, '000000000000001-bad.jsonl.bad')));
    expect(calls).toBe(2);
    expect(b.counters.dropped).toBe(1);
    await b.close(50);
  });
});

describe('clickhouse helpers', () => {
  it('splits schema files into statements, ignoring comments', () => {
    const sql = "-- a comment; with a semicolon\nCREATE DATABASE x;\n\nCREATE TABLE x.t (a UInt8) -- trailing; note\nENGINE = Memory;\n";
    expect(splitSql(sql)).toEqual(['CREATE DATABASE x', 'CREATE TABLE x.t (a UInt8) \nENGINE = Memory']);
  });
  it('quotes string literals for 18.16 (no query parameters there)', () => {
    expect(quoteString("it's \\ x")).toBe("'it\\'s \\\\ x'");
  });
  it('reads 18.16 error codes from the message', () => {
    expect(clickhouseErrorCode(new Error('Code: 60, e.displayText() = DB::Exception: Table x does not exist'))).toBe(60);
    expect(clickhouseErrorCode(Object.assign(new Error('x'), { code: '241' }))).toBe(241);
    expect(clickhouseErrorCode(new Error('ECONNREFUSED'))).toBeUndefined();
  });
});
