// What each service of the local stack is: how to prepare its data dir, the command that runs it in
// the foreground, how to tell it is ready, and how to stop it. The supervisor (supervisor.ts) only
// orders and watches these; nothing service-specific lives there.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import { Connection } from '@temporalio/client';
import pg from 'pg';
import { REPO_ROOT, type PortName, type VoraConfig } from '../common/config.ts';
import { createS3 } from '../common/s3.ts';
import { migrate } from './migrate.ts';
import { portOpen } from './ports.ts';
import type { StackSecrets } from './secrets.ts';

export interface StackContext {
  cfg: VoraConfig;
  secrets: StackSecrets;
  /** Environment every app process gets: the resolved config as VORA_* variables. */
  appEnv: Record<string, string>;
}

export interface Command {
  file: string;
  args: string[];
  env?: Record<string, string>;
}

export interface ServiceDef {
  name: string;
  ports: PortName[];
  /** Infrastructure first, then the apps that need it. */
  stage: 'infra' | 'app';
  prepare?(ctx: StackContext): Promise<void> | void;
  command(ctx: StackContext): Command;
  ready(ctx: StackContext, pid: number): Promise<boolean>;
  /** One-time setup once ready (schema, bucket): idempotent, runs on every start. */
  init?(ctx: StackContext): Promise<void>;
  stopSignal: NodeJS.Signals;
  readyTimeoutMs: number;
  /** App processes are restarted when they die; servers are not (their death is reported). */
  restart: boolean;
}

const isRoot = () => process.getuid?.() === 0;
const dir = (ctx: StackContext, ...p: string[]) => path.join(ctx.cfg.dataDir, ...p);

async function httpOk(url: string, init?: RequestInit): Promise<boolean> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

/** PostgreSQL refuses to run as root; under root we drop to the Debian `postgres` user. */
function asPostgres(file: string, args: string[]): Command {
  return isRoot()
    ? { file: 'setpriv', args: ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', file, ...args] }
    : { file, args };
}

function pgBinDir(): string {
  if (process.env.VORA_PG_BIN) return process.env.VORA_PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).map(Number).filter(Boolean).sort((a, b) => b - a) : [];
  if (!versions.length) throw new Error('PostgreSQL server binaries not found: run scripts/bootstrap.sh or set VORA_PG_BIN');
  return path.join(root, String(versions[0]), 'bin');
}

/** Temporal CLI and MinIO are built from the pinned tools module and cached by version. */
function toolBinary(name: 'temporal' | 'minio'): string {
  const envName = `VORA_${name.toUpperCase()}_BIN`;
  if (process.env[envName]) return process.env[envName]!;
  return execFileSync('bash', [path.join(REPO_ROOT, 'tools/build.sh'), name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

const postgres: ServiceDef = {
  name: 'postgres',
  ports: ['postgres'],
  stage: 'infra',
  stopSignal: 'SIGINT', // "fast" shutdown: SIGTERM would wait for every client to leave
  readyTimeoutMs: 60_000,
  restart: false,
  prepare(ctx) {
    const data = dir(ctx, 'postgres');
    const sock = dir(ctx, 'run');
    fs.mkdirSync(sock, { recursive: true });
    if (!fs.existsSync(path.join(data, 'PG_VERSION'))) {
      fs.mkdirSync(data, { recursive: true, mode: 0o700 });
      if (isRoot()) execFileSync('chown', ['-R', 'postgres:postgres', data]);
      // Trust on loopback only: a single-user dev cluster; production points VORA_PG_URL elsewhere.
      const c = asPostgres(path.join(pgBinDir(), 'initdb'), [
        '-D', data, '-U', ctx.cfg.postgres.user, '--auth=trust', '--encoding=UTF8', '--locale=C.UTF-8',
      ]);
      execFileSync(c.file, c.args, { stdio: 'ignore' });
    }
    if (isRoot()) execFileSync('chown', ['postgres:postgres', sock]);
  },
  command(ctx) {
    return asPostgres(path.join(pgBinDir(), 'postgres'), [
      '-D', dir(ctx, 'postgres'),
      '-h', ctx.cfg.host,
      '-p', String(ctx.cfg.ports.postgres),
      '-k', dir(ctx, 'run'),
      '-c', 'max_connections=200',
      '-c', 'fsync=on',
    ]);
  },
  async ready(ctx) {
    const client = new pg.Client({
      host: ctx.cfg.host, port: ctx.cfg.ports.postgres, user: ctx.cfg.postgres.user, database: 'postgres',
      connectionTimeoutMillis: 1000,
    });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => {});
    }
  },
  async init(ctx) {
    const admin = new pg.Client({ host: ctx.cfg.host, port: ctx.cfg.ports.postgres, user: ctx.cfg.postgres.user, database: 'postgres' });
    await admin.connect();
    try {
      const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [ctx.cfg.postgres.database]);
      if (!exists.rowCount) await admin.query(`CREATE DATABASE "${ctx.cfg.postgres.database}"`);
    } finally {
      await admin.end();
    }
    const pool = new pg.Pool({ connectionString: ctx.cfg.postgres.url, max: 1 });
    try {
      await migrate(pool);
    } finally {
      await pool.end();
    }
  },
};

