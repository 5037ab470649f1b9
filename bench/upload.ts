// Upload throughput through the real API (tus-js-client -> createApi -> @tus/s3-store -> MinIO),
// with PATCH sizes aligned to the store's part size and not, to show why clients should send
// multiples of it (see ApiOptions.partSizeBytes): a PATCH that does not end on a part boundary
// leaves a sub-5 MiB `.part` object that the next PATCH must download and upload again.
//   node --import tsx bench/upload.ts [sizeMiB=128] [rounds=2]
// Starts its own PostgreSQL, MinIO and Temporal (test/integration/api-support.ts). Prints one JSON
// line per case and a summary table; timings include the finish (sha256 of the whole object + copy).
import { createHash, randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import * as tus from 'tus-js-client';
import { createApi } from '../src/api/app.ts';
import { ensureBucket } from '../src/api/objects.ts';
import { loadConfig } from '../src/common/config.ts';
import { createPool } from '../src/common/db.ts';
import { createLogger } from '../src/common/log.ts';
import { createS3 } from '../src/common/s3.ts';
import { startServices } from '../test/integration/api-support.ts';

const MiB = 1024 * 1024;
const sizeMiB = Number(process.argv[2] ?? 128);
const rounds = Number(process.argv[3] ?? 2);

const svc = await startServices();
const cfg = loadConfig({ ...svc.env, VORA_LOG_LEVEL: 'error' });
const pool = createPool(cfg);
const s3 = createS3(cfg);
await ensureBucket(s3, cfg.s3.bucket);
const connection = await Connection.connect({ address: cfg.temporal.address });
const temporal = new Client({ connection });
const api = await createApi({
  config: cfg,
  pool,
  s3,
  temporal,
  logger: createLogger('bench', 'error'),
  options: { sweepIntervalMs: 0, reconcileIntervalMs: 0 },
});
const base = await api.listen(0, '127.0.0.1');

const data = randomBytes(sizeMiB * MiB);
const sha = createHash('sha256').update(data).digest('hex');

function upload(chunkSize: number): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const u = new tus.Upload(data, {
      endpoint: `${base}/v1/uploads`,
      metadata: { filename: 'bench.bin', filetype: 'application/octet-stream', sha256: sha },
      chunkSize,
      retryDelays: [],
      onError: reject,
      onSuccess: () => resolve(performance.now() - t0),
    });
    u.start();
  });
}

const cases: [string, number][] = [
  ['aligned 8 MiB chunks', 8 * MiB],
  ['aligned 32 MiB chunks', 32 * MiB],
  ['misaligned 6 MiB chunks', 6 * MiB],
  ['misaligned 3 MiB chunks (< S3 min part)', 3 * MiB],
  ['one PATCH', Infinity],
];
const results: { case: string; mibPerSec: number; ms: number }[] = [];
try {
  for (const [name, chunk] of cases) {
    const times: number[] = [];
    for (let i = 0; i < rounds; i++) times.push(await upload(chunk));
    const ms = Math.min(...times);
    const r = { case: name, ms: Math.round(ms), mibPerSec: Math.round((sizeMiB / (ms / 1000)) * 10) / 10 };
    results.push(r);
    console.log(JSON.stringify({ sizeMiB, rounds, ...r }));
  }
  console.log(`\n${sizeMiB} MiB, best of ${rounds} (includes finish: whole-file sha256 + server-side copy)`);
  for (const r of results) console.log(`${r.case.padEnd(42)} ${String(r.mibPerSec).padStart(7)} MiB/s  ${r.ms} ms`);
} finally {
  await api.close();
  await connection.close();
  await pool.end();
  await svc.stop();
}
