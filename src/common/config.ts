// One place that turns environment variables into the stack's configuration. Every process
// (supervisor, api, worker, gateway, CLI, tests) calls loadConfig(process.env), so a port or a
// path is changed by one variable everywhere. Defaults are CONTRACT.md's endpoints on 127.0.0.1.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