const minio: ServiceDef = {
  name: 'minio',
  ports: ['minio', 'minioConsole'],
  stage: 'infra',
  stopSignal: 'SIGTERM',
  readyTimeoutMs: 60_000,
  restart: false,
  prepare(ctx) {
    fs.mkdirSync(dir(ctx, 'minio'), { recursive: true });
  },
  command(ctx) {
    const { host, ports } = ctx.cfg;
    return {
      file: toolBinary('minio'),
      args: ['server', dir(ctx, 'minio'), '--address', `${host}:${ports.minio}`, '--console-address', `${host}:${ports.minioConsole}`, '--quiet'],
      env: {
        MINIO_ROOT_USER: ctx.secrets.minioUser,
        MINIO_ROOT_PASSWORD: ctx.secrets.minioPassword,
        MINIO_BROWSER: 'on',
        MINIO_UPDATE: 'off',
      },
    };
  },
  ready: (ctx) => httpOk(`${ctx.cfg.s3.endpoint}/minio/health/live`),
  async init(ctx) {
    const s3 = createS3(ctx.cfg);
    try {
      await s3.send(new HeadBucketCommand({ Bucket: ctx.cfg.s3.bucket }));
    } catch {
      await s3.send(new CreateBucketCommand({ Bucket: ctx.cfg.s3.bucket }));
    } finally {
      s3.destroy();
    }
  },
};

/** Scheduling niceness of ClickHouse: analytics storage yields the CPU to serving on a shared host. */
export const CLICKHOUSE_NICE = 10;

function clickhouseConfig(ctx: StackContext): string {
  const d = dir(ctx, 'clickhouse');
  // ClickHouse 18.16 config: own paths and ports so it never touches /var/lib/clickhouse.
  return `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>${d}/log/server.log</log><errorlog>${d}/log/error.log</errorlog><size>50M</size><count>2</count></logger>
  <listen_host>${ctx.cfg.host}</listen_host>
  <http_port>${ctx.cfg.ports.clickhouseHttp}</http_port>
  <tcp_port>${ctx.cfg.ports.clickhouseTcp}</tcp_port>
  <max_connections>256</max_connections>
  <keep_alive_timeout>10</keep_alive_timeout>
  <max_concurrent_queries>64</max_concurrent_queries>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mark_cache_size>268435456</mark_cache_size>
  <path>${d}/data/</path>
  <tmp_path>${d}/tmp/</tmp_path>
  <user_files_path>${d}/user_files/</user_files_path>
  <format_schema_path>${d}/format_schemas/</format_schema_path>
  <users_config>${d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
  <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
  <max_session_timeout>3600</max_session_timeout>
  <default_session_timeout>60</default_session_timeout>
</yandex>
`;
}

const CLICKHOUSE_USERS = `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage><load_balancing>random</load_balancing></default></profiles>
  <users><default><password></password><networks><ip>::1</ip><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`;

const clickhouse: ServiceDef = {
  name: 'clickhouse',
  ports: ['clickhouseHttp', 'clickhouseTcp'],
  stage: 'infra',
  stopSignal: 'SIGTERM',
  readyTimeoutMs: 60_000,
  restart: false,
  prepare(ctx) {
    const d = dir(ctx, 'clickhouse');
    for (const sub of ['data', 'tmp', 'log', 'user_files', 'format_schemas']) fs.mkdirSync(path.join(d, sub), { recursive: true });
    fs.writeFileSync(path.join(d, 'config.xml'), clickhouseConfig(ctx));
    fs.writeFileSync(path.join(d, 'users.xml'), CLICKHOUSE_USERS);
  },
  // Through nice(1), which execs it (same pid, signals reach it). On a host it shares with the
  // gateway, ClickHouse's inserts and merges then wait for the gateway instead of delaying its
  // answers: at 110,000 events/s on 2 cores they pushed the p99 of the 202s past 5 ms.
  command(ctx) {
    return {
      file: 'nice',
      args: ['-n', String(CLICKHOUSE_NICE), process.env.VORA_CLICKHOUSE_BIN ?? '/usr/sbin/clickhouse-server', `--config-file=${dir(ctx, 'clickhouse', 'config.xml')}`],
    };
  },
  ready: (ctx) => httpOk(`${ctx.cfg.clickhouse.url}/ping`),
  async init(ctx) {
    const { ensureClickhouseSchema } = await import('../analytics/schema.ts');
    await ensureClickhouseSchema(ctx.cfg);
  },
};

