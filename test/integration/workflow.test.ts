// VideoProcessingWorkflow on real Temporal, MinIO, PostgreSQL and the native engine, driven by worker
// processes of our own (own task queue, fault injection where the story needs a crash).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { CreateBucketCommand, ListObjectVersionsCommand, PutBucketVersioningCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type Pool } from '../../src/common/db.ts';
import { newUploadId, newVideoId, workflowIdFor } from '../../src/common/ids.ts';
import { keys } from '../../src/common/keys.ts';
import { createS3 } from '../../src/common/s3.ts';
import { makeClip } from '../fixtures/generate.ts';
import { authHeaders, controlService, getJson, sha256File, stackConfig, tusUpload, until } from '../support/client.ts';
import { startWorker, uniqueQueue, type TestWorker } from '../support/workers.ts';

const run = promisify(execFile);
const cfg = stackConfig();
let pool: Pool;
let connection: Connection;
let temporal: Client;
const s3 = createS3(cfg);
const workers: TestWorker[] = [];

// Small chunks and a fast preset keep the encodes short on a 2-core machine.
const FAST = { VORA_CHUNK_SEC: '4', VORA_SEGMENT_SEC: '2', VORA_X264_PRESET: 'ultrafast' };

beforeAll(async () => {
  pool = createPool(cfg, 4);
  connection = await Connection.connect({ address: cfg.temporal.address });
  temporal = new Client({ connection, namespace: cfg.temporal.namespace });
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop('SIGKILL')));
  await connection?.close();
  await pool?.end();
  s3.destroy();
});

/** A finished upload and its CREATED video, as the API leaves them, without going through TUS. */
async function seedVideo(file: string, bucket = cfg.s3.bucket): Promise<string> {
  const videoId = newVideoId();
  const uploadId = newUploadId();
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: keys.source(videoId), Body: fs.readFileSync(file) }));
  await pool.query(
    `INSERT INTO uploads (upload_id, status, bytes_uploaded, size, filename, sha256_actual, object_key) VALUES ($1, 'UPLOADED', $2, $2, 'clip.mp4', $3, $4)`,
    [uploadId, fs.statSync(file).size, sha256File(file), keys.source(videoId)],
  );
  await pool.query(`INSERT INTO videos (video_id, upload_id, state, source_key, workflow_id) VALUES ($1, $2, 'CREATED', $3, $4)`, [
    videoId, uploadId, keys.source(videoId), workflowIdFor(videoId),
  ]);
  return videoId;
}

async function startWorkflow(videoId: string, taskQueue: string) {
  return temporal.workflow.start('VideoProcessingWorkflow', { workflowId: workflowIdFor(videoId), taskQueue, args: [videoId] });
}

interface View {
  state: string;
  failure: { code: string; message: string } | null;
  renditions: Array<{ name: string; state: string; attempts: number; error: string | null }>;
}
const view = async (videoId: string) => (await getJson<View>(`${cfg.apiUrl}/v1/videos/${videoId}`)).body;
const rendition = (v: View, name: string) => v.renditions.find((r) => r.name === name);

/** (chunk, rendition) -> number of real (not skipped) encodes. */
async function encodeCounts(videoId: string): Promise<Map<string, number>> {
  const { rows } = await pool.query<{ chunk: number; rendition: string; n: string }>(
    `SELECT chunk, rendition, count(*) AS n FROM encode_log WHERE video_id = $1 AND NOT skipped GROUP BY 1, 2`,
    [videoId],
  );
  return new Map(rows.map((r) => [`${r.chunk}/${r.rendition}`, Number(r.n)]));
}

async function variantCount(masterUrl: string): Promise<number> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'program=program_id', '-of', 'json', masterUrl]);
  return (JSON.parse(stdout).programs ?? []).length;
}

