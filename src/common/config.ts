// The one place that reads VORA_* environment variables. Every process (supervisor, api, worker,
// gateway, CLI, tests) calls loadConfig(process.env), so a port or a path is changed by one variable
// everywhere; defaults are the endpoints of docs/contract.md on 127.0.0.1. Settings only one service
// uses are read here too, by loadApiOptions() and loadWorkerConfig(); tests pass env objects.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { DEFAULT_LADDER, RungSchema, type Rung } from './ladder.ts';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, dflt: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0 || n > 65535) {
    throw new Error(`${name} must be a port number, got "${raw}"`);
  }
  return n;
}

/** Each service's listening port and the variable that overrides it (named in "port taken" errors). */
export const PORT_VARS = {
  api: ['VORA_API_PORT', 8080],
  playback: ['VORA_PLAYBACK_PORT', 6081],
  varnishAdmin: ['VORA_VARNISH_ADMIN_PORT', 6082],
  gateway: ['VORA_GATEWAY_PORT', 8081],
  temporal: ['VORA_TEMPORAL_PORT', 7233],
  temporalUi: ['VORA_TEMPORAL_UI_PORT', 8233],
  minio: ['VORA_MINIO_PORT', 9000],
  minioConsole: ['VORA_MINIO_CONSOLE_PORT', 9001],
  clickhouseHttp: ['VORA_CLICKHOUSE_HTTP_PORT', 8123],
  // ClickHouse's native TCP port defaults to 9000, which MinIO owns here.
  clickhouseTcp: ['VORA_CLICKHOUSE_TCP_PORT', 9100],
  postgres: ['VORA_PG_PORT', 5433],
} as const satisfies Record<string, readonly [string, number]>;

export type PortName = keyof typeof PORT_VARS;

export interface VoraConfig {
  host: string;
  dataDir: string;
  ports: Record<PortName, number>;
  postgres: { url: string; user: string; database: string };
  s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string; bucket: string };
  temporal: { address: string; namespace: string; taskQueue: string; uiUrl: string };
  clickhouse: { url: string; database: string };
  apiUrl: string;
  playbackUrl: string;
  gatewayUrl: string;
  /** Scratch space for the worker's local encode output before it is put to MinIO. */
  workDir: string;
  logLevel: string;
  /**
   * HMAC secret of private videos' playback tokens (src/common/playback-token.ts), shared by the API
   * (signs) and the gateway (verifies). VORA_PLAYBACK_SECRET; the dev stack generates one.
   */
  playbackSecret: string;
  /**
   * The gateway's in-memory LRU of hot objects (src/gateway/object-cache.ts): total and per-object
   * bounds. VORA_GATEWAY_CACHE_MIB (default 64; 0 turns it off), VORA_GATEWAY_CACHE_OBJECT_MIB (4).
   * Optional so hand-built configs (tests) get the defaults.
   */
  gatewayCache?: { maxBytes: number; maxObjectBytes: number };
}

/** A non-negative size in MiB from the environment, as bytes. */
function mib(env: Env, name: string, dflt: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt * 1024 * 1024;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a size in MiB (>= 0), got "${raw}"`);
  return Math.round(n * 1024 * 1024);
}

export function loadConfig(env: Env = process.env): VoraConfig {
  const host = env.VORA_HOST ?? '127.0.0.1';
  const dataDir = path.resolve(env.VORA_DATA_DIR ?? path.join(REPO_ROOT, '.vora'));
  const ports = Object.fromEntries(
    Object.entries(PORT_VARS).map(([k, [name, dflt]]) => [k, int(env, name, dflt)]),
  ) as Record<PortName, number>;
  const pgUser = env.VORA_PG_USER ?? 'vora';
  const pgDb = env.VORA_PG_DATABASE ?? 'vora';
  return {
    host,
    dataDir,
    ports,
    postgres: {
      url: env.VORA_PG_URL ?? `postgres://${pgUser}@${host}:${ports.postgres}/${pgDb}`,
      user: pgUser,
      database: pgDb,
    },
    s3: {
      endpoint: env.VORA_S3_ENDPOINT ?? `http://${host}:${ports.minio}`,
      region: env.VORA_S3_REGION ?? 'us-east-1',
      // The dev stack generates these on first start (see src/stack/secrets.ts) and passes them down.
      accessKeyId: env.VORA_S3_ACCESS_KEY ?? '',
      secretAccessKey: env.VORA_S3_SECRET_KEY ?? '',
      bucket: env.VORA_S3_BUCKET ?? 'vora',
    },
    temporal: {
      address: env.VORA_TEMPORAL_ADDRESS ?? `${host}:${ports.temporal}`,
      namespace: env.VORA_TEMPORAL_NAMESPACE ?? 'default',
      taskQueue: env.VORA_TASK_QUEUE ?? 'vora-video',
      uiUrl: env.VORA_TEMPORAL_UI_URL ?? `http://${host}:${ports.temporalUi}`,
    },
    clickhouse: {
      url: env.VORA_CLICKHOUSE_URL ?? `http://${host}:${ports.clickhouseHttp}`,
      database: env.VORA_CLICKHOUSE_DATABASE ?? 'vora',
    },
    apiUrl: env.VORA_API_URL ?? `http://${host}:${ports.api}`,
    playbackUrl: env.VORA_PLAYBACK_URL ?? `http://${host}:${ports.playback}`,
    gatewayUrl: env.VORA_GATEWAY_URL ?? `http://${host}:${ports.gateway}`,
    workDir: path.resolve(env.VORA_WORK_DIR ?? path.join(dataDir, 'work')),
    logLevel: env.VORA_LOG_LEVEL ?? 'info',
    playbackSecret: env.VORA_PLAYBACK_SECRET ?? '',
    gatewayCache: { maxBytes: mib(env, 'VORA_GATEWAY_CACHE_MIB', 64), maxObjectBytes: mib(env, 'VORA_GATEWAY_CACHE_OBJECT_MIB', 4) },
  };
}

