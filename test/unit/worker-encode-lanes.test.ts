import { describe, expect, it } from 'vitest';
import { loadWorkerConfig } from '../../src/common/config.ts';
import { DEFAULT_SETTINGS, chunkTargetFor } from '../../src/worker/activities/index.ts';
import { CorePins, encodeLanes as lanesOf, threadsForChunk } from '../../src/worker/encode-lanes.ts';

/** The lanes a worker with these variables gets on `cores` CPUs. */
const encodeLanes = (cores: number, env: Record<string, string>) => lanesOf(cores, loadWorkerConfig(env).encode);

describe('encodeLanes', () => {
  it('runs one single-threaded encode per core, two threads for a video\'s last chunks', () => {
    expect(encodeLanes(2, {})).toEqual({ slots: 2, threads: 1, tailThreads: 2, pin: false });
    expect(encodeLanes(16, {})).toEqual({ slots: 16, threads: 1, tailThreads: 2, pin: false });
    expect(encodeLanes(1, {})).toEqual({ slots: 1, threads: 1, tailThreads: 1, pin: false });
  });

  it('shares the cores among fewer slots, or uses a fixed thread count when told to', () => {
    expect(encodeLanes(16, { VORA_WORKER_ENCODE_SLOTS: '4' })).toEqual({ slots: 4, threads: 4, tailThreads: 4, pin: false });
    expect(encodeLanes(2, { VORA_WORKER_ENCODE_SLOTS: '1', VORA_ENCODE_THREADS: '0' })).toEqual({ slots: 1, threads: 0, tailThreads: 0, pin: false });
    expect(encodeLanes(2, { VORA_WORKER_ENCODE_SLOTS: '', VORA_ENCODE_THREADS: '' })).toEqual({ slots: 2, threads: 1, tailThreads: 2, pin: false });
    expect(encodeLanes(2, { VORA_ENCODE_THREADS: '2' })).toEqual({ slots: 2, threads: 2, tailThreads: 2, pin: false });
    // Pinning is asked for; more encodes than cores cannot each have a CPU of their own.
    expect(encodeLanes(2, { VORA_ENCODE_PIN: '1' }).pin).toBe(true);
    expect(encodeLanes(2, { VORA_ENCODE_PIN: '1', VORA_WORKER_ENCODE_SLOTS: '3' }).pin).toBe(false);
    expect(encodeLanes(1, { VORA_ENCODE_PIN: '1' }).pin).toBe(false);
  });

  it('gives the tail threads to the last `slots` chunks only', () => {
    const lanes = encodeLanes(2, {});
    expect(Array.from({ length: 8 }, (_, i) => threadsForChunk(lanes, i, 8))).toEqual([1, 1, 1, 1, 1, 1, 2, 2]);
    expect([0].map((i) => threadsForChunk(lanes, i, 1))).toEqual([2]); // a one-chunk video: nothing runs beside it
  });

  it('refuses values that are not whole numbers', () => {
    expect(() => encodeLanes(2, { VORA_WORKER_ENCODE_SLOTS: 'two' })).toThrow(/VORA_WORKER_ENCODE_SLOTS/);
    expect(() => encodeLanes(2, { VORA_ENCODE_THREADS: '-1' })).toThrow(/VORA_ENCODE_THREADS/);
    expect(() => encodeLanes(2, { VORA_ENCODE_PIN: 'yes' })).toThrow(/VORA_ENCODE_PIN/);
  });
});

describe('CorePins', () => {
  it('puts each pinned encode on the CPU with the fewest, whichever lane finished first', async () => {
    const pins = new CorePins(2);
    const [a, b] = [pins.acquire(), pins.acquire()];
    expect([a, b]).toEqual([0, 1]);
    pins.release(b); // lane on CPU 1 finished first: its next chunk goes there, not beside CPU 0's
    expect(pins.acquire()).toBe(1);
    pins.release(0);
    pins.release(1);
    const seen: (number | undefined)[] = [];
    await pins.with(true, async (cpu) => seen.push(cpu));
    await pins.with(false, async (cpu) => seen.push(cpu));
    expect(seen).toEqual([0, undefined]);
    await expect(pins.with(true, async () => Promise.reject(new Error('encode failed')))).rejects.toThrow('encode failed');
    expect(pins.acquire()).toBe(0); // released on failure too
  });
});

describe('chunk plan length', () => {
  it('is whole segments, stretched for long sources', () => {
    const s = { ...DEFAULT_SETTINGS, ...loadWorkerConfig({}).processing };
    expect(chunkTargetFor(60, s)).toBe(8);
    expect(chunkTargetFor(60, { ...s, chunkTargetSec: 10 })).toBe(12); // rounded up to whole 4 s segments
    expect(chunkTargetFor(7200, s) % s.segmentDurationSec).toBe(0);
    expect(Math.ceil(7200 / chunkTargetFor(7200, s))).toBeLessThanOrEqual(s.maxChunks);
  });
});
