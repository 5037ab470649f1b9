// Server starters for the gateway's integration test: each real server (ClickHouse 18.16, MinIO,
// PostgreSQL 15, Varnish 7.1) in its own temp dir on a free 127.0.0.1 port, stopped after. Kept
// apart from the test so the shared stack harness (test/support/) can replace them later.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { createClickhouse } from '../../src/analytics/clickhouse.ts';
import { REPO_ROOT, loadConfig, type VoraConfig } from '../../src/common/config.ts';
import { CLICKHOUSE_NICE } from '../../src/stack/servers.ts';
import { createS3 } from '../../src/common/s3.ts';

export interface Server {
  port: number;
  dir: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0 }, () => {
      const a = srv.address();
      srv.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

export const tempDir = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `vora-gw-${name}-`));

async function waitFor(what: string, probe: () => Promise<boolean>, child: ChildProcess | null, logFile: string, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child && child.exitCode !== null) break;
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  const tail = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-2000) : '';
  throw new Error(`${what} did not start (exit ${child?.exitCode ?? 'n/a'}):\n${tail}`);
}

function launch(cmd: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = process.env, uid?: number, gid?: number): ChildProcess {
  const out = fs.openSync(logFile, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', out, out], env, uid, gid });
  fs.closeSync(out);
  return child;
}

function stopper(child: ChildProcess, dir: string, keep = false): () => Promise<void> {
  return async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    if (!keep && !process.env.VORA_KEEP_TEST_DATA) fs.rmSync(dir, { recursive: true, force: true });
  };
}

const httpOk = async (url: string) => (await fetch(url)).ok;

export interface ClickhouseServer extends Server {
  /** Stops the server but keeps its data dir and ports (SIGTERM, then SIGKILL after 10 s). */
  pause(): Promise<void>;
  /** Starts it again on the same port and data; resolves once /ping answers. */
  resume(): Promise<void>;
}

export async function startClickhouse(): Promise<ClickhouseServer> {
  const dir = tempDir('ch');
  const [http, tcp] = [await freePort(), await freePort()];
  fs.mkdirSync(path.join(dir, 'log'));
  fs.writeFileSync(
    path.join(dir, 'config.xml'),
    `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>${dir}/log/server.log</log><errorlog>${dir}/log/err.log</errorlog><size>10M</size><count>1</count></logger>
  <http_port>${http}</http_port>
  <tcp_port>${tcp}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
</yandex>
`,
  );
  fs.writeFileSync(
    path.join(dir, 'users.xml'),
    `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`,
  );
  const logFile = path.join(dir, 'stdout.log');
  const run = async () => {
    // At nice 10, as the stack runs it (src/stack/servers.ts): analytics storage yields the CPU to serving.
    const child = launch('nice', ['-n', String(CLICKHOUSE_NICE), 'clickhouse-server', `--config-file=${dir}/config.xml`], logFile);
    await waitFor('clickhouse', () => httpOk(`http://127.0.0.1:${http}/ping`), child, path.join(dir, 'log/err.log'));
    return child;
  };
  let child: ChildProcess | null = await run();
  return {
    port: http,
    dir,
    stop: async () => {
      if (child) await stopper(child, dir)();
      else if (!process.env.VORA_KEEP_TEST_DATA) fs.rmSync(dir, { recursive: true, force: true });
      child = null;
    },
    pause: async () => {
      if (child) await stopper(child, dir, true)();
      child = null;
    },
    resume: async () => {
      if (!child) child = await run();
    },
  };
}

export function minioBinary(): string {
  if (process.env.VORA_MINIO_BIN) return process.env.VORA_MINIO_BIN;
  const cache = path.join(os.homedir(), '.cache/vora/bin');
  const found = fs.existsSync(cache) ? fs.readdirSync(cache).filter((d) => d.startsWith('minio-')).sort().reverse() : [];
  for (const d of found) if (fs.existsSync(path.join(cache, d, 'minio'))) return path.join(cache, d, 'minio');
  const r = spawnSync('bash', [path.join(REPO_ROOT, 'tools/build.sh'), 'minio'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot build minio: ${r.stderr}`);
  return r.stdout.trim().split('\n').pop()!;
}

export interface MinioServer extends Server {
  accessKey: string;
  secretKey: string;
}

export async function startMinio(bucket: string): Promise<MinioServer> {
  const dir = tempDir('minio');
  const [port, consolePort] = [await freePort(), await freePort()];
  const accessKey = 'voratest';
  const secretKey = 'voratest-secret-key';
  const logFile = path.join(dir, 'minio.log');
  const child = launch(
    minioBinary(),
    ['server', path.join(dir, 'data'), '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`, '--quiet'],
    logFile,
    { ...process.env, MINIO_ROOT_USER: accessKey, MINIO_ROOT_PASSWORD: secretKey, MINIO_BROWSER: 'off' },
  );
  await waitFor('minio', () => httpOk(`http://127.0.0.1:${port}/minio/health/live`), child, logFile);
  const cfg = configFor({ minio: port, accessKey, secretKey, bucket });
  const s3 = createS3(cfg);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  s3.destroy();
  return { port, dir, accessKey, secretKey, stop: stopper(child, dir) };
}

