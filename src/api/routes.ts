// REST endpoints (docs/contract.md "HTTP API"), as a table of RouteDefs: each route's zod schemas
// validate its requests and are what GET /v1/openapi.json documents (openapi.ts). Every error is
// thrown and leaves through the one error handler in app.ts.
import type { FastifyInstance } from 'fastify';
import { WorkflowNotFoundError } from '@temporalio/client';
import { z } from 'zod';
import { videoAnalytics } from '../analytics/queries.ts';
import { workflowIdFor } from '../common/ids.ts';
import { keys } from '../common/keys.ts';
import { VIDEO_STATES, type VideoState } from '../common/video-state.ts';
import { banVideo } from '../common/playback-cache.ts';
import { loadVideo, videoView, type VideoRow } from '../common/video-view.ts';
import { optionalApiKey, requireApiKey, type ApiKey } from './auth.ts';
import type { ApiContext } from './context.ts';
import { ApiError } from './errors.ts';
import { deleteKeys, deletePrefix } from './objects.ts';
import { buildOpenApi } from './openapi.ts';
import * as repo from './repo.ts';
import { analyticsSchema, defineRoute, healthSchema, uploadViewSchema, videoListSchema, videoViewSchema, type RouteDef } from './schemas.ts';
import { tusIdOf, UPLOAD_ID_RE } from './tus.ts';

export const videoIdSchema = z.string().regex(/^vid_[a-z2-7]{20}$/);
export const uploadIdSchema = z.string().regex(UPLOAD_ID_RE);

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
    private: row.private ?? false,
    /** The upload asked for dedup and resolved to an existing video (videoId is that video). */
    deduplicated: Boolean(row.dedup && row.dedup_video_id && row.video_id === row.dedup_video_id),
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    /** When an unfinished upload will be expired by the sweeper (tus Upload-Expires); null once done. */
    expiresAt: unfinished && expiryMs > 0 ? new Date(row.created_at.getTime() + expiryMs).toISOString() : null,
  };
}

export { videoView };

/** Who may see a video: public ones anyone; private ones their owner's key only. */
function assertCanSee(row: VideoRow, key: ApiKey | null): void {
  if (!row.private) return;
  if (!key) throw new ApiError('UNAUTHORIZED', `video ${row.video_id} is private: send its owner's "Authorization: Bearer <api key>"`);
  if (row.owner_key_id !== key.id) throw new ApiError('FORBIDDEN', `video ${row.video_id} is private to another API key`);
}

