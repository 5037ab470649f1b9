// Upload throughput: one file through the API's TUS endpoint (tus-js-client, 64 MiB PATCHes as the
// CLI sends them -> @tus/server + @tus/s3-store, parts through memory -> MinIO, then the finish: the
// sha256 computed while the bytes streamed in is checked and the stored object becomes the source in
// place) against a direct multipart upload of the same file to the same MinIO with
// @aws-sdk/lib-storage `Upload`, in the same run. The API runs as a child process
// (`node --max-semi-space-size=8 --import tsx src/api/main.ts`: appNodeArgs, as the stack runs it) so its peak RSS (VmHWM in
// /proc/<pid>/status) is its own. Each round also prints the CPU seconds of the client (this
// process), the API and MinIO: on a 2-core host they compete, so the API's work shows as wall time.
//   npx tsx bench/upload.ts [--size-mib 1024] [--chunk-mib 64] [--rounds 1] [--chunk-cases]
//                           [--api-node-arg=--max-semi-space-size=2]
// Goals: TUS / direct >= 0.8, API peak RSS <= 200 MB.
// --chunk-cases adds the older comparison of PATCH sizes aligned and not aligned to the store's
// 8 MiB part size (a misaligned PATCH leaves a sub-5 MiB `.part` the next one re-uploads).
// Starts its own PostgreSQL, MinIO and Temporal (test/integration/api-support.ts); no worker runs.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import * as tus from 'tus-js-client';
import { readApiKeyFile } from '../src/api/auth.ts';
import { largeReadFileReader } from '../src/cli/file-source.ts';
import { ensureBucket } from '../src/api/objects.ts';
import { loadConfig, REPO_ROOT } from '../src/common/config.ts';
import { createS3 } from '../src/common/s3.ts';
import { appNodeArgs, appProcessEnv } from '../src/stack/servers.ts';
import { freePort, startServices } from '../test/integration/api-support.ts';

const MiB = 1024 * 1024;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const n = Number(process.argv[i + 1]);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} needs a positive number`);
  return n;
}

const sizeMiB = arg('size-mib', 1024);
const chunkMiB = arg('chunk-mib', 64); // as the CLI (src/cli/videos.ts)
const rounds = arg('rounds', 1);
const chunkCases = process.argv.includes('--chunk-cases');
/** Extra node flags for the API child, e.g. --api-node-arg=--max-semi-space-size=2 (repeatable). */
const apiNodeArgs = process.argv.filter((a) => a.startsWith('--api-node-arg=')).map((a) => a.slice('--api-node-arg='.length));
const directPartMiB = 16;
const directQueue = 4; // lib-storage default concurrency

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vora-upload-bench-'));
const file = path.join(dir, 'bench.bin');

/** Random file written in 16 MiB blocks (constant memory); returns its sha256. */
function writeRandomFile(): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'w');
  for (let left = sizeMiB * MiB; left > 0; ) {
    const block = randomBytes(Math.min(16 * MiB, left));
    h.update(block);
    fs.writeSync(fd, block);
    left -= block.length;
  }
  fs.closeSync(fd);
  return h.digest('hex');
}

function procStatus(pid: number): { rssKiB: number; hwmKiB: number } {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
}

const TICK = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on Linux
/** CPU seconds (user + system, all threads) a process has used so far. */
function cpuSec(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / TICK; // fields 14 and 15: utime, stime
  } catch {
    return NaN;
  }
}

/** CPU seconds of this process (the client), the API child and MinIO, spent while `f` ran. */
async function withCpu<T>(f: () => Promise<T>): Promise<{ value: T; cpu: { client: number; api: number; minio: number } }> {
  const c0 = process.cpuUsage();
  const [a0, m0] = [cpuSec(child.pid), cpuSec(svc.pids.minio)];
  const value = await f();
  const c = process.cpuUsage(c0);
  const r = (x: number) => Math.round(x * 100) / 100;
  return { value, cpu: { client: r((c.user + c.system) / 1e6), api: r(cpuSec(child.pid) - a0), minio: r(cpuSec(svc.pids.minio) - m0) } };
}

async function waitHealthy(url: string, child: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`api exited (${child.exitCode}); see ${log}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`api not healthy after 60 s; see ${log}`);
}

