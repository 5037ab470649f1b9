// A two-hour source (1,800 four-second segments, three renditions) planned and run through the real
// workflow code on the real Temporal server, with instant activities: the subject is the workflow's
// own footprint (history size, activities in flight), which must stay far below Temporal's limits.
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LADDER } from '../../src/common/ladder.ts';
import { DEFAULT_SETTINGS, chunkTargetFor, type Activities } from '../../src/worker/activities/index.ts';
import type { PackagedRendition } from '../../src/worker/types.ts';
import { stackConfig } from '../support/client.ts';
import { uniqueQueue } from '../support/workers.ts';

// Temporal's defaults: history is cut off at 51,200 events (warned at 10,240); at most 2,000
// pending activities per workflow.
const HISTORY_WARN = 10_240;

describe('workflow at scale', () => {
  it('plans a two-hour source into coarse chunks and stays well inside the history limits', async () => {
    const cfg = stackConfig();
    const durationSec = 2 * 3600;
    const target = chunkTargetFor(durationSec, DEFAULT_SETTINGS);
    const chunkCount = Math.ceil(durationSec / target);
    expect(durationSec / DEFAULT_SETTINGS.segmentDurationSec).toBe(1800);
    expect(target % DEFAULT_SETTINGS.segmentDurationSec).toBe(0); // whole segments per chunk
    expect(chunkCount).toBeLessThanOrEqual(DEFAULT_SETTINGS.maxChunks);

    let inFlight = 0;
    let maxInFlight = 0;
    let encodes = 0;
    const packaged = (name: string): PackagedRendition => ({
      name, width: 640, height: 360, bandwidth: 1, averageBandwidth: 1, codecs: 'avc1.64001e', frameRate: 25, playlist: `${name}/index.m3u8`,
    });
    const stubs: Partial<Activities> = {
      prepareSource: async () => ({
        durationSec, width: 1920, height: 1080, hasAudio: true, renditions: DEFAULT_LADDER, chunkCount,
        segmentDurationSec: DEFAULT_SETTINGS.segmentDurationSec, concurrency: DEFAULT_SETTINGS.concurrency,
      }),
      encodeChunk: async (_v, _c, names) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        encodes++;
        await new Promise((r) => setTimeout(r, 1));
        inFlight--;
        return { encoded: names, skipped: [] };
      },
      encodeAudio: async () => null,
      packageRendition: async (_v, name) => packaged(name),
      publishMaster: async () => {},
      thumbnails: async () => {},
      recordRenditions: async () => {},
      cleanup: async () => {},
      markFailed: async () => {},
    };

    const taskQueue = uniqueQueue('scale');
    const connection = await NativeConnection.connect({ address: cfg.temporal.address });
    const worker = await Worker.create({
      connection,
      namespace: cfg.temporal.namespace,
      taskQueue,
      workflowsPath: fileURLToPath(new URL('../../src/worker/workflows/index.ts', import.meta.url)),
      activities: stubs,
      maxConcurrentActivityTaskExecutions: 50,
    });
    const client = new Client({ connection: await Connection.connect({ address: cfg.temporal.address }), namespace: cfg.temporal.namespace });
    try {
      const history = await worker.runUntil(async () => {
        const handle = await client.workflow.start('VideoProcessingWorkflow', { taskQueue, workflowId: `scale-${taskQueue}`, args: ['vid_scaletestaaaaaaaaaaaa'] });
        await handle.result();
        return handle.fetchHistory();
      });
      const events = history.events?.length ?? 0;
      process.stderr.write(`[scale] 2 h source: ${chunkCount} chunks of ${target} s, ${encodes} chunk encodes, ${events} history events, max ${maxInFlight} encodes in flight\n`);
      // One encode per chunk for the lowest rung, one per chunk for the others together.
      expect(encodes).toBe(2 * chunkCount);
      expect(maxInFlight).toBeLessThanOrEqual(DEFAULT_SETTINGS.concurrency);
      expect(events).toBeLessThan(HISTORY_WARN);
    } finally {
      await client.connection.close();
      await connection.close();
    }
  });
});