/** The REST routes: each one's zod schemas validate its requests and document it (openapi.ts). */
export function restRoutes(ctx: ApiContext): RouteDef[] {
  const { cfg, pool, s3, log } = ctx;
  const viewOpts = () => ({ tokenTtlSec: ctx.opts.playbackTokenTtlSec });

  async function videoOr404(videoId: string) {
    const v = await repo.getVideo(pool, videoId);
    if (!v) throw new ApiError('VIDEO_NOT_FOUND', `video ${videoId} not found`);
    return v;
  }

  let doc: unknown = null;
  const routes: RouteDef[] = [
    defineRoute({
      method: 'GET',
      path: '/healthz',
      summary: 'Liveness: PostgreSQL reachable',
      tags: ['ops'],
      auth: 'none',
      responses: { 200: { description: 'ok', schema: healthSchema }, 503: { description: 'PostgreSQL unreachable' } },
      async handler() {
        try {
          await pool.query('SELECT 1');
        } catch (err) {
          throw new ApiError('SERVICE_UNAVAILABLE', `postgres: ${(err as Error).message}`);
        }
        return { status: 'ok' as const };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/openapi.json',
      summary: 'This document (OpenAPI 3.1)',
      tags: ['ops'],
      auth: 'none',
      responses: { 200: { description: 'the OpenAPI document', schema: z.record(z.string(), z.unknown()) } },
      async handler() {
        doc ??= buildOpenApi(routes, { maxUploadBytes: ctx.opts.maxUploadBytes, registered: ctx.routes });
        return doc;
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/uploads/:uploadId',
      summary: 'Upload status',
      tags: ['uploads'],
      auth: 'none',
      params: z.object({ uploadId: uploadIdSchema }),
      responses: { 200: { description: 'the upload', schema: uploadViewSchema }, 404: { description: 'UPLOAD_NOT_FOUND' } },
      async handler({ params }) {
        const row = await repo.getUpload(pool, params.uploadId);
        if (!row) throw new ApiError('UPLOAD_NOT_FOUND', `upload ${params.uploadId} not found`);
        return uploadView(row, ctx.opts.uploadExpiryMs);
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/videos',
      summary: 'Videos, newest first (private ones only to their owner)',
      tags: ['videos'],
      auth: 'optional',
      query: listQuerySchema,
      responses: { 200: { description: 'a page of videos', schema: videoListSchema } },
      async handler({ query, key }) {
        const rows = await repo.listVideos(pool, {
          state: query.state as VideoState | undefined,
          limit: query.limit + 1,
          after: query.cursor ? decodeCursor(query.cursor) : undefined,
          viewerKeyId: key?.id ?? null,
        });
        const page = rows.slice(0, query.limit);
        const rends = await repo.renditionsFor(pool, page.map((v) => v.video_id));
        const last = page[page.length - 1];
        return {
          videos: page.map((v) => videoView(cfg, v, rends.get(v.video_id) ?? [], viewOpts())),
          nextCursor: rows.length > query.limit && last ? encodeCursor(last.created_text, last.video_id) : null,
        };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/videos/:videoId',
      summary: "A video; a private one needs its owner's key and its URLs carry a playback token",
      tags: ['videos'],
      auth: 'optional',
      params: z.object({ videoId: videoIdSchema }),
      responses: {
        200: { description: 'the video', schema: videoViewSchema },
        401: { description: 'private video, no key' },
        403: { description: 'private video of another key' },
        404: { description: 'VIDEO_NOT_FOUND' },
      },
      async handler({ params, key }) {
        const loaded = await loadVideo(pool, cfg, params.videoId, viewOpts());
        if (!loaded) throw new ApiError('VIDEO_NOT_FOUND', `video ${params.videoId} not found`);
        assertCanSee(loaded.row, key);
        return loaded.view;
      },
    }),
    defineRoute({
      method: 'DELETE',
      path: '/v1/videos/:videoId',
      summary: 'Cancel processing, delete objects and rows, purge the cache',
      tags: ['videos'],
      auth: 'required',
      params: z.object({ videoId: videoIdSchema }),
      responses: { 204: { description: 'deleted' }, 403: { description: 'the video belongs to another key' }, 404: { description: 'VIDEO_NOT_FOUND' } },
      async handler({ params, key }, reply) {
        const videoId = params.videoId;
        const v = await videoOr404(videoId);
        if (v.owner_key_id && v.owner_key_id !== key!.id) {
          throw new ApiError('FORBIDDEN', `video ${videoId} belongs to another API key`);
        }
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
        await banVideo(cfg.playbackUrl, videoId).catch((err) => log.warn({ err, videoId }, 'cache purge (BAN) failed'));
        // 4. rows
        await repo.deleteVideoRows(pool, videoId);
        log.info({ videoId, removed }, 'video deleted');
        return reply.status(204).send();
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/videos/:videoId/analytics',
      summary: 'Playback analytics of a video',
      tags: ['videos'],
      auth: 'optional',
      params: z.object({ videoId: videoIdSchema }),
      responses: {
        200: { description: 'analytics', schema: analyticsSchema },
        404: { description: 'VIDEO_NOT_FOUND' },
        503: { description: 'ClickHouse unavailable' },
      },
      async handler({ params, key }) {
        const videoId = params.videoId;
        assertCanSee(await videoOr404(videoId), key);
        try {
          return await videoAnalytics(cfg, videoId);
        } catch (err) {
          // ClickHouse down or unreachable: say so, instead of a bare 500.
          log.warn({ err, videoId }, 'analytics query failed');
          throw new ApiError('ANALYTICS_UNAVAILABLE', `analytics store unavailable: ${(err as Error).message}`);
        }
      },
    }),
  ];
  return routes;
}

/** Registers every REST route: auth, then params (400 INVALID_ID) and query (400 VALIDATION_FAILED). */
export function registerRoutes(app: FastifyInstance, ctx: ApiContext, defs: RouteDef[] = restRoutes(ctx)): RouteDef[] {
  for (const def of defs) {
    app.route({
      method: def.method,
      url: def.path,
      handler: async (req, reply) => {
        const key =
          def.auth === 'required' ? await requireApiKey(ctx.pool, req.headers) : def.auth === 'optional' ? await optionalApiKey(ctx.pool, req.headers) : null;
        const params = def.params ? parseParams(def.params, req.params) : {};
        const query = def.query ? def.query.parse(req.query ?? {}) : {};
        return def.handler({ params, query, key, req } as never, reply);
      },
    });
  }
  return defs;
}

function parseParams(schema: z.ZodObject, raw: unknown): Record<string, unknown> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const name = String(issue.path[0] ?? 'id');
  const value = (raw as Record<string, unknown>)?.[name];
  throw new ApiError('INVALID_ID', `"${String(value)}" is not a valid ${name.replace(/Id$/, '')} id`);
}
