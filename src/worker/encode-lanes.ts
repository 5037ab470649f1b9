// How a worker host's cores are shared among chunk encodes.
//
// Chunks are the parallelism: a worker runs one chunk encode per core, each decoding once and
// feeding every rung's libx264 on one thread (threads = 1), the least CPU for the output. The
// exception is a video's last chunks (as many as there are lanes): nothing is left to start
// beside them, so a lane that finishes would sit idle while the others still run. Those get two
// threads, which the native side spends on running each rung on its own thread (libx264 still
// single-threaded, fed references to the same decoded frames), so a chunk left alone spreads over
// the cores. That costs ~2% more CPU for those chunks where x264's frame threads cost ~12%; a
// 24 s 1080p video (three chunks on two lanes) finished in 21.7 s instead of 24.7 s.
// VORA_ENCODE_PIN=1 pins single-threaded encodes, each to the CPU with the fewest pinned encodes
// (CorePins). Two encodes alone in one process ran 1.78x as fast as one on 2 cores unpinned and
// 1.85-1.92x pinned, but the whole pipeline (audio encode and tail chunks beside the lanes) was
// no faster pinned (48.2 s either way, 60 s 1080p), and a pinned lane cannot move off a core that
// another service keeps busy: off by default.
// bench/media-pipeline.ts compares the layouts (--slots, --threads, --pin).
import type { WorkerConfig } from '../common/config.ts';

export interface EncodeLanes {
  /** Chunk encodes one worker runs at once. */
  slots: number;
  /** Native threads per encode: 1 runs the whole chunk on one thread; more run each rung on its own (0 lets FFmpeg pick). */
  threads: number;
  /** Threads for a video's last `slots` chunks. */
  tailThreads: number;
  /** Pin single-threaded encodes to a CPU each (CorePins). */
  pin: boolean;
}

/** The lanes of a host with `cores` CPUs, given the worker's knobs (loadWorkerConfig().encode). */
export function encodeLanes(cores: number, knobs: WorkerConfig['encode']): EncodeLanes {
  const n = Math.max(1, cores);
  const slots = Math.max(1, knobs.slots || n);
  // Pinning only pays when each encode has a core of its own.
  const pin = knobs.pin && n > 1 && slots <= n;
  const fixed = knobs.threads;
  if (fixed !== undefined) return { slots, threads: fixed, tailThreads: fixed, pin };
  // Fewer slots than cores: the cores are shared out among them.
  const threads = Math.max(1, Math.floor(n / slots));
  return { slots, threads, tailThreads: n === 1 ? threads : Math.max(2, threads), pin };
}

/** Threads for chunk `index` of `count`: the last `slots` chunks of a video get the tail's. */
export function threadsForChunk(lanes: EncodeLanes, index: number, count: number): number {
  return index >= count - lanes.slots ? lanes.tailThreads : lanes.threads;
}

/**
 * CPUs for pinned encodes: each acquire takes the CPU with the fewest pinned encodes, so lanes
 * that finish at different times still end up on different CPUs.
 */
export class CorePins {
  private readonly load: number[];

  constructor(cores: number) {
    this.load = new Array<number>(Math.max(1, cores)).fill(0);
  }

  acquire(): number {
    const cpu = this.load.indexOf(Math.min(...this.load));
    this.load[cpu]!++;
    return cpu;
  }

  release(cpu: number): void {
    if (this.load[cpu]) this.load[cpu]!--;
  }

  /** Runs `f` with a CPU when `pin` (a single-threaded encode), else with none. */
  async with<T>(pin: boolean, f: (cpu: number | undefined) => Promise<T>): Promise<T> {
    if (!pin) return f(undefined);
    const cpu = this.acquire();
    try {
      return await f(cpu);
    } finally {
      this.release(cpu);
    }
  }
}
