// How a worker host's cores are shared among chunk encodes.
//
// Chunks are the parallelism: a worker runs one chunk encode per core, each decoding once and
// feeding every rung's libx264. Each encode gets two threads, not one per core: while every lane
// is busy, pairs of threads time-share a core at little cost, and when a job's last chunk runs
// alone it still keeps two cores busy. The layout before lanes, one encode at a time with FFmpeg's
// own threads, lost time at every chunk end, where x264's frame-thread pipeline empties.
// bench/media-pipeline.ts (60 s 1080p ladder, 2 cores, median of 2 rounds, wall / one ffmpeg
// process): one encode at a time 1.00-1.10, one thread per lane 0.95, two threads per lane 0.937.

export interface EncodeLanes {
  /** Chunk encodes one worker runs at once. */
  slots: number;
  /** Native threads per encode (0 lets FFmpeg pick). */
  threads: number;
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
  const threads = int(env.VORA_ENCODE_THREADS, 'VORA_ENCODE_THREADS') ?? (n === 1 ? 1 : Math.max(1, Math.floor((2 * n) / slots)));
  return { slots, threads };
}
