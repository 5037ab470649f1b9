// `vora up | down | status`: the local stack's lifecycle.
import fs from 'node:fs';
import path from 'node:path';
import { readApiKeyFile } from '../api/auth.ts';
import { PORT_VARS, loadConfig } from '../common/config.ts';
import { portOpen } from '../stack/ports.ts';
import { Stack, StackError } from '../stack/supervisor.ts';
import { readCacheCounters, type CacheCounters } from '../stack/varnishstat.ts';

const pidFile = (dataDir: string) => path.join(dataDir, 'run', 'supervisor.pid');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readPid(file: string): number | null {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export async function up(): Promise<void> {
  const cfg = loadConfig();
  const existing = readPid(pidFile(cfg.dataDir));
  if (existing && alive(existing)) {
    throw new StackError('ALREADY_RUNNING', `the stack is already running (supervisor pid ${existing}); use \`vora status\` or \`vora down\``);
  }
  const stack = new Stack(process.env);
  fs.mkdirSync(path.dirname(pidFile(cfg.dataDir)), { recursive: true });
  fs.writeFileSync(pidFile(cfg.dataDir), String(process.pid));
  let stopping: Promise<void> | null = null;
  const shutdown = () => {
    stopping ??= (async () => {
      process.stderr.write('\n[vora] stopping…\n');
      await stack.stop();
      fs.rmSync(pidFile(cfg.dataDir), { force: true });
      process.stderr.write('[vora] stopped\n');
      process.exit(0);
    })();
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  const t0 = Date.now();
  try {
    await stack.start();
  } catch (err) {
    fs.rmSync(pidFile(cfg.dataDir), { force: true });
    throw err;
  }
  const c = stack.cfg;
  const apiKey = readApiKeyFile(c.dataDir);
  process.stdout.write(
    [
      `[vora] stack up in ${((Date.now() - t0) / 1000).toFixed(1)}s — data in ${c.dataDir}, logs in ${path.join(c.dataDir, 'logs')}`,
      `  web app + API     ${c.apiUrl}`,
      ...(apiKey
        ? [
            `  web app (signed in) ${c.apiUrl}/#key=${apiKey}`,
            `  API key           ${apiKey}  (in ${path.join(c.dataDir, 'api-key')}; send "Authorization: Bearer <key>")`,
          ]
        : []),
      `  playback (Varnish) ${c.playbackUrl}/hls/{videoId}/master.m3u8`,
      `  gateway (origin)  ${c.gatewayUrl}`,
      `  Temporal Web UI   ${c.temporal.uiUrl}`,
      `  MinIO console     http://${c.host}:${c.ports.minioConsole}  (credentials in ${path.join(c.dataDir, 'secrets.json')})`,
      `  ClickHouse HTTP   ${c.clickhouse.url}`,
      `  PostgreSQL        ${c.postgres.url}`,
      'Ctrl-C or `vora down` stops everything.',
      '',
    ].join('\n'),
  );
  await new Promise(() => {}); // run until a signal arrives
}

export async function down(): Promise<void> {
  const cfg = loadConfig();
  const pid = readPid(pidFile(cfg.dataDir));
  if (pid && alive(pid)) {
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 60_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    if (alive(pid)) throw new StackError('STOP_TIMEOUT', `supervisor ${pid} did not stop within 60s`);
    process.stdout.write('[vora] stopped\n');
    return;
  }
  // No supervisor (it was killed): stop orphaned services from their pid files.
  const runDir = path.join(cfg.dataDir, 'run');
  let stopped = 0;
  for (const f of fs.existsSync(runDir) ? fs.readdirSync(runDir) : []) {
    if (!f.endsWith('.pid') || f === 'supervisor.pid') continue;
    const p = readPid(path.join(runDir, f));
    if (p && alive(p)) {
      process.kill(p, f === 'postgres.pid' ? 'SIGINT' : 'SIGTERM');
      stopped++;
    }
    fs.rmSync(path.join(runDir, f), { force: true });
  }
  process.stdout.write(stopped ? `[vora] stopped ${stopped} orphaned service(s)\n` : '[vora] nothing is running\n');
}

export async function status(json: boolean): Promise<number> {
  const cfg = loadConfig();
  const sup = readPid(pidFile(cfg.dataDir));
  const rows = await Promise.all(
    (Object.keys(PORT_VARS) as Array<keyof typeof PORT_VARS>).map(async (name) => ({
      service: name,
      address: `${cfg.host}:${cfg.ports[name]}`,
      variable: PORT_VARS[name][0],
      up: await portOpen(cfg.host, cfg.ports[name]),
    })),
  );
  const workerPid = readPid(path.join(cfg.dataDir, 'run', 'worker.pid'));
  const cache: CacheCounters | null = await readCacheCounters(cfg.dataDir).catch(() => null);
  const result = {
    supervisor: sup && alive(sup) ? sup : null,
    dataDir: cfg.dataDir,
    services: rows,
    worker: { pid: workerPid, up: workerPid !== null && alive(workerPid) },
    cache,
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else {
    process.stdout.write(`supervisor: ${result.supervisor ? `running (pid ${result.supervisor})` : 'not running'}; data ${cfg.dataDir}\n`);
    for (const r of rows) process.stdout.write(`  ${r.up ? 'up  ' : 'down'}  ${r.service.padEnd(15)} ${r.address.padEnd(22)} (${r.variable})\n`);
    process.stdout.write(`  ${result.worker.up ? 'up  ' : 'down'}  worker          pid ${workerPid ?? '-'}\n`);
    if (cache) {
      const ratio = cache.hitRatio === null ? '-' : `${(cache.hitRatio * 100).toFixed(1)}%`;
      process.stdout.write(
        `cache: hit ratio ${ratio} (${cache.hits} hits, ${cache.misses} misses), ${cache.backendRequests} origin requests, ` +
          `${(cache.originBodyBytes / 1e6).toFixed(1)} MB from origin, ${(cache.clientBodyBytes / 1e6).toFixed(1)} MB to clients\n`,
      );
    }
  }
  return rows.every((r) => r.up) && result.worker.up ? 0 : 1;
}
