// What happens once the last byte of an upload is stored (tus onUploadFinish), and the reconciler
// that finishes the job after a crash. Every step is idempotent and the order is chosen so that a
// crash between any two steps, or two runs at once, still ends with exactly one video and one
// workflow:
//   1. upload row says UPLOADED already?  -> skip to 4 (the temp object may be gone by then)
//   2. stream the temp object, sha256 it; client's sha256 differs -> upload FAILED CHECKSUM_MISMATCH
//   3. (no copy) the verified tus object `uploads/<uploadId>` stays where it is and becomes the
//      video's source (videos.source_key; the worker reads that column). A server-side copy to
//      another key would write the whole file a second time (bench/upload.ts: about half the
//      upload's throughput at 1 GiB).
//   4. ONE transaction: upload UPLOADED + video CREATED (video id derived from the upload id, so a
//      second run inserts nothing: ON CONFLICT DO NOTHING); the video takes the upload's owner and
//      private flag
//   (dedup=1 in the metadata: before 3, a live video of the same owner with this sha256 makes the
//   upload UPLOADED with that video's id, and steps 3-6 are skipped: no video, no workflow, and the
//   uploaded object is removed)
//   5. start VideoProcessingWorkflow with a fixed workflow id (USE_EXISTING while it runs,
//      REJECT_DUPLICATE after it closed: a repeated finish never starts a second one)
//   6. video CREATED -> PROCESSING, only if still CREATED (the worker may have moved it already)
// Step 5 failing (Temporal down) does not fail the upload: the video stays CREATED and the
// reconciler (startup + every few seconds) starts its workflow later.
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { workflowIdFor } from '../common/ids.ts';
import { markProcessing } from '../common/video-store.ts';
import { ApiError } from './errors.ts';
import { deleteKeys, hashObject, isNotFound, objectSize } from './objects.ts';
import * as repo from './repo.ts';
import type { ApiContext } from './context.ts';

export const WORKFLOW_TYPE = 'VideoProcessingWorkflow';

/** One upload makes at most one video: its id is the upload's, with the `vid_` prefix. */
export function videoIdForUpload(uploadId: string): string {
  return `vid_${uploadId.slice('upl_'.length)}`;
}

type Finalized = { videoId: string; workflowStarted: boolean; deduplicated?: boolean };

/**
 * Runs finalize for one upload at a time across processes (a PostgreSQL advisory lock on a
 * connection held for the duration): hashing a 20 GiB file takes minutes, and the reconciler must
 * not start a second pass over it meanwhile. `wait`: the tus hook queues behind a running pass (and
 * then finds the upload UPLOADED); `skip`: the reconciler leaves a busy upload alone (-> null).
 */
export async function finalizeUpload(ctx: ApiContext, uploadId: string, mode: 'wait' | 'skip' = 'wait'): Promise<Finalized | null> {
  const client = await ctx.lockPool.connect();
  const key = `vora-finalize:${uploadId}`;
  try {
    if (mode === 'skip') {
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [key]);
      if (!rows[0]?.ok) return null;
    } else {
      await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key]);
    }
    try {
      return await finalizeLocked(ctx, uploadId);
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]).catch(() => {});
    }
  } finally {
    client.release();
  }
}

