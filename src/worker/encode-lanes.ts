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
// bench/media-pipeline.ts compares the layouts (--slots, --threads).

export interface EncodeLanes {
  /** Chunk encodes one worker runs at once. */
  slots: number;
  /** Native threads per encode: 1 runs the whole chunk on one thread; more run each rung on its own (0 lets FFmpeg pick). */
  threads: number;
  /** Threads for a video's last `slots` chunks. */
  tailThreads: number;
}

export function encodeLanes(cores: number, env: Record<string, string | undefined> = process.env): EncodeLanes {
  const int = (v: string | undefined, name: string): number | undefined => {
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number >= 0, got ${JSON.stringify(v)}`);
    return n;
  };
  const n = Math.max(1, cores);
  const slots = Math.max(1, int(env.VORA_WORKER_ENCODE_SLOTS, 'VORA_WORKER_ENCODE_SLOTS') || n);
  const fixed = int(env.VORA_ENCODE_THREADS, 'VORA_ENCODE_THREADS');
  if (fixed !== undefined) return { slots, threads: fixed, tailThreads: fixed };
  // Fewer slots than cores: the cores are shared out among them.
  const threads = Math.max(1, Math.floor(n / slots));
  return { slots, threads, tailThreads: n === 1 ? threads : Math.max(2, threads) };
}

/** Threads for chunk `index` of `count`: the last `slots` chunks of a video get the tail's. */
export function threadsForChunk(lanes: EncodeLanes, index: number, count: number): number {
  return index >= count - lanes.slots ? lanes.tailThreads : lanes.threads;
}
