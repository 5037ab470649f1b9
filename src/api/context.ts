// What the API's parts share: dependencies from createApi(deps) plus the options read from env.
import type { S3Client } from '@aws-sdk/client-s3';
import type { Client as TemporalClient } from '@temporalio/client';
import type pg from 'pg';
import type { VoraConfig } from '../common/config.ts';
import type { Logger } from '../common/log.ts';

export interface ApiOptions {
  /** Largest accepted upload (Upload-Length / deferred total); 413 UPLOAD_TOO_LARGE above. */
  maxUploadBytes: number;
  /** Unfinished uploads expire this long after creation (tus expiration extension, Upload-Expires). */
  uploadExpiryMs: number;
  /** How often the expiration sweeper runs (0: never on its own; tests call sweep()). */
  sweepIntervalMs: number;
  /** How often the reconciler runs after the one at startup (0: only at startup). */
  reconcileIntervalMs: number;
  /**
   * The reconciler leaves alone uploads changed more recently than this (their finish hook is about
   * to run; a finish already running holds its advisory lock and is skipped anyway).
   */
  reconcileMinAgeMs: number;
  /**
   * S3 multipart part size used by @tus/s3-store (8 MiB; S3/MinIO's minimum is 5 MiB).
   * README: clients should send PATCH bodies that are a multiple of this (tus-js-client
   * `chunkSize: 8 MiB * n`, or one request for the whole file). Then every PATCH ends on a part
   * boundary, so the store never parks a sub-5 MiB leftover as a `.part` object that the next PATCH
   * has to download and re-upload. Only the last part of a file may be smaller.
   */
  partSizeBytes: number;
  /**
   * Bytes of upload part buffers the process may hold (VORA_UPLOAD_MEMORY_MIB, 48): a PATCH takes
   * up to three part-sized buffers, at least two (one filling from the request, the others on their
   * way to MinIO) when there is room and streams through them; otherwise it goes through temp files on disk as
   * @tus/s3-store does by default. 0 sends every PATCH through disk. See PartMemoryBudget (tus.ts).
   */
  partMemoryBytes: number;
  /** How long a request waits for another request's lock on the same upload before 423. */
  lockTimeoutMs: number;
  /** Cross-process upload lock in PostgreSQL (advisory lock), or in memory (one API process). */
  locker: 'postgres' | 'memory';
  /** Lifetime of the playback token in a private video's URLs (VORA_PLAYBACK_TOKEN_TTL_SECONDS, 6 h). */
  playbackTokenTtlSec: number;
}

export interface ApiContext {
  cfg: VoraConfig;
  pool: pg.Pool;
  /**
   * Connections that hold advisory locks for as long as a request or a finalize runs; a pool of
   * its own so that held locks can never starve the queries made under them.
   */
  lockPool: pg.Pool;
  s3: S3Client;
  temporal: TemporalClient;
  log: Logger;
  opts: ApiOptions;
  /**
   * sha256 of uploads whose every byte this process received in order (tus.ts), with how many
   * bytes it covers; finalize uses it instead of reading the object back. Bounded, per process.
   */
  streamedDigests: Map<string, { offset: number; hash: import('node:crypto').Hash }>;
  /** Every route fastify registered (createApi fills it; OpenAPI lists the ones under /v1/). */
  routes?: { method: string; url: string }[];
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

function num(env: Record<string, string | undefined>, name: string, dflt: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number >= ${min}, got "${raw}"`);
  return n;
}

/** API-only settings (the shared ones come from loadConfig()). */
export function apiOptionsFromEnv(env: Record<string, string | undefined> = process.env): ApiOptions {
  const locker = env.VORA_UPLOAD_LOCKER ?? 'postgres';
  if (locker !== 'postgres' && locker !== 'memory') throw new Error(`VORA_UPLOAD_LOCKER must be postgres or memory, got "${locker}"`);
  return {
    maxUploadBytes: num(env, 'VORA_MAX_UPLOAD_BYTES', 20 * GiB, 1),
    uploadExpiryMs: num(env, 'VORA_UPLOAD_EXPIRY_HOURS', 24) * 3600_000,
    sweepIntervalMs: num(env, 'VORA_UPLOAD_SWEEP_SECONDS', 600) * 1000,
    reconcileIntervalMs: num(env, 'VORA_RECONCILE_SECONDS', 30) * 1000,
    reconcileMinAgeMs: 15_000,
    partSizeBytes: num(env, 'VORA_UPLOAD_PART_MIB', 8, 5) * MiB,
    partMemoryBytes: num(env, 'VORA_UPLOAD_MEMORY_MIB', 48) * MiB, // two PATCHes at once with three 8 MiB parts each
    lockTimeoutMs: 30_000,
    locker,
    playbackTokenTtlSec: num(env, 'VORA_PLAYBACK_TOKEN_TTL_SECONDS', 6 * 3600, 1),
  };
}
