// The Temporal worker process: polls cfg.temporal.taskQueue, runs VideoProcessingWorkflow and its
// activities, which call the native engine in-process.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker } from '@temporalio/worker';
import { loadConfig, loadWorkerConfig } from '../common/config.ts';
import { createPool } from '../common/db.ts';
import { createLogger } from '../common/log.ts';
import { createS3 } from '../common/s3.ts';
import * as media from '../media/index.ts';
import http from 'node:http';
import { createMetrics, prom } from '../common/metrics.ts';
import { prewarmVideo } from '../common/playback-cache.ts';
import { createActivities } from './activities/index.ts';
import { encodeLanes } from './encode-lanes.ts';
import { parseFaults } from './faults.ts';

const cfg = loadConfig();
const wcfg = loadWorkerConfig();
const log = createLogger('worker', cfg.logLevel);
const pool = createPool(cfg, 4);
const s3 = createS3(cfg);
const faults = parseFaults(wcfg.faults);
if (faults.length) log.warn({ faults }, 'FAULT INJECTION ENABLED: this worker will crash on purpose');
const lanes = encodeLanes(os.availableParallelism(), wcfg.encode);

// Prometheus metrics on VORA_WORKER_METRICS_PORT (default 9464; 0 = any free port).
const metrics = createMetrics('worker');
const encodes = new prom.Counter({ name: 'vora_worker_chunk_encodes_total', help: 'Chunk x rendition encodes by outcome', labelNames: ['rendition', 'outcome'], registers: [metrics.registry] });
const encodeSeconds = new prom.Histogram({ name: 'vora_worker_chunk_encode_seconds', help: 'Wall time of chunk encodes', labelNames: ['rendition'], buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300], registers: [metrics.registry] });
const metricsServer = http.createServer((req, res) => {
  if (req.url !== '/metrics') return void res.writeHead(404).end();
  metrics.metrics().then((body) => res.writeHead(200, { 'content-type': metrics.contentType }).end(body), () => res.writeHead(500).end());
});
metricsServer.on('error', (err) => log.warn({ err: err.message }, 'metrics endpoint unavailable'));
metricsServer.listen(wcfg.metricsPort, cfg.host);

const connection = await NativeConnection.connect({ address: cfg.temporal.address });
const worker = await Worker.create({
  connection,
  namespace: cfg.temporal.namespace,
  taskQueue: cfg.temporal.taskQueue,
  workflowsPath: fileURLToPath(new URL('./workflows/index.ts', import.meta.url)),
  activities: createActivities({
    cfg, pool, s3, log, media, ladder: wcfg.ladder, faults, settings: { ...wcfg.processing, lanes },
    // Warm Varnish with the master, media playlists and first segments once a video is READY.
    onReady: async (videoId) => log.info(await prewarmVideo(cfg, videoId), 'cache pre-warmed'),
    onEncode: (e) => {
      encodes.inc({ rendition: e.rendition, outcome: e.skipped ? 'skipped' : e.crashed ? 'crashed' : 'encoded' });
      if (!e.skipped) encodeSeconds.observe({ rendition: e.rendition }, e.ms / 1000);
    },
  }),
  // One chunk encode per core (encode-lanes.ts), plus one slot so that short
  // bookkeeping activities (state mirroring, master playlist) are not stuck behind encodes.
  maxConcurrentActivityTaskExecutions: lanes.slots + 1,
  shutdownGraceTime: '30s',
  // Heartbeats reach the server at most this far apart, and cancellation (a deleted video) arrives
  // with a heartbeat's answer: the default (80% of the heartbeat timeout) would let an encode run
  // on for ~16 s after its video was deleted.
  maxHeartbeatThrottleInterval: '2s',
});

const readyFile = path.join(cfg.dataDir, 'run', 'worker.ready');
const running = worker.run();
const poll = setInterval(() => {
  if (worker.getState() === 'RUNNING') {
    clearInterval(poll);
    fs.mkdirSync(path.dirname(readyFile), { recursive: true });
    fs.writeFileSync(readyFile, String(process.pid));
    log.info({ taskQueue: cfg.temporal.taskQueue }, 'worker running');
  }
}, 100);

try {
  await running; // returns after SIGINT/SIGTERM: the SDK stops polling and drains in-flight tasks
} finally {
  clearInterval(poll);
  fs.rmSync(readyFile, { force: true });
  metricsServer.close();
  await connection.close();
  await pool.end();
  s3.destroy();
  log.info('worker stopped');
}
