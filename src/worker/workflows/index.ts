// VideoProcessingWorkflow(videoId) owns a video's processing (seed 000: "Workflow owns processing,
// not APIs"). Deterministic code only: it imports activity *types*, never Node or native modules
// (eslint rule in eslint.config.js).
//
// Pipeline: prepare (probe, plan GOP-aligned chunks, manifest in MinIO) -> encode the lowest rung
// over all chunks -> package it and publish a master with it alone (PARTIALLY_READY) -> encode the
// other rungs (one decode per chunk for all of them) -> package -> master with all (READY) ->
// thumbnails -> cleanup. Audio is encoded once, beside the first phase.
//
// Retries of chunk encodes are done here, not by Temporal's retry policy, so the workflow knows
// which rendition is RETRYING and passes the attempt number down (checkpoints make a retry redo
// only what failed).
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  isCancellation,
  proxyActivities,
  setHandler,
  sleep,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type {
  EncodeFailureDetails,
  PackagedRendition,
  PlannedRendition,
  RenditionState,
  RenditionStatus,
  WorkflowStatus,
} from '../types.ts';

export const statusQuery = defineQuery<WorkflowStatus>('status');

/** Bounded retries of one chunk encode, with exponential backoff and a cap. */
export const ENCODE_RETRY = { maxAttempts: 5, initialMs: 1_000, factor: 2, maxMs: 30_000 } as const;

const defaultRetry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 5 };

const { prepareSource, packageRendition, publishMaster, thumbnails, cleanup, markFailed, recordRenditions } =
  proxyActivities<Activities>({ startToCloseTimeout: '30 minutes', heartbeatTimeout: '60 seconds', retry: defaultRetry });

const { encodeAudio } = proxyActivities<Activities>({
  startToCloseTimeout: '4 hours',
  heartbeatTimeout: '30 seconds',
  retry: defaultRetry,
});

