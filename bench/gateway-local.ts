// Starts throwaway servers (test/integration/gateway-support.ts), seeds one READY video with a
// 2 MB segment, and runs bench/gateway-bench.ts against the gateway, Varnish and /v1/events.
//   node --import tsx bench/gateway-local.ts [-c 32] [-d 5]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { ensureClickhouseSchema } from '../src/analytics/schema.ts';
import { REPO_ROOT } from '../src/common/config.ts';
import { createS3 } from '../src/common/s3.ts';
import { startGateway } from '../src/gateway/main.ts';
import { renderVcl } from '../src/gateway/vcl.ts';
import { applyMigrations, configFor, startClickhouse, startMinio, startPostgres, startVarnish, tempDir } from '../test/integration/gateway-support.ts';

const pass = process.argv.slice(2);
const VID = 'vid_benchaaaaaaaaaaaaaaa';
const [ch, minio, pgs] = await Promise.all([startClickhouse(), startMinio('vora'), startPostgres()]);
const dataDir = tempDir('bench');
const cfg = configFor({ minio: minio.port, accessKey: minio.accessKey, secretKey: minio.secretKey, bucket: 'vora', clickhouse: ch.port, pgUrl: pgs.url, dataDir });
try {
  await applyMigrations(pgs.url);
  await ensureClickhouseSchema(cfg);
  const db = new pg.Client({ connectionString: pgs.url });
  await db.connect();
  await db.query(`INSERT INTO uploads (upload_id, status) VALUES ('upl_benchaaaaaaaaaaaaaaa', 'UPLOADED')`);
  await db.query(`INSERT INTO videos (video_id, upload_id, state, source_key, workflow_id) VALUES ($1, 'upl_benchaaaaaaaaaaaaaaa', 'READY', 's', 'w')`, [VID]);
  await db.end();
  const s3 = createS3(cfg);
  await s3.send(new PutObjectCommand({ Bucket: 'vora', Key: `hls/${VID}/360p/seg_00000.m4s`, Body: Buffer.alloc(2 * 1024 * 1024, 7) }));
  s3.destroy();
  const gw = await startGateway(cfg, { port: 0 });
  const varnish = await startVarnish(renderVcl({ gatewayHost: '127.0.0.1', gatewayPort: gw.port }));
  await new Promise((r) => setTimeout(r, 1000));
  // The bench runs as a child so its client work is not on the gateway's event loop.
  // (spawn, not spawnSync: the gateway lives in this process and must keep serving meanwhile).
  const bench = (url: string, extra: string[] = []) =>
    new Promise<void>((resolve) =>
      spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'bench/gateway-bench.ts'), url, ...pass, ...extra], { stdio: 'inherit' }).on('exit', () => resolve()),
    );
  console.log('--- gateway direct (MinIO every request)');
  await bench(`http://127.0.0.1:${gw.port}/hls/${VID}/360p/seg_00000.m4s`);
  console.log('--- through Varnish (cache hits)');
  await bench(`http://127.0.0.1:${varnish.port}/hls/${VID}/360p/seg_00000.m4s`);
  console.log('--- POST /v1/events (100 events per batch)');
  await bench(`http://127.0.0.1:${gw.port}/v1/events`, ['--events']);
  console.log('events', gw.buffer.stats());
  await gw.close();
  await varnish.stop();
} finally {
  await Promise.allSettled([ch.stop(), minio.stop(), pgs.stop()]);
  fs.rmSync(dataDir, { recursive: true, force: true });
}
