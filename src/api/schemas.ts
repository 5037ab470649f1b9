// The zod schemas of the REST API's bodies, and the shape of a route definition. Request schemas
// (params, query) validate requests in routes.ts; response schemas document the bodies (and tests
// check real answers against them). openapi.ts turns both into GET /v1/openapi.json.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { VIDEO_STATES } from '../common/video-state.ts';
import type { ApiKey } from './auth.ts';
import { ERROR_STATUS, type ErrorCode } from './errors.ts';
import { UPLOAD_STATES } from './states.ts';

export const errorSchema = z.object({
  error: z.object({
    code: z.enum(Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]]),
    message: z.string(),
  }),
});

export const healthSchema = z.object({ status: z.literal('ok') });

const failureSchema = z.object({ code: z.string(), message: z.string() }).nullable();
const isoDate = z.string().describe('ISO 8601 timestamp');

export const uploadViewSchema = z.object({
  uploadId: z.string(),
  status: z.enum(UPLOAD_STATES),
  bytesUploaded: z.number().int().min(0),
  size: z.number().int().min(0).nullable(),
  videoId: z.string().nullable().describe('the upload\'s video; with dedup, the existing video it resolved to'),
  error: failureSchema,
  filename: z.string().nullable(),
  filetype: z.string().nullable(),
  private: z.boolean(),
  deduplicated: z.boolean(),
  createdAt: isoDate,
  updatedAt: isoDate,
  expiresAt: isoDate.nullable(),
});

export const renditionViewSchema = z.object({
  name: z.string(),
  state: z.enum(['PENDING', 'PROCESSING', 'DONE', 'RETRYING', 'FAILED']),
  width: z.number().int().nullable(),
  height: z.number().int().nullable(),
  bandwidth: z.number().int().nullable(),
  attempts: z.number().int(),
  error: z.string().nullable(),
});

export const videoViewSchema = z.object({
  videoId: z.string(),
  uploadId: z.string(),
  state: z.enum(VIDEO_STATES),
  failure: failureSchema,
  durationSec: z.number().nullable(),
  source: z.record(z.string(), z.unknown()).nullable().describe('probe of the source'),
  renditions: z.array(renditionViewSchema),
  playbackUrl: z.string().nullable().describe('HLS master playlist once playable; private videos: with ?token='),
  thumbnailUrl: z.string().nullable(),
  private: z.boolean(),
  createdAt: isoDate,
  updatedAt: isoDate,
});

export const videoListSchema = z.object({ videos: z.array(videoViewSchema), nextCursor: z.string().nullable() });

export const analyticsSchema = z.object({
  views: z.number(),
  averageWatchTimeSec: z.number(),
  dropOff: z.array(z.object({ segment: z.number(), viewers: z.number() })),
  bitrateDistribution: z.array(z.object({ bandwidth: z.number(), share: z.number() })),
});

/** Who may call a route: anyone, anyone with optional key (private videos), or a key holder. */
export type RouteAuth = 'none' | 'optional' | 'required';

export interface RouteDef<P extends z.ZodObject = z.ZodObject, Q extends z.ZodObject = z.ZodObject> {
  method: 'GET' | 'DELETE';
  /** fastify path (`:name` params) */
  path: string;
  summary: string;
  tags: string[];
  auth: RouteAuth;
  params?: P;
  query?: Q;
  responses: Record<number, { description: string; schema?: z.ZodType }>;
  handler(
    input: { params: z.output<P>; query: z.output<Q>; key: ApiKey | null; req: FastifyRequest },
    reply: FastifyReply,
  ): Promise<unknown>;
}

export function defineRoute<P extends z.ZodObject = z.ZodObject, Q extends z.ZodObject = z.ZodObject>(def: RouteDef<P, Q>): RouteDef {
  return def as unknown as RouteDef;
}
