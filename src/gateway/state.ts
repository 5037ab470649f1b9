// Video state lookups for the gateway: every /hls/ request needs one, so answers are cached briefly
// and concurrent misses for one video share a single query (a new video's first seconds bring many
// parallel segment requests).
import type { Pool } from '../common/db.ts';

export type StateLookup = (videoId: string) => Promise<string | null>;

export interface StateCacheOptions {
  ttlMs?: number;
  /** Unknown videos are re-asked sooner: a row may appear any moment. */
  negativeTtlMs?: number;
  maxEntries?: number;
  now?: () => number;
}

export function pgStateLookup(pool: Pool): StateLookup {
  return async (videoId) => {
    const r = await pool.query<{ state: string }>('SELECT state FROM videos WHERE video_id = $1', [videoId]);
    return r.rows[0]?.state ?? null;
  };
}

export function cachedStateLookup(lookup: StateLookup, opts: StateCacheOptions = {}): StateLookup {
  const ttl = opts.ttlMs ?? 2_000;
  const negTtl = opts.negativeTtlMs ?? 1_000;
  const max = opts.maxEntries ?? 10_000;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, { state: string | null; until: number }>();
  const inflight = new Map<string, Promise<string | null>>();
  return (videoId) => {
    const hit = cache.get(videoId);
    if (hit && hit.until > now()) return Promise.resolve(hit.state);
    const running = inflight.get(videoId);
    if (running) return running;
    const p = lookup(videoId)
      .then((state) => {
        cache.delete(videoId); // re-insert so Map order is age order for eviction
        if (cache.size >= max) cache.delete(cache.keys().next().value as string);
        cache.set(videoId, { state, until: now() + (state ? ttl : negTtl) });
        return state;
      })
      .finally(() => inflight.delete(videoId));
    inflight.set(videoId, p);
    return p;
  };
}
