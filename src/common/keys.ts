// Object layout in the one bucket. Every writer and reader goes through these helpers so the
// layout is defined once.
export const keys = {
  /** Where @tus/s3-store keeps in-progress uploads (its own .info/.part objects live beside). */
  uploadPrefix: 'uploads/',
  /**
   * Where sources were copied before the verified upload became the source in place
   * (videos.source_key = the tus object under uploadPrefix); DELETE still removes this prefix.
   */
  source: (videoId: string) => `sources/${videoId}/source`,
  /** Everything the player fetches: master.m3u8, {rendition}/index.m3u8, segments, posters. */
  hlsPrefix: (videoId: string) => `hls/${videoId}/`,
  hls: (videoId: string, rel: string) => `hls/${videoId}/${rel}`,
  /** Intermediate processing state (chunk plan, per-chunk encodes); removed when done. */
  workPrefix: (videoId: string) => `work/${videoId}/`,
  work: (videoId: string, rel: string) => `work/${videoId}/${rel}`,
};

/** Ids are `vid_`/`upl_` + 20 lowercase base32 chars: safe in paths, URLs and object keys. */
export const ID_RE = /^(vid|upl)_[a-z2-7]{20}$/;