/** A number >= min from the environment, or dflt when unset or empty. */
function num(env: Env, name: string, dflt: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number >= ${min}, got "${raw}"`);
  return n;
}

/** A whole number >= 0, or undefined when unset or empty. */
function whole(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number >= 0, got ${JSON.stringify(raw)}`);
  return n;
}

/** A positive number, or undefined when unset or empty. */
function positive(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a number > 0, got "${raw}"`);
  return n;
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** API-only settings (the shared ones are VoraConfig); src/api/context.ts. */
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

export function loadApiOptions(env: Env = process.env): ApiOptions {
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

/** Worker-only settings; what is unset falls to the worker's defaults. */
export interface WorkerConfig {
  /** The encoding ladder: VORA_LADDER (a JSON list of rungs), default DEFAULT_LADDER. */
  ladder: Rung[];
  /** Processing knobs (src/worker/activities DEFAULT_SETTINGS has the defaults). */
  processing: {
    segmentDurationSec?: number; // VORA_SEGMENT_SEC (4)
    chunkTargetSec?: number; // VORA_CHUNK_SEC (8)
    maxChunks?: number; // VORA_MAX_CHUNKS (120)
    concurrency?: number; // VORA_CHUNK_CONCURRENCY (4)
    preset?: string; // VORA_X264_PRESET (veryfast)
  };
  /** How the worker shares its cores among chunk encodes (src/worker/encode-lanes.ts). */
  encode: {
    /** VORA_WORKER_ENCODE_SLOTS: chunk encodes at once (unset or 0: one per core). */
    slots?: number;
    /** VORA_ENCODE_THREADS: native threads per encode (unset: 1, and 2 for a video's last chunks). */
    threads?: number;
    /** VORA_ENCODE_PIN=1: pin single-threaded encodes to a CPU each. */
    pin: boolean;
  };
  /** VORA_WORKER_METRICS_PORT: Prometheus /metrics (default 9464; 0 = any free port). */
  metricsPort: number;
  /**
   * VORA_FAULTS, the fault-injection spec (src/worker/faults.ts); only with
   * VORA_FAULT_INJECTION=enabled and never when NODE_ENV=production.
   */
  faults?: string;
}

export function loadWorkerConfig(env: Env = process.env): WorkerConfig {
  const pin = env.VORA_ENCODE_PIN;
  if (pin !== undefined && pin !== '' && pin !== '0' && pin !== '1') throw new Error(`VORA_ENCODE_PIN must be 0 or 1, got ${JSON.stringify(pin)}`);
  if (env.VORA_FAULTS && (env.VORA_FAULT_INJECTION !== 'enabled' || env.NODE_ENV === 'production')) {
    throw new Error('VORA_FAULTS is set but fault injection is not enabled (VORA_FAULT_INJECTION=enabled, not in production)');
  }
  const processing: WorkerConfig['processing'] = {
    segmentDurationSec: positive(env, 'VORA_SEGMENT_SEC'),
    chunkTargetSec: positive(env, 'VORA_CHUNK_SEC'),
    maxChunks: positive(env, 'VORA_MAX_CHUNKS'),
    concurrency: positive(env, 'VORA_CHUNK_CONCURRENCY'),
    preset: env.VORA_X264_PRESET || undefined,
  };
  const metricsPort = whole(env, 'VORA_WORKER_METRICS_PORT') ?? 9464;
  if (metricsPort > 65535) throw new Error(`VORA_WORKER_METRICS_PORT must be a port number, got "${metricsPort}"`);
  return {
    ladder: parseLadder(env.VORA_LADDER),
    // Unset knobs are left out, so that spreading them over the defaults keeps the defaults.
    processing: Object.fromEntries(Object.entries(processing).filter(([, v]) => v !== undefined)),
    encode: { slots: whole(env, 'VORA_WORKER_ENCODE_SLOTS'), threads: whole(env, 'VORA_ENCODE_THREADS'), pin: pin === '1' },
    metricsPort,
    faults: env.VORA_FAULTS || undefined,
  };
}

function parseLadder(json: string | undefined): Rung[] {
  if (!json) return DEFAULT_LADDER;
  try {
    return z.array(RungSchema).min(1).parse(JSON.parse(json));
  } catch (err) {
    throw new Error(`VORA_LADDER must be a JSON list of rungs ({name, height, videoBitrate}): ${(err as Error).message}`);
  }
}