describe('VideoProcessingWorkflow', () => {
  it("follows the seed's story: 720p crashes once, is retried alone, the video ends READY", async () => {
    const queue = uniqueQueue('story');
    const faults = [
      { at: 'encode', rendition: '720p', chunk: 0, attempt: 1, action: 'throw' },
      // Holds the second phase open long enough to play the PARTIALLY_READY master.
      { at: 'encode', rendition: '1080p', chunk: 0, attempt: 1, action: 'delay', ms: 8000 },
    ];
    workers.push(await startWorker(queue, { ...FAST, VORA_FAULT_INJECTION: 'enabled', VORA_FAULTS: JSON.stringify(faults) }));
    const file = await makeClip({ durationSec: 8, width: 1920, height: 1080, fps: 25, audio: true });
    const videoId = await seedVideo(file);
    const handle = await startWorkflow(videoId, queue);

    // Watch the states closely: RETRYING lasts about one backoff interval.
    const seen: string[] = [];
    let atRetry: View | undefined;
    let partialVariants: number | undefined;
    const deadline = Date.now() + 240_000;
    let v = await view(videoId);
    while (v.state !== 'READY' && v.state !== 'FAILED' && Date.now() < deadline) {
      if (seen[seen.length - 1] !== v.state) seen.push(v.state);
      if (!atRetry && rendition(v, '720p')?.state === 'RETRYING') atRetry = v;
      if (v.state === 'PARTIALLY_READY' && partialVariants === undefined) {
        // The gateway learns the new state within its short state cache (about 2 s).
        partialVariants = await until('PARTIALLY_READY master playable', () => variantCount(`${cfg.playbackUrl}/hls/${videoId}/master.m3u8`), 15_000);
      }
      await new Promise((r) => setTimeout(r, 100));
      v = await view(videoId);
    }
    seen.push(v.state);
    expect(v.state, JSON.stringify(v.failure)).toBe('READY');
    await handle.result();

    // The moment of the crash, as the API showed it.
    expect(atRetry, `states seen: ${seen.join(' -> ')}`).toBeDefined();
    expect(rendition(atRetry!, '360p')?.state).toBe('DONE');
    expect(rendition(atRetry!, '720p')?.error).toMatch(/encoder crashed for 720p on chunk 0/);
    expect(['PENDING', 'PROCESSING']).toContain(rendition(atRetry!, '1080p')?.state);

    // PARTIALLY_READY came first, and its master played with only the finished rendition.
    expect(seen).toEqual(['CREATED', 'PROCESSING', 'PARTIALLY_READY', 'READY'].filter((s) => seen.includes(s)));
    expect(seen).toContain('PARTIALLY_READY');
    expect(partialVariants).toBe(1);
    expect(await variantCount(`${cfg.playbackUrl}/hls/${videoId}/master.m3u8?final`)).toBe(3);

    // Exactly one encode per (chunk, rendition), plus one for the crashed one.
    const counts = await encodeCounts(videoId);
    const { rows: chunkRows } = await pool.query<{ chunks_total: number }>(`SELECT chunks_total FROM renditions WHERE video_id = $1 LIMIT 1`, [videoId]);
    const chunks = chunkRows[0]!.chunks_total;
    expect(chunks).toBeGreaterThanOrEqual(2);
    for (let c = 0; c < chunks; c++) {
      for (const r of ['360p', '720p', '1080p']) expect(counts.get(`${c}/${r}`), `${c}/${r}`).toBe(c === 0 && r === '720p' ? 2 : 1);
    }
    const final = await view(videoId);
    expect(rendition(final, '720p')).toMatchObject({ state: 'DONE', attempts: 2, error: null });
    expect(rendition(final, '360p')).toMatchObject({ state: 'DONE', attempts: 1 });

    const decode = await run('ffmpeg', ['-v', 'error', '-i', `${cfg.playbackUrl}/hls/${videoId}/master.m3u8`, '-map', '0', '-f', 'null', '-']);
    expect(decode.stderr.trim()).toBe('');
  });

  it('writes no object twice, even with a crashed and retried rendition (versioned bucket)', async () => {
    // A bucket with versioning: a second PUT of any key would leave a second version.
    const bucket = `vora-once-${Date.now().toString(36)}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    const queue = uniqueQueue('once');
    const faults = [{ at: 'encode', rendition: '720p', chunk: 1, attempt: 1, action: 'throw' }];
    workers.push(await startWorker(queue, { ...FAST, VORA_S3_BUCKET: bucket, VORA_FAULT_INJECTION: 'enabled', VORA_FAULTS: JSON.stringify(faults) }));
    const file = await makeClip({ durationSec: 8, width: 1280, height: 720, fps: 25, audio: true });
    const videoId = await seedVideo(file, bucket);
    const handle = await startWorkflow(videoId, queue);
    await handle.result();
    expect((await view(videoId)).state).toBe('READY');
    expect((await encodeCounts(videoId)).get('1/720p')).toBe(2); // the crash really happened

    const versions = new Map<string, number>();
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    do {
      const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
      for (const v of page.Versions ?? []) versions.set(v.Key!, (versions.get(v.Key!) ?? 0) + 1);
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      versionMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
    } while (keyMarker);
    const hls = [...versions.keys()].filter((k) => k.startsWith(keys.hlsPrefix(videoId)));
    expect(hls.some((k) => k.endsWith('.m4s'))).toBe(true);
    // The master is rewritten on purpose (PARTIALLY_READY, then READY), which also shows that
    // rewrites are visible here; everything else was written once.
    expect(versions.get(keys.hls(videoId, 'master.m3u8'))).toBe(2);
    const twice = [...versions].filter(([k, n]) => n > 1 && k !== keys.hls(videoId, 'master.m3u8'));
    expect(twice).toEqual([]);
  });

  it('survives SIGKILL of the worker that is encoding: another takes over, finished chunks are not redone', async () => {
    const queue = uniqueQueue('kill');
    const a = await startWorker(queue, { ...FAST, VORA_CHUNK_SEC: '2' });
    const b = await startWorker(queue, { ...FAST, VORA_CHUNK_SEC: '2' });
    workers.push(a, b);
    const file = await makeClip({ durationSec: 12, width: 1280, height: 720, fps: 25, audio: false });
    const videoId = await seedVideo(file);
    const handle = await startWorkflow(videoId, queue);

    // Once some chunk is committed and another encode is running, kill the worker running it.
    const victimPid = await until('a committed chunk and an encode in flight', async () => {
      const done = await encodeCounts(videoId);
      if (!done.size) return undefined;
      const desc = await handle.describe();
      const running = desc.raw.pendingActivities?.find((p) => p.activityType?.name === 'encodeChunk' && p.lastWorkerIdentity);
      const pid = running ? Number(String(running.lastWorkerIdentity).split('@')[0]) : NaN;
      return [a.pid, b.pid].includes(pid) ? pid : undefined;
    }, 120_000);
    const before = await encodeCounts(videoId);
    process.kill(victimPid, 'SIGKILL');

    await handle.result();
    expect((await view(videoId)).state).toBe('READY');
    const after = await encodeCounts(videoId);
    // Every (chunk, rendition) was encoded exactly once: what was committed before the kill was skipped.
    for (const [k, n] of after) expect(n, k).toBe(1);
    for (const k of before.keys()) expect(after.get(k)).toBe(1);
    // The killed encode was retried (attempt 2) on the surviving worker.
    const { rows } = await pool.query<{ worker: string; attempt: number }>(`SELECT worker, attempt FROM encode_log WHERE video_id = $1 AND attempt > 1`, [videoId]);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => !r.worker.endsWith(`:${victimPid}`))).toBe(true);
  });

  it('drains on SIGTERM: the worker stops polling, finishes its in-flight encode and exits cleanly', async () => {
    const queue = uniqueQueue('drain');
    const first = await startWorker(queue, FAST);
    workers.push(first);
    const file = await makeClip({ durationSec: 8, width: 1280, height: 720, fps: 25, audio: false });
    const videoId = await seedVideo(file);
    const handle = await startWorkflow(videoId, queue);
    await until('encode in flight', async () => {
      const desc = await handle.describe();
      return desc.raw.pendingActivities?.some((p) => p.activityType?.name === 'encodeChunk' && p.lastStartedTime) ? true : undefined;
    }, 120_000);
    first.proc.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    // What it was encoding was finished and committed before it left.
    const drained = await encodeCounts(videoId);
    expect(drained.size).toBeGreaterThan(0);

    workers.push(await startWorker(queue, FAST));
    await handle.result();
    expect((await view(videoId)).state).toBe('READY');
    for (const [k, n] of await encodeCounts(videoId)) expect(n, k).toBe(1);
  });

  it('resumes after the Temporal server is stopped and started again on the same database', async () => {
    const queue = uniqueQueue('restart');
    workers.push(await startWorker(queue, FAST));
    const file = await makeClip({ durationSec: 8, width: 1280, height: 720, fps: 25, audio: true });
    const videoId = await seedVideo(file);
    const handle = await startWorkflow(videoId, queue);
    await until('first chunk committed', async () => ((await encodeCounts(videoId)).size ? true : undefined), 120_000);
    const before = await encodeCounts(videoId);
    expect((await view(videoId)).state).not.toBe('READY'); // the restart happens mid-workflow

    await controlService('temporal', 'stop');
    await controlService('temporal', 'start');

    const done = await until('video READY after the restart', async () => {
      const v = await view(videoId);
      if (v.state === 'FAILED') throw new Error(JSON.stringify(v.failure));
      return v.state === 'READY' ? v : undefined;
    }, 240_000).catch(async (err: Error) => {
      // Say where it stuck: the workflow's pending activities after the restart.
      const desc = await temporal.workflow.getHandle(handle.workflowId).describe().catch((e: Error) => e.message);
      throw new Error(`${err.message}; workflow: ${JSON.stringify(typeof desc === 'string' ? desc : desc.raw.pendingActivities)}`);
    });
    expect(done.state).toBe('READY');
    const fresh = new Client({ connection: await Connection.connect({ address: cfg.temporal.address }), namespace: cfg.temporal.namespace });
    // READY is published before thumbnails and cleanup: wait for the workflow itself to finish.
    await fresh.workflow.getHandle(handle.workflowId).result();
    expect((await fresh.workflow.getHandle(handle.workflowId).describe()).status.name).toBe('COMPLETED');
    const after = await encodeCounts(videoId);
    for (const [k, n] of after) expect(n, k).toBe(1);
    for (const k of before.keys()) expect(after.get(k)).toBe(1);
    await fresh.connection.close();
  });

  it('deleting a video cancels its workflow and stops the native encode mid-chunk', async () => {
    const queue = uniqueQueue('cancel');
    // One long 1080p chunk at a slow preset: the encode is surely running when the delete arrives.
    const ladder = JSON.stringify([{ name: '1080p', height: 1080, videoBitrate: 5_000_000 }]);
    workers.push(await startWorker(queue, { VORA_CHUNK_SEC: '16', VORA_X264_PRESET: 'medium', VORA_LADDER: ladder }));
    const file = await makeClip({ durationSec: 16, width: 1920, height: 1080, fps: 30, audio: false });
    const videoId = await seedVideo(file);
    const handle = await startWorkflow(videoId, queue);
    await until('encode in flight', async () => {
      const desc = await handle.describe();
      return desc.raw.pendingActivities?.some((p) => p.activityType?.name === 'encodeChunk' && p.lastStartedTime) ? true : undefined;
    }, 120_000);

    const t0 = Date.now();
    const res = await fetch(`${cfg.apiUrl}/v1/videos/${videoId}`, { method: 'DELETE', headers: authHeaders() });
    expect(res.status).toBeLessThan(300);
    // The workflow waits for the activity to acknowledge cancellation, so when it has closed,
    // the native encode has stopped.
    const err = await handle.result().then(() => null, (e: Error) => e);
    expect(err?.name).toBe('WorkflowFailedError');
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    expect(Date.now() - t0).toBeLessThan(15_000);
    // The encode was aborted, not finished: no output of that chunk was logged.
    expect((await encodeCounts(videoId)).size).toBe(0);
    expect((await getJson(`${cfg.apiUrl}/v1/videos/${videoId}`)).status).toBe(404);
  });

  it('fails a non-media upload once, with the probe code, without a retry storm', async () => {
    const file = `${fs.mkdtempSync('/tmp/vora-bad-')}/random.mp4`;
    fs.writeFileSync(file, Buffer.from(Array.from({ length: 256 * 1024 }, (_, i) => (i * 7919 + 13) % 251)));
    const uploadId = await tusUpload(cfg.apiUrl, file);
    const videoId = await until('video id', async () => (await getJson(`${cfg.apiUrl}/v1/uploads/${uploadId}`)).body.videoId ?? undefined);
    const v = await until('FAILED', async () => {
      const x = await view(videoId);
      return x.state === 'FAILED' ? x : undefined;
    });
    expect(v.failure?.code).toBe('NOT_MEDIA');
    const history = await temporal.workflow.getHandle(workflowIdFor(videoId)).fetchHistory();
    const prepareAttempts = (history.events ?? []).filter(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'prepareSource',
    ).length;
    expect(prepareAttempts).toBe(1);
    const started = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt);
    // prepareSource ran once (attempt 1), then markFailed.
    expect(Math.max(...started.map((a) => a ?? 0))).toBe(1);
  });
});
