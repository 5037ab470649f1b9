// The one builder of a video's public JSON shape (docs/contract.md `GET /v1/videos/{videoId}`): the API
// answers it, and the gateway's live WebSocket can push the identical object with loadVideoView().
// For a private video the playback and thumbnail URLs carry a signed `?token=` (playback-token.ts).
import type pg from 'pg';
import type { VoraConfig } from './config.ts';
import { PLAYBACK_TOKEN_TTL_SEC, signPlaybackToken, withPlaybackToken } from './playback-token.ts';
import { isPlayable, type RenditionState, type VideoState } from './video-state.ts';

type Db = Pick<pg.Pool, 'query'> | pg.PoolClient;

export interface VideoRow {
  video_id: string;
  upload_id: string;
  state: VideoState;
  failure_code: string | null;
  failure_message: string | null;
  duration_sec: number | null;
  source: unknown;
  source_key: string;
  workflow_id: string;
  owner_key_id: string | null;
  private: boolean;
  created_at: Date;
  updated_at: Date;
  created_text: string;
}

export interface RenditionRow {
  video_id: string;
  name: string;
  state: RenditionState;
  width: number | null;
  height: number | null;
  bandwidth: number | null;
  attempts: number;
  error: string | null;
}

export const VIDEO_COLUMNS = `video_id, upload_id, state, failure_code, failure_message, duration_sec, source, source_key,
  workflow_id, owner_key_id, private, created_at, updated_at, created_at::text AS created_text`;

export async function getVideoRow(db: Db, videoId: string): Promise<VideoRow | null> {
  const { rows } = await db.query<VideoRow>(`SELECT ${VIDEO_COLUMNS} FROM videos WHERE video_id = $1`, [videoId]);
  return rows[0] ?? null;
}

/** Renditions of several videos at once (list pages), smallest first. */
export async function renditionsFor(db: Db, videoIds: string[]): Promise<Map<string, RenditionRow[]>> {
  const out = new Map<string, RenditionRow[]>(videoIds.map((id) => [id, []]));
  if (videoIds.length === 0) return out;
  const { rows } = await db.query<RenditionRow>(
    `SELECT video_id, name, state, width, height, bandwidth, attempts, error FROM renditions
      WHERE video_id = ANY($1) ORDER BY video_id, height NULLS LAST, name`,
    [videoIds],
  );
  for (const r of rows) out.get(r.video_id)?.push(r);
  return out;
}

export interface VideoViewOptions {
  /** Clock for token expiry (seconds since the epoch); default now. */
  nowSec?: number;
  /** Lifetime of a private video's playback token; default 6 h. */
  tokenTtlSec?: number;
}

export type VideoView = ReturnType<typeof videoView>;

export function videoView(cfg: Pick<VoraConfig, 'playbackUrl' | 'playbackSecret'>, v: VideoRow, renditions: RenditionRow[], opts: VideoViewOptions = {}) {
  const playable = isPlayable(v.state);
  const base = `${cfg.playbackUrl.replace(/\/+$/, '')}/hls/${v.video_id}`;
  let playbackUrl = playable ? `${base}/master.m3u8` : null;
  // The worker writes the poster beside the playlists (keys.hls(id, 'poster.jpg')).
  let thumbnailUrl = playable ? `${base}/poster.jpg` : null;
  if (v.private && playable) {
    const now = opts.nowSec ?? Math.floor(Date.now() / 1000);
    const token = signPlaybackToken(cfg.playbackSecret, v.video_id, now + (opts.tokenTtlSec ?? PLAYBACK_TOKEN_TTL_SEC));
    playbackUrl = withPlaybackToken(playbackUrl!, token);
    thumbnailUrl = withPlaybackToken(thumbnailUrl!, token);
  }
  return {
    videoId: v.video_id,
    uploadId: v.upload_id,
    state: v.state,
    failure: v.failure_code ? { code: v.failure_code, message: v.failure_message ?? '' } : null,
    durationSec: v.duration_sec,
    source: (v.source ?? null) as Record<string, unknown> | null,
    renditions: renditions.map((r) => ({
      name: r.name,
      state: r.state,
      width: r.width,
      height: r.height,
      bandwidth: r.bandwidth,
      attempts: r.attempts,
      error: r.error,
    })),
    playbackUrl,
    thumbnailUrl,
    private: v.private,
    createdAt: v.created_at.toISOString(),
    updatedAt: v.updated_at.toISOString(),
  };
}

export interface LoadedVideo {
  view: VideoView;
  row: VideoRow;
}

/** The row and the view (callers that decide access by owner/private, like the API). */
export async function loadVideo(db: Db, cfg: Pick<VoraConfig, 'playbackUrl' | 'playbackSecret'>, videoId: string, opts: VideoViewOptions = {}): Promise<LoadedVideo | null> {
  const row = await getVideoRow(db, videoId);
  if (!row) return null;
  const rends = await renditionsFor(db, [videoId]);
  return { row, view: videoView(cfg, row, rends.get(videoId) ?? [], opts) };
}

/**
 * The `GET /v1/videos/{videoId}` body for one video, or null when there is none. A private
 * video's URLs carry a fresh playback token: callers decide who may see it (the API: its owner).
 */
export async function loadVideoView(db: Db, cfg: Pick<VoraConfig, 'playbackUrl' | 'playbackSecret'>, videoId: string, opts: VideoViewOptions = {}): Promise<VideoView | null> {
  return (await loadVideo(db, cfg, videoId, opts))?.view ?? null;
}