async function finalizeLocked(ctx: ApiContext, uploadId: string): Promise<Finalized> {
  const { cfg, pool, s3, log } = ctx;
  const row = await repo.getUpload(pool, uploadId);
  if (!row) throw new ApiError('UPLOAD_NOT_FOUND', `upload ${uploadId} not found`);
  if (row.status === 'FAILED') {
    throw new ApiError(row.error_code === 'CHECKSUM_MISMATCH' ? 'CHECKSUM_MISMATCH' : 'UPLOAD_FAILED', row.error_message ?? 'upload failed');
  }
  if (row.status === 'EXPIRED') throw new ApiError('UPLOAD_GONE', `upload ${uploadId} expired`);
  const videoId = videoIdForUpload(uploadId);
  if (row.status === 'UPLOADED' && row.dedup && row.video_id !== videoId) {
    // Finished before as a duplicate: it made no video and starts no workflow.
    if (!row.video_id) throw new ApiError('VIDEO_NOT_FOUND', `upload ${uploadId} resolved to a video that was deleted since`);
    return { videoId: row.video_id, workflowStarted: false, deduplicated: true };
  }

  if (row.status !== 'UPLOADED') {
    const tempKey = row.object_key!;
    let digest: { sha256: string; size: number };
    const streamed = ctx.streamedDigests.get(uploadId);
    ctx.streamedDigests.delete(uploadId);
    try {
      // Hashed while it streamed in (every byte, in order, through this process), or read back.
      const size = streamed && row.size !== null && streamed.offset === Number(row.size) ? await objectSize(s3, cfg.s3.bucket, tempKey) : null;
      digest =
        streamed && size === streamed.offset ? { sha256: streamed.hash.digest('hex'), size } : await hashObject(s3, cfg.s3.bucket, tempKey);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      // Temp object gone but not UPLOADED: someone else finished concurrently? Look again.
      const again = await repo.getUpload(pool, uploadId);
      if (again?.status === 'UPLOADED') return finalizeLocked(ctx, uploadId);
      throw new ApiError('UPLOAD_NOT_FOUND', `the bytes of upload ${uploadId} are not in the store`);
    }
    if (row.size !== null && Number(row.size) !== digest.size) {
      throw new ApiError('INTERNAL', `upload ${uploadId}: stored ${digest.size} bytes, expected ${row.size}`);
    }
    if (row.sha256_expected && row.sha256_expected !== digest.sha256) {
      const message = `sha256 of the uploaded file is ${digest.sha256}, the client said ${row.sha256_expected}`;
      await repo.failUpload(pool, uploadId, 'CHECKSUM_MISMATCH', message);
      await deleteKeys(s3, cfg.s3.bucket, [tempKey]).catch(() => {});
      log.warn({ uploadId }, message);
      throw new ApiError('CHECKSUM_MISMATCH', message);
    }
    const complete = async () => {
      if (row.dedup && row.owner_key_id) {
        const existing = await repo.findDuplicateVideo(pool, row.owner_key_id, digest.sha256, uploadId);
        if (existing) {
          const st = await repo.completeUploadAsDuplicate(pool, { uploadId, size: digest.size, sha256: digest.sha256, videoId: existing });
          return { status: st, duplicateOf: existing };
        }
      }
      const st = await repo.completeUpload(pool, {
        uploadId,
        videoId,
        size: digest.size,
        sha256: digest.sha256,
        sourceKey: tempKey,
        workflowId: workflowIdFor(videoId),
      });
      return { status: st, duplicateOf: null };
    };
    // Two dedup uploads of one file by one owner finishing at once: one makes the video, the other
    // finds it (one lock per owner and digest).
    const { status, duplicateOf } =
      row.dedup && row.owner_key_id ? await withAdvisoryLock(ctx, `vora-dedup:${row.owner_key_id}:${digest.sha256}`, complete) : await complete();
    if (status !== 'UPLOADED') {
      throw new ApiError(status === 'EXPIRED' ? 'UPLOAD_GONE' : 'UPLOAD_FAILED', `upload ${uploadId} is ${status}`);
    }
    if (duplicateOf) {
      // Nothing of this upload is kept: the existing video's source already has these bytes.
      await deleteKeys(s3, cfg.s3.bucket, [tempKey]).catch((err) => log.warn({ err, uploadId }, 'could not delete temp object'));
      log.info({ uploadId, videoId: duplicateOf, size: digest.size }, 'upload verified; duplicate of an existing video');
      return { videoId: duplicateOf, workflowStarted: false, deduplicated: true };
    }
    // The stored object is the source now (the tus .info beside it stays, so a HEAD still answers
    // offset == length; DELETE /v1/videos/{id} removes both).
    log.info({ uploadId, videoId, size: digest.size, hashedWhileStreaming: Boolean(streamed) }, 'upload verified; video created');
  }
  return finishVideo(ctx, videoId);
}

async function withAdvisoryLock<T>(ctx: ApiContext, key: string, fn: () => Promise<T>): Promise<T> {
  const client = await ctx.lockPool.connect();
  try {
    await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key]);
    try {
      return await fn();
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]).catch(() => {});
    }
  } finally {
    client.release();
  }
}

async function finishVideo(ctx: ApiContext, videoId: string): Promise<Finalized> {
  try {
    await startWorkflow(ctx, videoId);
    return { videoId, workflowStarted: true };
  } catch (err) {
    ctx.log.warn({ err, videoId }, 'could not start the workflow yet; the reconciler will retry');
    return { videoId, workflowStarted: false };
  }
}

export async function startWorkflow(ctx: ApiContext, videoId: string): Promise<void> {
  try {
    await ctx.temporal.workflow.start(WORKFLOW_TYPE, {
      workflowId: workflowIdFor(videoId),
      taskQueue: ctx.cfg.temporal.taskQueue,
      args: [videoId],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
    });
  } catch (err) {
    // Already ran (and closed) under this id: it is this video's one workflow; nothing to start.
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
  await markProcessing(ctx.pool, videoId);
}

/**
 * Finishes what a crash interrupted: uploads whose bytes are all stored but never finalized, and
 * videos still CREATED (workflow never confirmed started). Safe to run at any time, concurrently.
 */
export async function reconcile(ctx: ApiContext): Promise<{ finalized: number; started: number }> {
  let finalized = 0;
  let started = 0;
  for (const uploadId of await repo.uploadsAwaitingFinish(ctx.pool, ctx.opts.reconcileMinAgeMs)) {
    try {
      if (await finalizeUpload(ctx, uploadId, 'skip')) finalized++;
    } catch (err) {
      ctx.log.warn({ err, uploadId }, 'reconcile: could not finalize upload');
    }
  }
  for (const videoId of await repo.videosAwaitingWorkflow(ctx.pool)) {
    try {
      await startWorkflow(ctx, videoId);
      started++;
    } catch (err) {
      ctx.log.warn({ err, videoId }, 'reconcile: could not start workflow');
    }
  }
  return { finalized, started };
}
