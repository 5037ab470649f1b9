// The playback cache (Varnish, the playback entry at cfg.playbackUrl) as the API and the worker
// drive it: pre-warm a video that became READY, and BAN a deleted video's objects.
//
// Pre-warming: once a video is READY the worker calls prewarmVideo(cfg, videoId), which asks the
// playback entry for what every viewer needs first: the master playlist, each media playlist (video
// renditions and audio groups), and each rendition's init section plus its first `segments`
// segments. The first real viewers then hit the cache. Never throws: failures are counted and
// returned (a cold cache is slower, not broken). Requests run with bounded concurrency and a
// per-request timeout; bodies are read to the end so Varnish finishes storing them.
import type { VoraConfig } from './config.ts';
import { ID_RE } from './keys.ts';

const isVideoId = (id: string) => ID_RE.test(id) && id.startsWith('vid_');

/** `{playbackUrl}/hls/{videoId}/{rel}`; a path in playbackUrl is kept. */
export function hlsUrl(playbackUrl: string, videoId: string, rel = ''): URL {
  return new URL(`hls/${videoId}/${rel}`, playbackUrl.endsWith('/') ? playbackUrl : `${playbackUrl}/`);
}

/**
 * Drops every cached object of a video from Varnish: BAN on its /hls/{videoId}/ prefix (the VCL
 * bans by URL prefix, allowed from localhost only). Throws on a refusal or after `timeoutMs`.
 */
export async function banVideo(playbackUrl: string, videoId: string, timeoutMs = 2000): Promise<void> {
  if (!isVideoId(videoId)) throw new Error(`not a video id: ${videoId}`);
  const res = await fetch(hlsUrl(playbackUrl, videoId), { method: 'BAN', signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text().catch(() => '');
  if (!res.ok) throw new Error(`varnish BAN answered ${res.status} ${text}`.trimEnd());
}

export interface PrewarmOptions {
  /** Segments per rendition after the init section; default 2. */
  segments?: number;
  /** Requests in flight at once; default 4. */
  concurrency?: number;
  /** Per request; default 10 s. */
  timeoutMs?: number;
  /** Whole run; default 60 s. */
  deadlineMs?: number;
  fetch?: typeof fetch;
}

export interface PrewarmResult {
  videoId: string;
  /** Requests made / answered 2xx / failed (non-2xx, network error or timeout). */
  requested: number;
  ok: number;
  failed: number;
  playlists: number;
  segments: number;
  /** How many answers Varnish already had (X-Cache: HIT). */
  alreadyCached: number;
  bytes: number;
  ms: number;
  errors: string[];
}

/** URIs of a playlist: non-tag lines, and URI="..." attributes (EXT-X-MEDIA, EXT-X-MAP). */
export function playlistUris(text: string): { uris: string[]; attrUris: string[] } {
  const uris: string[] = [];
  const attrUris: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith('#')) {
      if (line.startsWith('#EXT-X-MEDIA:') || line.startsWith('#EXT-X-MAP:')) {
        const m = /URI="([^"]+)"/.exec(line);
        if (m) attrUris.push(m[1]!);
      }
      continue;
    }
    uris.push(line);
  }
  return { uris, attrUris };
}

export async function prewarmVideo(cfg: Pick<VoraConfig, 'playbackUrl'>, videoId: string, opts: PrewarmOptions = {}): Promise<PrewarmResult> {
  const t0 = Date.now();
  const r: PrewarmResult = { videoId, requested: 0, ok: 0, failed: 0, playlists: 0, segments: 0, alreadyCached: 0, bytes: 0, ms: 0, errors: [] };
  const segs = opts.segments ?? 2;
  const limit = Math.max(1, opts.concurrency ?? 4);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const deadline = t0 + (opts.deadlineMs ?? 60_000);
  const doFetch = opts.fetch ?? fetch;
  const fail = (what: string) => {
    r.failed++;
    if (r.errors.length < 20) r.errors.push(what);
  };

  /** GET one URL to the end; the body text for playlists, null on failure. */
  async function get(url: URL, kind: 'playlist' | 'segment'): Promise<string | null> {
    if (Date.now() > deadline) {
      fail(`${url.pathname}: deadline passed`);
      return null;
    }
    r.requested++;
    try {
      const res = await doFetch(url, { signal: AbortSignal.timeout(Math.min(timeoutMs, Math.max(1, deadline - Date.now()))) });
      const body = Buffer.from(await res.arrayBuffer());
      if (!res.ok) {
        fail(`${url.pathname}: ${res.status}`);
        return null;
      }
      r.ok++;
      r.bytes += body.length;
      if (res.headers.get('x-cache') === 'HIT') r.alreadyCached++;
      if (kind === 'playlist') r.playlists++;
      else r.segments++;
      return kind === 'playlist' ? body.toString('utf8') : '';
    } catch (err) {
      fail(`${url.pathname}: ${(err as Error).name === 'TimeoutError' ? 'timeout' : String((err as Error).message ?? err)}`);
      return null;
    }
  }

  /** Runs fn over items with at most `limit` at once. */
  async function pool<T>(items: T[], fn: (x: T) => Promise<void>): Promise<void> {
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(limit, items.length) }, async () => {
        while (next < items.length) await fn(items[next++]!);
      }),
    );
  }

  try {
    if (!isVideoId(videoId)) {
      fail(`not a video id: ${videoId}`);
      return r;
    }
    const masterUrl = hlsUrl(cfg.playbackUrl, videoId, 'master.m3u8');
    const master = await get(masterUrl, 'playlist');
    if (master === null) return r;
    const { uris, attrUris } = playlistUris(master);
    const media = [...new Set([...uris, ...attrUris].map((u) => new URL(u, masterUrl).href))].map((h) => new URL(h));
    const objects: URL[] = [];
    await pool(media, async (u) => {
      const text = await get(u, 'playlist');
      if (text === null) return;
      const p = playlistUris(text);
      // EXT-X-MAP (init section) first, then the first segments in playlist order.
      for (const x of [...p.attrUris, ...p.uris.slice(0, segs)]) objects.push(new URL(x, u));
    });
    const unique = [...new Set(objects.map((u) => u.href))].map((h) => new URL(h));
    await pool(unique, async (u) => void (await get(u, 'segment')));
  } catch (err) {
    fail(`unexpected: ${String(err)}`);
  } finally {
    r.ms = Date.now() - t0;
  }
  return r;
}
