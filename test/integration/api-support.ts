// Starts REAL PostgreSQL, MinIO and a Temporal dev server in temp dirs on 127.0.0.1 with random
// free ports, for the API integration tests. A shared harness will replace these helpers; keep the
// surface small: startServices() -> { env, stop() }.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { REPO_ROOT } from '../../src/common/config.ts';
import { freePort } from '../../src/stack/ports.ts';

export { freePort };

const PG_BIN = process.env.VORA_PG_BIN ?? '/usr/lib/postgresql/15/bin';

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      if (await probe()) return;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not become ready in ${timeoutMs} ms: ${String(lastErr)}`);
}

function findBinary(name: 'minio' | 'temporal'): string {
  const env = name === 'minio' ? process.env.VORA_MINIO_BIN : process.env.VORA_TEMPORAL_BIN;
  if (env) return env;
  const cache = path.join(os.homedir(), '.cache/vora/bin');
  if (fs.existsSync(cache)) {
    for (const d of fs.readdirSync(cache).sort().reverse()) {
      const p = path.join(cache, d, name);
      if (d.startsWith(`${name}-`) && fs.existsSync(p)) return p;
    }
  }
  return execFileSync('bash', [path.join(REPO_ROOT, 'tools/build.sh'), name], { encoding: 'utf8' }).trim();
}

interface Proc {
  child: ChildProcess;
  log: string;
}

function launch(cmd: string, args: string[], logFile: string, opts: { env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {}): Proc {
  const out = fs.openSync(logFile, 'a');
  const child = spawn(cmd, args, {
    stdio: ['ignore', out, out],
    env: { ...process.env, ...opts.env },
    uid: opts.uid,
    gid: opts.gid,
  });
  fs.closeSync(out);
  return { child, log: logFile };
}

async function stopProc(p: Proc | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      p.child.kill('SIGKILL');
    }, 10_000);
    p.child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    p.child.kill(signal);
  });
}

export interface Services {
  env: Record<string, string>;
  dir: string;
  pgUrl: string;
  /** Server process ids (benchmarks read their CPU time from /proc). */
  pids: { postgres?: number; minio?: number; temporal?: number };
  stop(): Promise<void>;
}

/** PostgreSQL refuses to run as root: run it as the `postgres` system user when we are root. */
function pgIdentity(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('running as root and no postgres user to run PostgreSQL as');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

export async function startPostgres(dir: string): Promise<{ url: string; proc: Proc }> {
  const port = await freePort();
  const data = path.join(dir, 'pg');
  fs.mkdirSync(data, { recursive: true });
  const ident = pgIdentity();
  if (ident.uid !== undefined) fs.chownSync(data, ident.uid, ident.gid!);
  execFileSync(path.join(PG_BIN, 'initdb'), ['-D', data, '-U', 'vora', '--auth=trust', '-E', 'UTF8', '--no-sync'], {
    stdio: 'ignore',
    uid: ident.uid,
    gid: ident.gid,
    cwd: data,
  });
  const proc = launch(
    path.join(PG_BIN, 'postgres'),
    ['-D', data, '-p', String(port), '-k', data, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'],
    path.join(dir, 'pg.log'),
    ident,
  );
  const admin = `postgres://vora@127.0.0.1:${port}/postgres`;
  await waitFor('postgres', async () => {
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    await c.end();
    return true;
  });
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query('CREATE DATABASE vora');
  await c.end();
  const url = `postgres://vora@127.0.0.1:${port}/vora`;
  await applyMigrations(url);
  return { url, proc };
}

export async function applyMigrations(url: string): Promise<void> {
  const dir = path.join(REPO_ROOT, 'migrations');
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()) {
      await c.query(fs.readFileSync(path.join(dir, f), 'utf8'));
    }
  } finally {
    await c.end();
  }
}

export async function startMinio(dir: string): Promise<{ endpoint: string; accessKey: string; secretKey: string; proc: Proc }> {
  const port = await freePort();
  const consolePort = await freePort();
  const data = path.join(dir, 'minio');
  fs.mkdirSync(data, { recursive: true });
  const accessKey = 'voratest';
  const secretKey = 'voratest-secret-key';
  const proc = launch(
    findBinary('minio'),
    ['server', data, '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`, '--quiet'],
    path.join(dir, 'minio.log'),
    { env: { MINIO_ROOT_USER: accessKey, MINIO_ROOT_PASSWORD: secretKey, MINIO_BROWSER: 'off' } },
  );
  const endpoint = `http://127.0.0.1:${port}`;
  await waitFor('minio', async () => (await fetch(`${endpoint}/minio/health/ready`)).ok);
  return { endpoint, accessKey, secretKey, proc };
}

export async function startTemporal(dir: string): Promise<{ address: string; proc: Proc }> {
  const port = await freePort();
  const uiPort = await freePort();
  const proc = launch(
    findBinary('temporal'),
    [
      'server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--ui-port', String(uiPort),
      '--db-filename', path.join(dir, 'temporal.db'), '--log-level', 'warn',
    ],
    path.join(dir, 'temporal.log'),
  );
  const address = `127.0.0.1:${port}`;
  const { Connection } = await import('@temporalio/client');
  await waitFor(
    'temporal',
    async () => {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await conn.workflowService.describeNamespace({ namespace: 'default' });
        return true;
      } finally {
        await conn.close();
      }
    },
    90_000,
  );
  return { address, proc };
}

/** All three, started in parallel; env is what loadConfig() needs to reach them. */
export async function startServices(): Promise<Services> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vora-api-it-'));
  fs.chmodSync(dir, 0o755);
  const [pgs, minio, temporal] = await Promise.all([startPostgres(dir), startMinio(dir), startTemporal(dir)]);
  const env: Record<string, string> = {
    VORA_DATA_DIR: path.join(dir, 'data'),
    VORA_PG_URL: pgs.url,
    VORA_S3_ENDPOINT: minio.endpoint,
    VORA_S3_ACCESS_KEY: minio.accessKey,
    VORA_S3_SECRET_KEY: minio.secretKey,
    VORA_S3_BUCKET: 'vora-test',
    VORA_TEMPORAL_ADDRESS: temporal.address,
    VORA_TASK_QUEUE: `vora-test-${process.pid}`,
    VORA_LOG_LEVEL: process.env.VORA_LOG_LEVEL ?? 'warn',
  };
  return {
    env,
    dir,
    pgUrl: pgs.url,
    pids: { postgres: pgs.proc.child.pid, minio: minio.proc.child.pid, temporal: temporal.proc.child.pid },
    async stop() {
      await Promise.all([stopProc(temporal.proc, 'SIGINT'), stopProc(minio.proc), stopProc(pgs.proc, 'SIGINT')]);
      if (!process.env.VORA_KEEP_TEST_DIR) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
