import { describe, expect, it } from 'vitest';
import { EVENT_TSV_COLUMNS, MAX_EVENTS_PER_BATCH, eventRowToTsv, fastCheckAccepts, parseEventBatch, parseTsvRows, toRow, tsvRow, tsvRowRoom, writeTsvRow } from '../../src/analytics/events.ts';

const VID = 'vid_abcdefghijklmnopqrst';
const NOW = Date.parse('2026-01-10T12:00:00Z');
const ev = (o: Record<string, unknown> = {}) => ({ videoId: VID, sessionId: 'sess-1', type: 'play', ts: NOW, ...o });

describe('parseEventBatch', () => {
  it('accepts an array or {events}, ISO or epoch-ms timestamps', () => {
    const a = parseEventBatch([ev(), ev({ type: 'segment_fetched', segment: 3, bandwidth: 800000, ts: '2026-01-10T11:59:59.500Z' })], NOW);
    expect(a.ok).toBe(true);
    if (!a.ok) return;
    expect(a.events[1]).toEqual({
      videoId: VID,
      sessionId: 'sess-1',
      type: 'segment_fetched',
      ts: NOW - 500,
      segment: 3,
      bandwidth: 800000,
      watchTimeSec: null,
      positionSec: null,
    });
    const b = parseEventBatch({ events: [ev({ type: 'watch_time', watchTimeSec: 12.5, positionSec: 30, ts: '2026-01-10T13:00:00+01:00' })] }, NOW);
    expect(b.ok && b.events[0]).toMatchObject({ ts: NOW, watchTimeSec: 12.5, positionSec: 30 });
    expect(parseEventBatch([], NOW)).toEqual({ ok: true, events: [] });
  });
  it('accepts every contract event type', () => {
    for (const type of ['play', 'pause', 'segment_fetched', 'watch_time', 'bitrate_selected', 'rebuffer', 'error']) {
      expect(parseEventBatch([ev({ type })], NOW).ok, type).toBe(true);
    }
  });
  it('rejects bad events naming the culprit', () => {
    const cases: [unknown, RegExp][] = [
      [[ev({ type: 'seek' })], /^0\.type/],
      [[ev(), ev({ videoId: 'vid_x' })], /^1\.videoId/],
      [[ev({ sessionId: '' })], /sessionId/],
      [[ev({ ts: 'yesterday' })], /ts/],
      [[ev({ ts: '2026-01-10T12:00:00' })], /ts/], // no zone: ambiguous
      [[ev({ segment: -1 })], /segment/],
      [[ev({ segment: 1.5 })], /segment/],
      [[ev({ bandwidth: 'high' })], /bandwidth/],
      [[ev({ watchTimeSec: -3 })], /watchTimeSec/],
      [[{ type: 'play' }], /videoId/],
      [{ nope: [] }, /array of events/],
      ['text', /array of events/],
      [null, /array of events/],
    ];
    for (const [body, re] of cases) {
      const r = parseEventBatch(body, NOW);
      expect(r.ok, JSON.stringify(body)).toBe(false);
      if (!r.ok) expect(r.message).toMatch(re);
    }
  });
  it('takes the compiled fast path for valid batches, and it never accepts what zod refuses', () => {
    const valid = [
      [ev()],
      [ev({ type: 'segment_fetched', segment: 0, bandwidth: 4_294_967_295, ts: '2026-01-10T11:59:59.500Z' })],
      [ev({ type: 'watch_time', watchTimeSec: 0.5, positionSec: null, segment: null })],
      Array.from({ length: MAX_EVENTS_PER_BATCH }, () => ev()),
    ];
    for (const list of valid) expect(fastCheckAccepts(list), JSON.stringify(list[0])).toBe(true);
    const invalid: Record<string, unknown>[] = [
      { type: 'seek' }, { videoId: 'vid_x' }, { videoId: 'upl_abcdefghijklmnopqrst' }, { videoId: 7 }, { sessionId: '' },
      { sessionId: 'x'.repeat(129) }, { sessionId: 'a b' }, { ts: 'yesterday' }, { ts: '2026-01-10T12:00:00' }, { ts: -1 },
      { ts: 1.5 }, { ts: null }, { segment: -1 }, { segment: 1.5 }, { segment: 10_000_001 }, { bandwidth: 'high' },
      { bandwidth: 4_294_967_296 }, { watchTimeSec: -3 }, { watchTimeSec: 1e8 }, { positionSec: '1' },
    ];
    const lists: unknown[] = [
      ...invalid.map((o) => [ev(), ev(o)]),
      [{ type: 'play' }],
      [null],
      ['event'],
      Array.from({ length: MAX_EVENTS_PER_BATCH + 1 }, () => ev()),
    ];
    for (const list of lists) {
      expect(parseEventBatch(list, NOW).ok, JSON.stringify(list).slice(0, 200)).toBe(false);
      expect(fastCheckAccepts(list), JSON.stringify(list).slice(0, 200)).toBe(false);
    }
    // Unknown keys: the JSON Schema forbids them, zod strips them; zod decides, so they still pass.
    const extra = parseEventBatch([ev({ extra: 1 })], NOW);
    expect(extra.ok && extra.events[0]).not.toHaveProperty('extra');
  });

  it('bounds clock skew and batch size', () => {
    expect(parseEventBatch([ev({ ts: NOW + 11 * 60_000 })], NOW)).toMatchObject({ ok: false, message: /future/ });
    expect(parseEventBatch([ev({ ts: NOW - 8 * 24 * 3600_000 })], NOW)).toMatchObject({ ok: false, message: /old/ });
    expect(parseEventBatch([ev({ ts: NOW + 5 * 60_000 })], NOW).ok).toBe(true);
    expect(parseEventBatch(Array.from({ length: MAX_EVENTS_PER_BATCH + 1 }, () => ev()), NOW)).toMatchObject({ ok: false, message: /1000/ });
  });
});