const PG_BIN = '/usr/lib/postgresql/15/bin';

/** PostgreSQL refuses to run as root: when root, it runs as the `postgres` system user. */
export async function startPostgres(): Promise<Server & { url: string }> {
  const dir = tempDir('pg');
  fs.chmodSync(dir, 0o755);
  const port = await freePort();
  const data = path.join(dir, 'data');
  let uid: number | undefined;
  let gid: number | undefined;
  if (process.getuid?.() === 0) {
    const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    uid = Number(id.stdout.trim());
    gid = Number(g.stdout.trim());
    fs.chownSync(dir, uid, gid);
  }
  const init = spawnSync(`${PG_BIN}/initdb`, ['-D', data, '-U', 'vora', '--auth=trust', '-E', 'UTF8', '--no-sync'], {
    encoding: 'utf8',
    uid,
    gid,
  });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const logFile = path.join(dir, 'postgres.log');
  fs.writeFileSync(logFile, '');
  if (uid !== undefined) fs.chownSync(logFile, uid, gid!);
  const child = launch(
    `${PG_BIN}/postgres`,
    ['-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-c', 'fsync=off', '-c', 'synchronous_commit=off'],
    logFile,
    process.env,
    uid,
    gid,
  );
  const url = `postgres://vora@127.0.0.1:${port}/postgres`;
  await waitFor(
    'postgres',
    async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.end();
      return true;
    },
    child,
    logFile,
  );
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query('CREATE DATABASE vora');
  await admin.end();
  return { port, dir, url: `postgres://vora@127.0.0.1:${port}/vora`, stop: stopper(child, dir) };
}

/** Applies migrations/*.sql in order (the stack's migrator may not exist yet in every checkout). */
export async function applyMigrations(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const dir = path.join(REPO_ROOT, 'migrations');
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.sql')).sort()) {
      await c.query(fs.readFileSync(path.join(dir, f), 'utf8'));
    }
  } finally {
    await c.end();
  }
}

export async function startVarnish(vcl: string): Promise<Server & { adminPort: number }> {
  const dir = tempDir('varnish');
  fs.chmodSync(dir, 0o755);
  const [port, adminPort] = [await freePort(), await freePort()];
  const vclFile = path.join(dir, 'default.vcl');
  fs.writeFileSync(vclFile, vcl);
  const logFile = path.join(dir, 'varnishd.log');
  const child = launch(
    'varnishd',
    ['-F', '-j', 'none', '-n', path.join(dir, 'work'), '-a', `127.0.0.1:${port}`, '-T', `127.0.0.1:${adminPort}`, '-f', vclFile, '-s', 'malloc,64m'],
    logFile,
  );
  await waitFor(
    'varnishd',
    () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port }, () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      }),
    child,
    logFile,
  );
  return { port, adminPort, dir, stop: stopper(child, dir) };
}

/** A VoraConfig pointing at the test servers (only what the gateway and analytics use). */
export function configFor(p: {
  minio?: number;
  accessKey?: string;
  secretKey?: string;
  bucket?: string;
  clickhouse?: number;
  pgUrl?: string;
  dataDir?: string;
}): VoraConfig {
  const env: Record<string, string> = { VORA_HOST: '127.0.0.1', VORA_LOG_LEVEL: process.env.VORA_LOG_LEVEL ?? 'warn' };
  if (p.minio) env.VORA_MINIO_PORT = String(p.minio);
  if (p.accessKey) env.VORA_S3_ACCESS_KEY = p.accessKey;
  if (p.secretKey) env.VORA_S3_SECRET_KEY = p.secretKey;
  if (p.bucket) env.VORA_S3_BUCKET = p.bucket;
  if (p.clickhouse) env.VORA_CLICKHOUSE_HTTP_PORT = String(p.clickhouse);
  if (p.pgUrl) env.VORA_PG_URL = p.pgUrl;
  if (p.dataDir) env.VORA_DATA_DIR = p.dataDir;
  return loadConfig(env);
}

/** Raw request: fetch would normalise "..", and we want exact status/headers/body. */
export function raw(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({ host: u.hostname, port: u.port, path: url.slice(u.origin.length), method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

export async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Events stored in ClickHouse that match `where`, each once (FINAL). */
export async function chCount(cfg: VoraConfig, where: string): Promise<number> {
  const ch = createClickhouse(cfg);
  try {
    const rs = await ch.query({ query: `SELECT count() AS n FROM vora.playback_events FINAL WHERE ${where}`, format: 'JSONEachRow' });
    return Number((await rs.json<{ n: string }>())[0]?.n ?? 0);
  } finally {
    await ch.close();
  }
}
