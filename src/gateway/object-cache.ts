// A small in-memory LRU of hot HLS objects in the gateway, bounded by bytes. Varnish is the real
// cache; this one saves the MinIO round trip (a signed HTTP request, about half of the gateway's
// CPU per small object) for what Varnish asks again: after a Varnish restart or ban, from a second
// Varnish node, for HEAD/Range/revalidation requests, and for the first seconds of a new video
// when every player asks for the same first segments.
//
// Only objects that can no longer change under their key are kept (see cacheableObject): segments
// and init sections (written once, before the playlist that names them) and everything of a READY
// video (its playlists are final then). Private videos' objects are never held. A deleted video is refused by the state
// check before the cache is consulted, and its entries are dropped when PostgreSQL notifies the change.
import { IMMUTABLE_EXT, extensionOf } from './http.ts';

export interface CachedObject {
  body: Buffer;
  etag?: string;
  lastModified?: Date;
}

export interface ObjectCacheOptions {
  /** Total body bytes held; 0 disables the cache. */
  maxBytes: number;
  /** Larger objects are streamed through and never held. */
  maxObjectBytes: number;
}

export const DEFAULT_OBJECT_CACHE: ObjectCacheOptions = { maxBytes: 64 * 1024 * 1024, maxObjectBytes: 4 * 1024 * 1024 };

/**
 * May `rel` (a path under hls/{videoId}/) of a public video in `state` be held? Segments always;
 * anything of a READY video (its playlists are final; posters and storyboards are written once).
 * A PARTIALLY_READY master grows as renditions finish, so it is always fetched.
 */
export function cacheableObject(rel: string, state: string): boolean {
  return state === 'READY' || IMMUTABLE_EXT.has(extensionOf(rel));
}

export class ObjectCache {
  readonly #map = new Map<string, CachedObject>(); // insertion order = recency (re-set on hit)
  #bytes = 0;
  readonly counters = { hits: 0, misses: 0, stored: 0, evicted: 0 };

  constructor(readonly opts: ObjectCacheOptions) {}

  get enabled(): boolean {
    return this.opts.maxBytes > 0;
  }

  /** Worth collecting an object of this size while it streams? */
  fits(size: number): boolean {
    return this.enabled && size > 0 && size <= this.opts.maxObjectBytes && size <= this.opts.maxBytes;
  }

  get(key: string): CachedObject | undefined {
    const o = this.#map.get(key);
    if (!o) {
      this.counters.misses++;
      return undefined;
    }
    this.#map.delete(key);
    this.#map.set(key, o);
    this.counters.hits++;
    return o;
  }

  set(key: string, o: CachedObject): void {
    if (!this.fits(o.body.length)) return;
    this.delete(key);
    this.#map.set(key, o);
    this.#bytes += o.body.length;
    this.counters.stored++;
    for (const [k, old] of this.#map) {
      if (this.#bytes <= this.opts.maxBytes) break;
      this.#map.delete(k);
      this.#bytes -= old.body.length;
      this.counters.evicted++;
    }
  }

  /** Held? (no recency or counter change) */
  has(key: string): boolean {
    return this.#map.has(key);
  }

  delete(key: string): void {
    const o = this.#map.get(key);
    if (!o) return;
    this.#map.delete(key);
    this.#bytes -= o.body.length;
  }

  /** Drops every entry under a prefix (one video's objects). */
  deletePrefix(prefix: string): void {
    for (const k of [...this.#map.keys()]) if (k.startsWith(prefix)) this.delete(k);
  }

  stats() {
    return { entries: this.#map.size, bytes: this.#bytes, maxBytes: this.opts.maxBytes, ...this.counters };
  }
}
