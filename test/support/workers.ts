// Extra worker processes for workflow tests: same code as the stack's worker, own task queue (so
// the harness's worker never takes these tasks), own data dir, optional fault injection.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { REPO_ROOT } from '../../src/common/config.ts';
import { until } from './client.ts';

export interface TestWorker {
  proc: ChildProcess;
  pid: number;
  dataDir: string;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export const uniqueQueue = (name: string) => `${name}-${randomBytes(4).toString('hex')}`;

export async function startWorker(taskQueue: string, env: Record<string, string> = {}): Promise<TestWorker> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vora-worker-'));
  const log = fs.openSync(path.join(dataDir, 'worker.log'), 'a');
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/worker/main.ts')], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...inject('stackEnv'), VORA_DATA_DIR: dataDir, VORA_TASK_QUEUE: taskQueue, VORA_WORKER_METRICS_PORT: '0', ...env },
    stdio: ['ignore', log, log],
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const ready = path.join(dataDir, 'run', 'worker.ready');
  await until('worker ready', async () => {
    if (proc.exitCode !== null) throw new Error(`worker exited: ${fs.readFileSync(path.join(dataDir, 'worker.log'), 'utf8').slice(-2000)}`);
    return fs.existsSync(ready) ? true : undefined;
  }, 60_000);
  return {
    proc,
    pid: proc.pid!,
    dataDir,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
      if (!process.env.VORA_KEEP_TEST_DATA) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