describe('toRow', () => {
  it('produces a ClickHouse row with a deterministic event id and explicit event_date', () => {
    const r = parseEventBatch([ev({ ts: NOW + 1234, bandwidth: 5 })], NOW);
    if (!r.ok) throw new Error(r.message);
    const row = toRow(r.events[0]!, NOW + 2000, 'b1', 7);
    expect(row).toEqual({
      event_id: 'b1:7',
      event_date: '2026-01-10',
      ts: Math.floor((NOW + 1234) / 1000),
      ts_ms: 234,
      received_at: Math.floor((NOW + 2000) / 1000),
      video_id: VID,
      session_id: 'sess-1',
      type: 'play',
      segment: null,
      bandwidth: 5,
      watch_time_sec: null,
      position_sec: null,
      batch_id: 'b1',
    });
  });
});

describe('TabSeparated rows', () => {
  const e = { videoId: VID, sessionId: 'sess-1', type: 'watch_time' as const, ts: NOW + 1234, segment: null, bandwidth: 5, watchTimeSec: 12.5, positionSec: 1e-7 };

  it('hold the same values as toRow, column for column, and read back', () => {
    const line = tsvRow(e, Math.floor((NOW + 2000) / 1000), 'b1', 7);
    expect(line.endsWith('\n')).toBe(true);
    expect(line.split('\t')).toHaveLength(EVENT_TSV_COLUMNS.length);
    const [back] = parseTsvRows(line);
    expect(back).toEqual({ ...toRow(e, NOW + 2000, 'b1', 7), position_sec: 1e-7 });
    // Tiny floats go out as plain decimals, not "1e-7".
    expect(line).toContain('\t0.000000100000\t');
    expect(line).toContain('\t\\N\t'); // null segment
  });

  it('escape tabs, newlines and backslashes so no value can break a row', () => {
    const bad = { ...e, sessionId: 'a\tb\nc\\d' };
    const line = tsvRow(bad, 1, 'b2', 0);
    expect(line.split('\n')).toHaveLength(2); // one row, one terminator
    expect(parseTsvRows(line)[0]!.session_id).toBe('a\tb\nc\\d');
  });

  it('are written into a buffer byte for byte as tsvRow builds them', () => {
    const id = 'mk2v9x-0a1b2c3d4e5f';
    const cases = [
      e,
      { ...e, segment: 0, bandwidth: 4_294_967_295, watchTimeSec: null, positionSec: 0, ts: 0 },
      { ...e, sessionId: 'tab\there', type: 'error' as const, segment: 10_000_000, positionSec: 3600.25 },
      { ...e, sessionId: 'ünïcode', ts: Date.parse('2030-12-31T23:59:59.999Z') },
      { ...e, bandwidth: 2_147_483_647, segment: 9 }, // the integer fast path's edge
      { ...e, bandwidth: 2_147_483_648, segment: 10 },
    ];
    for (const [i, c] of cases.entries()) {
      const buf = Buffer.alloc(tsvRowRoom(c, id.length));
      const end = writeTsvRow(buf, 0, c, 1_700_000_123, Buffer.from(id), i * 997);
      expect(buf.subarray(0, end).toString('utf8')).toBe(tsvRow(c, 1_700_000_123, id, i * 997));
    }
  });

  it('convert legacy JSONEachRow spool rows', () => {
    const row = toRow(e, NOW, 'b3', 1);
    expect(parseTsvRows(eventRowToTsv(row))).toEqual([{ ...row, position_sec: 1e-7 }]);
  });
});
