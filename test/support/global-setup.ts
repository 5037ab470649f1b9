// Starts the whole stack once for the integration project, on free ports in a fresh data dir, with
// the same supervisor `vora up` uses; tests read its environment with inject('stackEnv').
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { readApiKeyFile } from '../../src/api/auth.ts';
import { PORT_VARS } from '../../src/common/config.ts';
import { freePort } from '../../src/stack/ports.ts';
import { Stack } from '../../src/stack/supervisor.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    stackEnv: Record<string, string>;
  }
}

export default async function setup(project: TestProject) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vora-test-'));
  fs.chmodSync(dataDir, 0o755); // PostgreSQL runs as its own user and must reach its data dir
  const env: Record<string, string> = { VORA_DATA_DIR: dataDir, VORA_LOG_LEVEL: 'info' };
  for (const [variable] of Object.values(PORT_VARS)) env[variable] = String(await freePort());
  env.VORA_WORKER_METRICS_PORT = String(await freePort());
  const stack = new Stack({ ...process.env, ...env }, { log: (l) => process.stderr.write(`${l}\n`) });
  const t0 = Date.now();
  await stack.start();
  process.stderr.write(`[harness] stack up in ${((Date.now() - t0) / 1000).toFixed(1)}s, data in ${dataDir}\n`);
  // The API wrote its first key to the data dir on start; tests send it (stackEnv.VORA_API_KEY).
  const apiKey = readApiKeyFile(dataDir);
  if (!apiKey) throw new Error(`the API wrote no key to ${path.join(dataDir, 'api-key')}`);
  // Test-only control of the stack's services (stop/start one, e.g. Temporal mid-workflow), for
  // tests that run in worker processes and cannot reach the Stack object. Loopback only.
  const control = http.createServer((req, res) => {
    const m = /^\/services\/([a-z]+)\/(stop|start|kill)$/.exec(req.url ?? '');
    if (req.method !== 'POST' || !m) {
      res.writeHead(404).end();
      return;
    }
    const [, name, op] = m;
    const done = op === 'start' ? stack.startService(name!) : stack.stopService(name!, op === 'kill' ? 'SIGKILL' : undefined);
    done.then(
      () => res.writeHead(204).end(),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(err.message),
    );
  });
  await new Promise<void>((r) => control.listen(0, '127.0.0.1', r));
  const controlUrl = `http://127.0.0.1:${(control.address() as { port: number }).port}`;
  project.provide('stackEnv', { ...env, ...stack.env, VORA_TEST_CONTROL_URL: controlUrl, VORA_API_KEY: apiKey });
  return async () => {
    control.close();
    await stack.stop();
    if (process.env.VORA_KEEP_TEST_DATA) process.stderr.write(`[harness] kept ${dataDir}\n`);
    else fs.rmSync(dataDir, { recursive: true, force: true });
  };
}