const { encodeChunk } = proxyActivities<Activities>({
  startToCloseTimeout: '2 hours',
  // A SIGKILLed worker is noticed after this long without a heartbeat; another worker takes the
  // chunk and skips the checkpointed outputs.
  heartbeatTimeout: '20 seconds',
  // One attempt per call: the retry loop below owns retries and the RETRYING state.
  retry: { maximumAttempts: 1 },
  // On cancellation, wait until the native encode has really stopped: no orphaned work.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});

function failureOf(err: unknown): { code: string; message: string; nonRetryable: boolean; details?: EncodeFailureDetails } {
  let e: unknown = err;
  if (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof ApplicationFailure) {
    return {
      code: e.type ?? 'PROCESSING_FAILED',
      message: e.message,
      nonRetryable: Boolean(e.nonRetryable),
      details: e.details?.[0] as EncodeFailureDetails | undefined,
    };
  }
  return { code: 'PROCESSING_FAILED', message: e instanceof Error ? e.message : String(e), nonRetryable: false };
}

export async function VideoProcessingWorkflow(videoId: string): Promise<WorkflowStatus> {
  const status: WorkflowStatus = { videoId, stage: 'PREPARING', renditions: [] };
  setHandler(statusQuery, () => status);
  const byName = (name: string) => status.renditions.find((r) => r.name === name)!;

  /** Mirrors rendition states to PostgreSQL (idempotent upserts) for the API. */
  const mirror = (names: string[]) => recordRenditions(videoId, names.map((n) => ({ ...byName(n) })));
  const setState = (names: string[], state: RenditionState, error: string | null = null) => {
    for (const n of names) Object.assign(byName(n), { state, error: state === 'DONE' ? null : error ?? byName(n).error });
  };

  try {
    const prep = await prepareSource(videoId);
    status.renditions = prep.renditions.map(
      (r): RenditionStatus => ({ name: r.name, state: 'PENDING', attempts: 0, error: null, chunksDone: 0, chunksTotal: prep.chunkCount }),
    );
    await mirror(prep.renditions.map((r) => r.name));
    status.stage = 'TRANSCODING';

    /** Encodes one chunk for some renditions, retrying only the renditions that failed. */
    async function encodeWithRetry(chunk: number, renditions: string[]): Promise<void> {
      let pending = renditions;
      for (let attempt = 1; ; attempt++) {
        for (const n of pending) byName(n).attempts = Math.max(byName(n).attempts, attempt);
        try {
          await encodeChunk(videoId, chunk, pending, attempt);
          for (const n of pending) byName(n).chunksDone++;
          return;
        } catch (err) {
          if (isCancellation(err)) throw err;
          const f = failureOf(err);
          const failed = f.details?.failedRenditions?.filter((n) => pending.includes(n)) ?? pending;
          for (const n of pending.filter((p) => !failed.includes(p))) byName(n).chunksDone++;
          if (f.nonRetryable || attempt >= ENCODE_RETRY.maxAttempts) {
            setState(failed, 'FAILED', f.message);
            await mirror(failed);
            throw err;
          }
          setState(failed, 'RETRYING', f.message);
          await mirror(failed);
          await sleep(Math.min(ENCODE_RETRY.initialMs * ENCODE_RETRY.factor ** (attempt - 1), ENCODE_RETRY.maxMs));
          setState(failed, 'PROCESSING');
          await mirror(failed);
          pending = failed;
        }
      }
    }

    /** All chunks of a phase, at most prep.concurrency in flight (bounded pending activities). */
    async function runPhase(renditions: PlannedRendition[]): Promise<void> {
      const names = renditions.map((r) => r.name);
      setState(names, 'PROCESSING');
      await mirror(names);
      let next = 0;
      let inFlight = 0;
      let firstError: unknown;
      const all: Promise<void>[] = [];
      while (next < prep.chunkCount && firstError === undefined) {
        await condition(() => inFlight < prep.concurrency || firstError !== undefined);
        if (firstError !== undefined) break;
        const chunk = next++;
        inFlight++;
        all.push(
          encodeWithRetry(chunk, names)
            .catch((err) => {
              firstError ??= err;
            })
            .finally(() => {
              inFlight--;
            }),
        );
      }
      await Promise.all(all);
      if (firstError !== undefined) throw firstError;
    }

    async function packageAll(renditions: PlannedRendition[]): Promise<PackagedRendition[]> {
      return Promise.all(renditions.map((r) => packageRendition(videoId, r.name)));
    }

    const [lowest, ...rest] = prep.renditions;
    const audioP = prep.hasAudio ? encodeAudio(videoId) : Promise.resolve(null);
    // Do not let an early audio failure go unhandled while the first phase runs.
    audioP.catch(() => {});

    await runPhase([lowest!]);
    const packaged = await packageAll([lowest!]);
    const audio = await audioP;
    setState([lowest!.name], 'DONE');
    await mirror([lowest!.name]);
    await publishMaster(videoId, packaged, audio, rest.length ? 'PARTIALLY_READY' : 'READY');

    if (rest.length) {
      await runPhase(rest);
      packaged.push(...(await packageAll(rest)));
      setState(rest.map((r) => r.name), 'DONE');
      await mirror(rest.map((r) => r.name));
      status.stage = 'PUBLISHING';
      await publishMaster(videoId, packaged, audio, 'READY');
    }
    status.stage = 'PUBLISHING';
    // Thumbnails are part of a finished video, but a failure there must not unpublish it.
    await thumbnails(videoId).catch(() => undefined);
    await cleanup(videoId);
    status.stage = 'DONE';
    return status;
  } catch (err) {
    status.stage = 'FAILED';
    const failure = isCancellation(err) ? { code: 'CANCELLED', message: 'processing was cancelled' } : failureOf(err);
    // Record the failure and drop intermediate objects even when cancelled: this must not be
    // cancelled with the workflow.
    await CancellationScope.nonCancellable(async () => {
      await markFailed(videoId, failure.code, failure.message);
      await cleanup(videoId);
    });
    throw err;
  }
}
