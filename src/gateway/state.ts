// Video state lookups for the gateway: every /hls/ request needs one, so answers are cached briefly
// and concurrent misses for one video share a single query (a new video's first seconds bring many
// parallel segment requests). The live hub (live.ts) invalidates an entry when PostgreSQL notifies
// a change of the video, so the TTL only bounds staleness when notifications are lost.
import type { Pool } from '../common/db.ts';

/** What the gateway needs to know to serve a video's objects. */
export interface VideoAccess {
  state: string;
  /** Private videos need a valid `?token=` (src/common/playback-token.ts). */
  private: boolean;
}

/** A bare string is a public video's state (kept for simple fakes in tests). */
export type StateLookup = (videoId: string) => Promise<VideoAccess | string | null>;

export interface CachedLookup<T> {
  (videoId: string): Promise<T>;
  /** Forgets one video's cached answer (the next request asks again). */
  invalidate(videoId: string): void;
}

export interface StateCacheOptions {
  ttlMs?: number;
  /** Unknown videos are re-asked sooner: a row may appear any moment. */
  negativeTtlMs?: number;
  maxEntries?: number;
  now?: () => number;
}

export function pgStateLookup(pool: Pool): StateLookup {
  return async (videoId) => {
    const r = await pool.query<VideoAccess>('SELECT state, private FROM videos WHERE video_id = $1', [videoId]);
    const row = r.rows[0];
    return row ? { state: row.state, private: row.private === true } : null;
  };
}

export function toAccess(v: VideoAccess | string | null): VideoAccess | null {
  if (v === null) return null;
  return typeof v === 'string' ? { state: v, private: false } : v;
}

export function cachedStateLookup<T>(lookup: (videoId: string) => Promise<T>, opts: StateCacheOptions = {}): CachedLookup<T> {
  const ttl = opts.ttlMs ?? 2_000;
  const negTtl = opts.negativeTtlMs ?? 1_000;
  const max = opts.maxEntries ?? 10_000;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, { value: T; until: number }>();
  const inflight = new Map<string, { p: Promise<T>; gen: number }>();
  let gen = 0; // bumped by invalidate(): an answer read before the change is not cached
  const fn = ((videoId: string) => {
    const hit = cache.get(videoId);
    if (hit && hit.until > now()) return Promise.resolve(hit.value);
    const running = inflight.get(videoId);
    if (running) return running.p;
    const myGen = gen;
    const p = lookup(videoId)
      .then((value) => {
        if (myGen === gen) {
          cache.delete(videoId); // re-insert so Map order is age order for eviction
          if (cache.size >= max) cache.delete(cache.keys().next().value as string);
          cache.set(videoId, { value, until: now() + (value ? ttl : negTtl) });
        }
        return value;
      })
      .finally(() => {
        if (inflight.get(videoId)?.p === p) inflight.delete(videoId);
      });
    inflight.set(videoId, { p, gen: myGen });
    return p;
  }) as CachedLookup<T>;
  fn.invalidate = (videoId: string) => {
    cache.delete(videoId);
    inflight.delete(videoId);
    gen++;
  };
  return fn;
}
