// REST endpoints (CONTRACT.md "HTTP API"). Validation with zod; every error is thrown and leaves
// through the one error handler in app.ts.
import type { FastifyInstance } from 'fastify';
import { WorkflowNotFoundError } from '@temporalio/client';
import { z } from 'zod';
import { workflowIdFor } from '../common/ids.ts';
import { keys } from '../common/keys.ts';
import type { ApiContext } from './context.ts';
import { ApiError } from './errors.ts';
import { deleteKeys, deletePrefix } from './objects.ts';
import * as repo from './repo.ts';
import { isPlayable, VIDEO_STATES, type VideoState } from './states.ts';
import { tusIdOf, UPLOAD_ID_RE } from './tus.ts';

export const videoIdSchema = z.string().regex(/^vid_[a-z2-7]{20}$/);
export const uploadIdSchema = z.string().regex(UPLOAD_ID_RE);

function parseId(schema: z.ZodString, raw: unknown, what: string): string {
  const r = schema.safeParse(raw);
  if (!r.success) throw new ApiError('INVALID_ID', `"${String(raw)}" is not a valid ${what} id`);
  return r.data;
}

export const listQuerySchema = z.object({
  state: z.enum(VIDEO_STATES).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(200).optional(),
});

/** Opaque cursor: base64url of the last row's (created_at, video_id). */
export function encodeCursor(createdAt: string, videoId: string): string {
  return Buffer.from(JSON.stringify([createdAt, videoId])).toString('base64url');
}

export function decodeCursor(cursor: string): { createdAt: string; videoId: string } {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && typeof v[0] === 'string' && !Number.isNaN(Date.parse(v[0])) && videoIdSchema.safeParse(v[1]).success) {
      return { createdAt: v[0], videoId: v[1] as string };
    }
  } catch {
    // fall through
  }
  throw new ApiError('VALIDATION_FAILED', 'cursor: not a cursor this API returned');
}

export function uploadView(row: repo.UploadRow, expiryMs = 0) {
  const unfinished = row.status === 'CREATED' || row.status === 'UPLOADING';
  return {
    uploadId: row.upload_id,
    status: row.status,
    bytesUploaded: Number(row.bytes_uploaded),
    size: row.size === null ? null : Number(row.size),
    videoId: row.video_id,
    error: row.error_code ? { code: row.error_code, message: row.error_message ?? '' } : null,
    filename: row.filename,
    filetype: row.filetype,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    /** When an unfinished upload will be expired by the sweeper (tus Upload-Expires); null once done. */
    expiresAt: unfinished && expiryMs > 0 ? new Date(row.created_at.getTime() + expiryMs).toISOString() : null,
  };
}

export function videoView(cfg: ApiContext['cfg'], v: repo.VideoRow, renditions: repo.RenditionRow[]) {
  const playable = isPlayable(v.state);
  const base = `${cfg.playbackUrl.replace(/\/+$/, '')}/hls/${v.video_id}`;
  return {
    videoId: v.video_id,
    uploadId: v.upload_id,
    state: v.state,
    failure: v.failure_code ? { code: v.failure_code, message: v.failure_message ?? '' } : null,
    durationSec: v.duration_sec,
    source: v.source ?? null,
    renditions: renditions.map((r) => ({
      name: r.name,
      state: r.state,
      width: r.width,
      height: r.height,
      bandwidth: r.bandwidth,
      attempts: r.attempts,
      error: r.error,
    })),
    playbackUrl: playable ? `${base}/master.m3u8` : null,
    // The worker writes the poster beside the playlists (keys.hls(id, 'poster.jpg')).
    thumbnailUrl: playable ? `${base}/poster.jpg` : null,
    createdAt: v.created_at.toISOString(),
    updatedAt: v.updated_at.toISOString(),
  };
}

type AnalyticsFn = (cfg: ApiContext['cfg'], videoId: string) => Promise<unknown>;

/** src/analytics/queries.ts belongs to another engineer; until it exports videoAnalytics, 501. */
async function loadAnalytics(): Promise<AnalyticsFn | null> {
  try {
    const mod = (await import(new URL('../analytics/queries.ts', import.meta.url).href)) as { videoAnalytics?: unknown };
    return typeof mod.videoAnalytics === 'function' ? (mod.videoAnalytics as AnalyticsFn) : null;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return null;
    throw err;
  }
}