const t0 = Date.now();
const sha = writeRandomFile();
const svc = await startServices();
const apiPort = await freePort();
const dataDir = path.join(dir, 'data');
const env = {
  ...process.env,
  ...svc.env,
  VORA_HOST: '127.0.0.1',
  VORA_API_PORT: String(apiPort),
  VORA_DATA_DIR: dataDir,
  VORA_PLAYBACK_SECRET: 'bench',
  VORA_RECONCILE_SECONDS: '0',
  VORA_UPLOAD_SWEEP_SECONDS: '0',
  VORA_LOG_LEVEL: process.env.VORA_LOG_LEVEL ?? 'warn',
  ...appProcessEnv('api'),
};
const cfg = loadConfig(env);
const s3 = createS3(cfg);
await ensureBucket(s3, cfg.s3.bucket);
const apiLog = path.join(dir, 'api.log');
const out = fs.openSync(apiLog, 'a');
const child = spawn(process.execPath, [...apiNodeArgs, ...appNodeArgs('api')], { env, stdio: ['ignore', out, out], cwd: REPO_ROOT });
fs.closeSync(out);
const base = `http://127.0.0.1:${apiPort}`;

function tusUpload(chunkSize: number): Promise<{ ms: number }> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const u = new tus.Upload(fs.createReadStream(file), {
      endpoint: `${base}/v1/uploads`,
      uploadSize: sizeMiB * MiB,
      metadata: { filename: 'bench.bin', filetype: 'application/octet-stream', sha256: sha },
      headers: { Authorization: `Bearer ${readApiKeyFile(dataDir)}` },
      chunkSize,
      fileReader: largeReadFileReader(), // as the CLI reads files
      retryDelays: [],
      onError: reject,
      onSuccess: () => resolve({ ms: performance.now() - start }),
    });
    u.start();
  });
}

async function directUpload(): Promise<number> {
  const key = `bench/direct-${randomBytes(6).toString('hex')}`;
  const start = performance.now();
  await new Upload({
    client: s3,
    params: { Bucket: cfg.s3.bucket, Key: key, Body: fs.createReadStream(file, { highWaterMark: MiB }) },
    partSize: directPartMiB * MiB,
    queueSize: directQueue,
  }).done();
  const ms = performance.now() - start;
  await s3.send(new DeleteObjectCommand({ Bucket: cfg.s3.bucket, Key: key }));
  return ms;
}

