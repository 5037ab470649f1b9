import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, chunkTargetFor, settingsFromEnv } from '../../src/worker/activities/index.ts';
import { encodeLanes, threadsForChunk } from '../../src/worker/encode-lanes.ts';

describe('encodeLanes', () => {
  it('runs one single-threaded encode per core, two threads for a video\'s last chunks', () => {
    expect(encodeLanes(2, {})).toEqual({ slots: 2, threads: 1, tailThreads: 2 });
    expect(encodeLanes(16, {})).toEqual({ slots: 16, threads: 1, tailThreads: 2 });
    expect(encodeLanes(1, {})).toEqual({ slots: 1, threads: 1, tailThreads: 1 });
  });

  it('shares the cores among fewer slots, or uses a fixed thread count when told to', () => {
    expect(encodeLanes(16, { VORA_WORKER_ENCODE_SLOTS: '4' })).toEqual({ slots: 4, threads: 4, tailThreads: 4 });
    expect(encodeLanes(2, { VORA_WORKER_ENCODE_SLOTS: '1', VORA_ENCODE_THREADS: '0' })).toEqual({ slots: 1, threads: 0, tailThreads: 0 });
    expect(encodeLanes(2, { VORA_WORKER_ENCODE_SLOTS: '', VORA_ENCODE_THREADS: '' })).toEqual({ slots: 2, threads: 1, tailThreads: 2 });
    expect(encodeLanes(2, { VORA_ENCODE_THREADS: '2' })).toEqual({ slots: 2, threads: 2, tailThreads: 2 });
  });

  it('gives the tail threads to the last `slots` chunks only', () => {
    const lanes = encodeLanes(2, {});
    expect(Array.from({ length: 8 }, (_, i) => threadsForChunk(lanes, i, 8))).toEqual([1, 1, 1, 1, 1, 1, 2, 2]);
    expect([0].map((i) => threadsForChunk(lanes, i, 1))).toEqual([2]); // a one-chunk video: nothing runs beside it
  });

  it('refuses values that are not whole numbers', () => {
    expect(() => encodeLanes(2, { VORA_WORKER_ENCODE_SLOTS: 'two' })).toThrow(/VORA_WORKER_ENCODE_SLOTS/);
    expect(() => encodeLanes(2, { VORA_ENCODE_THREADS: '-1' })).toThrow(/VORA_ENCODE_THREADS/);
  });
});

describe('chunk plan length', () => {
  it('is whole segments, stretched for long sources', () => {
    const s = { ...DEFAULT_SETTINGS, ...settingsFromEnv({}) };
    expect(chunkTargetFor(60, s)).toBe(8);
    expect(chunkTargetFor(60, { ...s, chunkTargetSec: 10 })).toBe(12); // rounded up to whole 4 s segments
    expect(chunkTargetFor(7200, s) % s.segmentDurationSec).toBe(0);
    expect(Math.ceil(7200 / chunkTargetFor(7200, s))).toBeLessThanOrEqual(s.maxChunks);
  });
});
