// Workflow efficiency benchmark (issue 5): one video through the real stack on one worker.
//   worker utilisation = sum of activity execution time / workflow wall time      (goal >= 0.95)
//   time to PARTIALLY_READY / time to READY                                        (goal <= 0.40)
// Usage: npx tsx bench/workflow.ts [--duration 30] [--height 1080] [--preset veryfast]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import * as tus from 'tus-js-client';
import { readApiKeyFile } from '../src/api/auth.ts';
import { PORT_VARS } from '../src/common/config.ts';
import { workflowIdFor } from '../src/common/ids.ts';
import { freePort } from '../src/stack/ports.ts';
import { Stack } from '../src/stack/supervisor.ts';
import { makeClip } from '../test/fixtures/generate.ts';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '30' },
    height: { type: 'string', default: '1080' },
    preset: { type: 'string', default: 'veryfast' },
  },
});
const durationSec = Number(args.duration);
const height = Number(args.height);
const width = Math.round((height * 16) / 9 / 2) * 2;

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vora-bench-wf-'));
fs.chmodSync(dataDir, 0o755);
const env: Record<string, string> = { VORA_DATA_DIR: dataDir, VORA_LOG_LEVEL: 'warn', VORA_X264_PRESET: args.preset! };
for (const [variable] of Object.values(PORT_VARS)) env[variable] = String(await freePort());
const stack = new Stack({ ...process.env, ...env }, { log: () => {} });
await stack.start();
const cfg = stack.cfg;
const key = readApiKeyFile(dataDir)!;

try {
  const file = makeClip({ durationSec, width, height, fps: 30, audio: true });
  const t0 = Date.now();
  const uploadId = await new Promise<string>((resolve, reject) => {
    const u = new tus.Upload(fs.readFileSync(file), {
      endpoint: `${cfg.apiUrl}/v1/uploads`,
      metadata: { filename: 'bench.mp4', filetype: 'video/mp4' },
      headers: { authorization: `Bearer ${key}` },
      chunkSize: 16 << 20,
      onError: reject,
      onSuccess: () => resolve(u.url!.split('/').pop()!),
    });
    u.start();
  });
  let videoId: string | null = null;
  let partialAt: number | null = null;
  let readyAt: number | null = null;
  while (!readyAt) {
    if (!videoId) videoId = ((await (await fetch(`${cfg.apiUrl}/v1/uploads/${uploadId}`)).json()) as { videoId: string | null }).videoId;
    if (videoId) {
      const v = (await (await fetch(`${cfg.apiUrl}/v1/videos/${videoId}`)).json()) as { state: string; failure: unknown };
      if (v.state === 'FAILED') throw new Error(`video failed: ${JSON.stringify(v.failure)}`);
      if (v.state === 'PARTIALLY_READY' && !partialAt) partialAt = Date.now();
      if (v.state === 'READY') readyAt = Date.now();
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const client = new Client({ connection: await Connection.connect({ address: cfg.temporal.address }), namespace: cfg.temporal.namespace });
  const handle = client.workflow.getHandle(workflowIdFor(videoId!));
  await handle.result();
  const events = (await handle.fetchHistory()).events ?? [];
  const ms = (e: (typeof events)[number]) => Number(e.eventTime!.seconds) * 1000 + Math.floor((e.eventTime!.nanos ?? 0) / 1e6);
  const started = new Map<string, number>();
  let activityMs = 0;
  let wfStart = 0;
  let wfEnd = 0;
  const perType = new Map<string, number>();
  const intervals: Array<[number, number]> = [];
  const scheduledType = new Map<string, string>();
  for (const e of events) {
    if (e.workflowExecutionStartedEventAttributes) wfStart = ms(e);
    if (e.workflowExecutionCompletedEventAttributes) wfEnd = ms(e);
    if (e.activityTaskScheduledEventAttributes) scheduledType.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType!.name!);
    if (e.activityTaskStartedEventAttributes) started.set(String(e.activityTaskStartedEventAttributes.scheduledEventId), ms(e));
    const end = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes;
    if (end) {
      const id = String(end.scheduledEventId);
      const d = ms(e) - (started.get(id) ?? ms(e));
      intervals.push([ms(e) - d, ms(e)]);
      activityMs += d;
      const t = scheduledType.get(id) ?? '?';
      perType.set(t, (perType.get(t) ?? 0) + d);
    }
  }
  await client.connection.close();
  const wall = wfEnd - wfStart;
  // Time during which at least one activity ran: the worker was never idle waiting on the workflow.
  intervals.sort((a, b) => a[0] - b[0]);
  let busy = 0;
  let cur: [number, number] | null = null;
  for (const iv of intervals) {
    if (cur && iv[0] <= cur[1]) cur[1] = Math.max(cur[1], iv[1]);
    else {
      if (cur) busy += cur[1] - cur[0];
      cur = [...iv];
    }
  }
  if (cur) busy += cur[1] - cur[0];
  const toPartial = (partialAt ?? readyAt) - t0;
  const toReady = readyAt - t0;
  console.log(`inputs: ${durationSec}s ${width}x${height}@30 + AAC, ladder ≤ ${height}p, x264 preset ${args.preset}, one worker on ${os.availableParallelism()} cores`);
  console.log(`workflow wall ${(wall / 1000).toFixed(1)} s; activity time ${(activityMs / 1000).toFixed(1)} s: ${[...perType].map(([t, d]) => `${t} ${(d / 1000).toFixed(1)}s`).join(', ')}`);
  console.log(`ratio activity time / workflow wall = ${(activityMs / wall).toFixed(3)} (goal >= 0.95; > 1 when activities overlap)`);
  console.log(`ratio busy time (>= 1 activity running) / workflow wall = ${(busy / wall).toFixed(3)}`);
  console.log(`time to PARTIALLY_READY ${(toPartial / 1000).toFixed(1)} s, to READY ${(toReady / 1000).toFixed(1)} s (from upload start)`);
  console.log(`ratio PARTIALLY_READY / READY = ${(toPartial / toReady).toFixed(3)} (goal <= 0.40)`);
} finally {
  await stack.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
