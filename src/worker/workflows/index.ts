// VideoProcessingWorkflow(videoId) owns a video's processing (seed 000: "Workflow owns processing,
// not APIs"). Deterministic code only: it imports activity *types*, never Node or native modules
// (enforced by test/unit/workflow-imports.test.ts).
import {
  ActivityFailure,
  ApplicationFailure,
  defineQuery,
  isCancellation,
  proxyActivities,
  setHandler,
  CancellationScope,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type { RenditionStatus, WorkflowStatus } from '../types.ts';

export const statusQuery = defineQuery<WorkflowStatus>('status');

const { prepareSource, markFailed, publish } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 5 },
});

const { transcode } = proxyActivities<Activities>({
  startToCloseTimeout: '2 hours',
  // A killed worker is noticed after this long without a heartbeat, and another takes over.
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 5 },
});

function failureOf(err: unknown): { code: string; message: string } {
  let e: unknown = err;
  if (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof ApplicationFailure) return { code: e.type ?? 'PROCESSING_FAILED', message: e.message };
  return { code: 'PROCESSING_FAILED', message: e instanceof Error ? e.message : String(e) };
}

export async function VideoProcessingWorkflow(videoId: string): Promise<WorkflowStatus> {
  const status: WorkflowStatus = { videoId, stage: 'PREPARING', renditions: [] };
  setHandler(statusQuery, () => status);
  try {
    const source = await prepareSource(videoId);
    status.renditions = source.renditions.map((r): RenditionStatus => ({ name: r.name, state: 'PENDING', attempts: 0, error: null }));
    status.stage = 'TRANSCODING';
    for (const r of status.renditions) r.state = 'PROCESSING';
    await transcode(videoId, source.renditions);
    for (const r of status.renditions) r.state = 'DONE';
    status.stage = 'PUBLISHING';
    await publish(videoId);
    status.stage = 'DONE';
    return status;
  } catch (err) {
    status.stage = 'FAILED';
    const failure = isCancellation(err) ? { code: 'CANCELLED', message: 'processing was cancelled' } : failureOf(err);
    // Record the failure even when cancelled: the cleanup must not be cancelled with the workflow.
    await CancellationScope.nonCancellable(() => markFailed(videoId, failure.code, failure.message));
    throw err;
  }
}