const temporal: ServiceDef = {
  name: 'temporal',
  ports: ['temporal', 'temporalUi'],
  stage: 'infra',
  stopSignal: 'SIGTERM',
  readyTimeoutMs: 120_000,
  restart: false,
  prepare(ctx) {
    fs.mkdirSync(dir(ctx, 'temporal'), { recursive: true });
  },
  command(ctx) {
    const { host, ports, temporal: t } = ctx.cfg;
    return {
      file: toolBinary('temporal'),
      args: [
        'server', 'start-dev',
        '--ip', host, '--port', String(ports.temporal),
        '--ui-ip', host, '--ui-port', String(ports.temporalUi),
        // A SQLite file in the data dir: workflows survive a restart of the dev server.
        '--db-filename', dir(ctx, 'temporal', 'temporal.db'),
        '--namespace', t.namespace,
        '--log-level', 'warn',
        '--log-format', 'json',
      ],
    };
  },
  async ready(ctx) {
    if (!(await portOpen(ctx.cfg.host, ctx.cfg.ports.temporal))) return false;
    let conn: Connection | undefined;
    try {
      conn = await Connection.connect({ address: ctx.cfg.temporal.address, connectTimeout: 1000 });
      await conn.workflowService.describeNamespace({ namespace: ctx.cfg.temporal.namespace });
      return await httpOk(ctx.cfg.temporal.uiUrl);
    } catch {
      return false;
    } finally {
      await conn?.close().catch(() => {});
    }
  },
};

const varnish: ServiceDef = {
  name: 'varnish',
  ports: ['playback', 'varnishAdmin'],
  stage: 'app',
  stopSignal: 'SIGTERM',
  readyTimeoutMs: 30_000,
  restart: false,
  async prepare(ctx) {
    const d = dir(ctx, 'varnish');
    fs.mkdirSync(d, { recursive: true });
    const { renderVcl } = await import('../gateway/vcl.ts');
    fs.writeFileSync(path.join(d, 'default.vcl'), renderVcl({ gatewayHost: ctx.cfg.host, gatewayPort: ctx.cfg.ports.gateway }));
  },
  command(ctx) {
    const { host, ports } = ctx.cfg;
    const d = dir(ctx, 'varnish');
    return {
      file: process.env.VORA_VARNISHD_BIN ?? '/usr/sbin/varnishd',
      args: [
        '-F', // foreground: the supervisor owns the process
        '-n', path.join(d, 'work'),
        '-a', `${host}:${ports.playback}`,
        '-T', `${host}:${ports.varnishAdmin}`,
        '-f', path.join(d, 'default.vcl'),
        '-s', `malloc,${process.env.VORA_VARNISH_CACHE ?? '256m'}`,
      ],
    };
  },
  ready: (ctx) => portOpen(ctx.cfg.host, ctx.cfg.ports.playback),
};

/** Node arguments an app service runs with (benches start the same process the same way). */
export function appNodeArgs(name: 'api' | 'worker' | 'gateway'): string[] {
  // The API streams uploads; its young generation size was chosen by measurement
  // (bench/upload.ts, 1 GiB through 8 MiB part buffers: 8 MB semi-spaces gave the lowest peak RSS and
  // CPU; 2, 4 or 6 MB ones promoted more, 210-245 MB and 3.8-4.8 CPU-s; V8's default 16 MB, 220 MB).
  const heap = name === 'api' ? ['--max-semi-space-size=8'] : [];
  return [...heap, '--import', 'tsx', path.join(REPO_ROOT, 'src', name, 'main.ts')];
}

/** Environment an app service's process gets beside the app's own settings. */
export function appProcessEnv(name: 'api' | 'worker' | 'gateway'): Record<string, string> {
  // glibc keeps what the API frees: an arena per thread, and thresholds that rise with the
  // largest block freed so far, up to 32 MiB held back per arena. The API streams every upload
  // through 64 KiB socket buffers; with two arenas and fixed 128 KiB mmap/trim thresholds freed
  // memory goes back to the kernel. Peak RSS for a 1 GiB upload (bench/upload.ts): 225 MB with
  // glibc's defaults, ~205 MB with two arenas, ~195 MB with both.
  return name === 'api' ? { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_TRIM_THRESHOLD_: '131072' } : {};
}

function appService(name: 'api' | 'worker' | 'gateway', port: PortName | null, readyPath = '/healthz'): ServiceDef {
  return {
    name,
    ports: port ? [port] : [],
    stage: 'app',
    stopSignal: 'SIGTERM',
    readyTimeoutMs: 120_000,
    restart: true,
    command(ctx) {
      return { file: process.execPath, args: appNodeArgs(name), env: { ...ctx.appEnv, ...appProcessEnv(name) } };
    },
    async ready(ctx, pid) {
      if (port) return httpOk(`http://${ctx.cfg.host}:${ctx.cfg.ports[port]}${readyPath}`);
      // The worker has no port: it writes a ready file with its pid once it polls its task queue.
      try {
        return fs.readFileSync(dir(ctx, 'run', `${name}.ready`), 'utf8').trim() === String(pid);
      } catch {
        return false;
      }
    },
  };
}

export const SERVICES: ServiceDef[] = [
  postgres,
  minio,
  clickhouse,
  temporal,
  appService('gateway', 'gateway'),
  varnish,
  appService('api', 'api'),
  appService('worker', null),
];