export function registerRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { cfg, pool, s3, log } = ctx;

  async function videoOr404(videoId: string) {
    const v = await repo.getVideo(pool, videoId);
    if (!v) throw new ApiError('VIDEO_NOT_FOUND', `video ${videoId} not found`);
    return v;
  }

  app.get('/healthz', async (_req, reply) => {
    try {
      await pool.query('SELECT 1');
    } catch (err) {
      throw new ApiError('SERVICE_UNAVAILABLE', `postgres: ${(err as Error).message}`);
    }
    return reply.send({ status: 'ok' });
  });

  app.get<{ Params: { uploadId: string } }>('/v1/uploads/:uploadId', async (req) => {
    const uploadId = parseId(uploadIdSchema, req.params.uploadId, 'upload');
    const row = await repo.getUpload(pool, uploadId);
    if (!row) throw new ApiError('UPLOAD_NOT_FOUND', `upload ${uploadId} not found`);
    return uploadView(row, ctx.opts.uploadExpiryMs);
  });

  app.get('/v1/videos', async (req) => {
    const q = listQuerySchema.parse(req.query);
    const rows = await repo.listVideos(pool, {
      state: q.state as VideoState | undefined,
      limit: q.limit + 1,
      after: q.cursor ? decodeCursor(q.cursor) : undefined,
    });
    const page = rows.slice(0, q.limit);
    const rends = await repo.renditionsFor(pool, page.map((v) => v.video_id));
    const last = page[page.length - 1];
    return {
      videos: page.map((v) => videoView(cfg, v, rends.get(v.video_id) ?? [])),
      nextCursor: rows.length > q.limit && last ? encodeCursor(last.created_text, last.video_id) : null,
    };
  });

  app.get<{ Params: { videoId: string } }>('/v1/videos/:videoId', async (req) => {
    const videoId = parseId(videoIdSchema, req.params.videoId, 'video');
    const v = await videoOr404(videoId);
    const rends = await repo.renditionsFor(pool, [videoId]);
    return videoView(cfg, v, rends.get(videoId) ?? []);
  });

  app.delete<{ Params: { videoId: string } }>('/v1/videos/:videoId', async (req, reply) => {
    const videoId = parseId(videoIdSchema, req.params.videoId, 'video');
    const v = await videoOr404(videoId);
    // 1. stop processing (a workflow that is gone or already closed is fine)
    try {
      await ctx.temporal.workflow.getHandle(workflowIdFor(videoId)).cancel();
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) {
        const msg = (err as Error).message ?? '';
        if (!/not found|already completed|already been|closed/i.test(msg)) throw err;
      }
    }
    // 2. objects: HLS output, source, and what tus left of the upload
    const removed =
      (await deletePrefix(s3, cfg.s3.bucket, keys.hlsPrefix(videoId))) +
      (await deletePrefix(s3, cfg.s3.bucket, `sources/${videoId}/`));
    const tusId = tusIdOf(v.upload_id);
    await deleteKeys(s3, cfg.s3.bucket, [tusId, `${tusId}.info`, `${tusId}.part`]);
    // 3. purge the playback cache; Varnish may be down or not configured for BAN: tolerate it
    await banFromCache(cfg.playbackUrl, videoId).catch((err) => log.warn({ err, videoId }, 'cache purge (BAN) failed'));
    // 4. rows
    await repo.deleteVideoRows(pool, videoId);
    log.info({ videoId, removed }, 'video deleted');
    return reply.status(204).send();
  });

  app.get<{ Params: { videoId: string } }>('/v1/videos/:videoId/analytics', async (req) => {
    const videoId = parseId(videoIdSchema, req.params.videoId, 'video');
    await videoOr404(videoId);
    const fn = await loadAnalytics();
    if (!fn) throw new ApiError('NOT_IMPLEMENTED', 'analytics are not available yet (src/analytics/queries.ts videoAnalytics)');
    try {
      return await fn(cfg, videoId);
    } catch (err) {
      // ClickHouse down or unreachable: say so, instead of a bare 500.
      log.warn({ err, videoId }, 'analytics query failed');
      throw new ApiError('ANALYTICS_UNAVAILABLE', `analytics store unavailable: ${(err as Error).message}`);
    }
  });
}

/** `BAN /hls/{id}/` on the playback entry (Varnish); the VCL bans by URL prefix. */
export async function banFromCache(playbackUrl: string, videoId: string): Promise<number> {
  const res = await fetch(`${playbackUrl.replace(/\/+$/, '')}/hls/${videoId}/`, {
    method: 'BAN',
    signal: AbortSignal.timeout(2000),
  });
  await res.arrayBuffer().catch(() => {});
  if (res.status >= 400) throw new Error(`BAN answered ${res.status}`);
  return res.status;
}