const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  const m = v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
  return Math.round(m * 1000) / 1000;
};
const mibps = (ms: number) => Math.round((sizeMiB / (ms / 1000)) * 10) / 10;
let sampler: NodeJS.Timeout | undefined;
try {
  await waitHealthy(base, child, apiLog);
  const idle = procStatus(child.pid!);
  let peakSampled = idle.rssKiB;
  sampler = setInterval(() => {
    try {
      peakSampled = Math.max(peakSampled, procStatus(child.pid!).rssKiB);
    } catch {
      // exited
    }
  }, 100);

  const inputs = {
    sizeMiB,
    tusChunkMiB: chunkMiB,
    serverPartMiB: Number(process.env.VORA_UPLOAD_PART_MIB ?? 8),
    directPartMiB,
    directQueueSize: directQueue,
    rounds,
    apiNodeArgs,
    cpus: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    file: 'random bytes on local disk (page-cached); MinIO single drive on local disk',
    setupSec: Math.round((Date.now() - t0) / 100) / 10,
  };
  console.log(JSON.stringify({ inputs }));

  const direct: number[] = [];
  const viaTus: { ms: number }[] = [];
  for (let i = 0; i < rounds; i++) {
    // alternate the order so neither always runs on a warmer MinIO
    const d = async () => {
      const r = await withCpu(directUpload);
      direct.push(r.value);
      return r.cpu;
    };
    const t = async () => {
      const r = await withCpu(() => tusUpload(chunkMiB * MiB));
      viaTus.push(r.value);
      return r.cpu;
    };
    let cpuDirect, cpuTus;
    if (i % 2 === 0) {
      cpuDirect = await d();
      cpuTus = await t();
    } else {
      cpuTus = await t();
      cpuDirect = await d();
    }
    // CPU seconds per process: on a 2-core host the three compete, so any API overhead shows as wall time.
    // The API's RSS after the round and its peak so far (VmHWM): a peak growing round after round
    // would be a leak, not the cost of one upload.
    const st = procStatus(child.pid!);
    console.log(JSON.stringify({ round: i + 1, directMiBps: mibps(direct[i]!), tusMiBps: mibps(viaTus[i]!.ms), ratio: Math.round((direct[i]! / viaTus[i]!.ms) * 1000) / 1000, cpuSecDirect: cpuDirect, cpuSecTus: cpuTus, apiRssMB: Math.round((st.rssKiB * 1024) / 1e6), apiPeakRssSoFarMB: Math.round((st.hwmKiB * 1024) / 1e6) }));
  }
  const bestDirect = Math.min(...direct);
  const bestTus = viaTus.reduce((a, b) => (b.ms < a.ms ? b : a));

  const cases: { case: string; mibPerSec: number }[] = [];
  if (chunkCases) {
    for (const [name, chunk] of [
      ['aligned 8 MiB chunks', 8 * MiB],
      ['aligned 32 MiB chunks', 32 * MiB],
      ['misaligned 6 MiB chunks', 6 * MiB],
      ['misaligned 3 MiB chunks (< S3 min part)', 3 * MiB],
      ['one PATCH', Infinity],
    ] as const) {
      cases.push({ case: name, mibPerSec: mibps((await tusUpload(chunk)).ms) });
    }
  }

  clearInterval(sampler);
  const end = procStatus(child.pid!);
  const result = {
    directMiBps: mibps(bestDirect),
    tusMiBps: mibps(bestTus.ms),
    ratio: Math.round((bestDirect / bestTus.ms) * 1000) / 1000,
    // each round's pair ran back to back: less exposed to a noisy machine than best-of vs best-of
    medianRoundRatio: median(direct.map((d, i) => d / viaTus[i]!.ms)),
    apiIdleRssMB: Math.round((idle.rssKiB * 1024) / 1e6),
    apiPeakRssMB: Math.round((end.hwmKiB * 1024) / 1e6),
    apiPeakRssSampledMB: Math.round((peakSampled * 1024) / 1e6),
  };
  console.log(JSON.stringify({ result, ...(cases.length ? { cases } : {}) }));
  console.log(`\n${sizeMiB} MiB file, best of ${rounds}`);
  console.log(`direct S3 multipart (lib-storage, ${directPartMiB} MiB x ${directQueue})  ${result.directMiBps} MiB/s`);
  console.log(`TUS via API (${chunkMiB} MiB PATCHes, incl. finish)         ${result.tusMiBps} MiB/s`);
  console.log(`ratio TUS / direct                                 ${result.ratio}   (goal >= 0.8; median of per-round ratios ${result.medianRoundRatio})`);
  console.log(`API process peak RSS (VmHWM)                       ${result.apiPeakRssMB} MB   (goal <= 200; idle ${result.apiIdleRssMB} MB)`);
  for (const c of cases) console.log(`  ${c.case.padEnd(42)} ${String(c.mibPerSec).padStart(7)} MiB/s`);
} finally {
  if (sampler) clearInterval(sampler);
  child.kill('SIGTERM');
  await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  await svc.stop();
  if (process.env.VORA_KEEP_BENCH_DIR) console.log(`kept ${dir}`);
  else fs.rmSync(dir, { recursive: true, force: true });
}
