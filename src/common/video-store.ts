// Every write to `videos` and `renditions`, in one place: the API (create, PROCESSING, delete) and
// the worker's activities (plan, progress, publish, fail) call these. A state move names the states
// it may come from (video-state.ts), so a replayed or late move (a retried activity, a failure after
// READY) matches no row; the triggers of migrations/011_video_transitions.sql refuse any other move.
import type pg from 'pg';
import { withTransaction, type Queryable } from './db.ts';
import { renditionMovesInto, videoMovesInto, type RenditionState } from './video-state.ts';

/**
 * A verified upload's video, CREATED, inheriting the upload's owner and visibility (run in the
 * transaction that marks the upload UPLOADED). No-op when it exists already.
 */
export async function createVideo(db: Queryable, v: { videoId: string; uploadId: string; sourceKey: string; workflowId: string }): Promise<void> {
  await db.query(
    `INSERT INTO videos (video_id, upload_id, state, source_key, workflow_id, owner_key_id, private)
     SELECT $1, $2, 'CREATED', $3, $4, owner_key_id, private FROM uploads WHERE upload_id = $2
     ON CONFLICT DO NOTHING`,
    [v.videoId, v.uploadId, v.sourceKey, v.workflowId],
  );
}

/** CREATED -> PROCESSING (the workflow started, or its first activity ran); else a no-op. */
export async function markProcessing(db: Queryable, videoId: string): Promise<boolean> {
  const r = await db.query(`UPDATE videos SET state = 'PROCESSING', updated_at = now() WHERE video_id = $1 AND state = ANY($2)`, [
    videoId,
    videoMovesInto('PROCESSING'),
  ]);
  return (r.rowCount ?? 0) > 0;
}

/** The probe and the plan: the video's duration and source, one PENDING row per planned rendition. */
export async function recordPlan(
  pool: pg.Pool,
  videoId: string,
  plan: { durationSec: number; source: unknown; renditions: string[]; chunksTotal: number },
): Promise<void> {
  await withTransaction(pool, async (client) => {
    await client.query('UPDATE videos SET duration_sec = $2, source = $3, updated_at = now() WHERE video_id = $1', [
      videoId, plan.durationSec, JSON.stringify(plan.source),
    ]);
    for (const name of plan.renditions) {
      await client.query(
        `INSERT INTO renditions (video_id, name, state, chunks_total) VALUES ($1, $2, 'PENDING', $3)
         ON CONFLICT (video_id, name) DO UPDATE SET chunks_total = EXCLUDED.chunks_total`,
        [videoId, name, plan.chunksTotal],
      );
    }
  });
}

/** One more chunk encoded for each of these renditions (progress only, no state move). */
export async function countChunkDone(db: Queryable, videoId: string, renditions: string[]): Promise<void> {
  await db.query(`UPDATE renditions SET chunks_done = chunks_done + 1, updated_at = now() WHERE video_id = $1 AND name = ANY($2)`, [
    videoId,
    renditions,
  ]);
}

export interface RenditionRecord {
  name: string;
  state: RenditionState;
  attempts: number;
  error: string | null;
  chunksTotal: number;
}

/**
 * Mirrors the workflow's rendition states (idempotent upserts). A move the table does not allow is
 * skipped rather than refused: while one chunk's retries are spent (FAILED) another chunk of the same
 * rendition may still report RETRYING, and the row keeps the FAILED it reached.
 */
export async function recordRenditions(db: Queryable, videoId: string, states: RenditionRecord[]): Promise<void> {
  for (const r of states) {
    await db.query(
      `INSERT INTO renditions (video_id, name, state, attempts, error, chunks_total) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (video_id, name) DO UPDATE SET state = EXCLUDED.state, attempts = GREATEST(renditions.attempts, EXCLUDED.attempts),
         error = EXCLUDED.error, chunks_total = EXCLUDED.chunks_total, updated_at = now()
       WHERE renditions.state = ANY($7)`,
      [videoId, r.name, r.state, r.attempts, r.error, r.chunksTotal, [r.state, ...renditionMovesInto(r.state)]],
    );
  }
}

export interface PublishedRendition {
  name: string;
  width: number;
  height: number;
  bandwidth: number;
}

/**
 * A master with these renditions is out: they are DONE and the video moves to PARTIALLY_READY or
 * READY, in one transaction. Never backwards: a replayed PARTIALLY_READY after READY is a no-op.
 * Returns whether the video moved.
 */
export async function publish(pool: pg.Pool, videoId: string, renditions: PublishedRendition[], state: 'PARTIALLY_READY' | 'READY'): Promise<boolean> {
  return withTransaction(pool, async (client) => {
    for (const r of renditions) {
      await client.query(
        `UPDATE renditions SET state = 'DONE', width = $3, height = $4, bandwidth = $5, error = NULL, updated_at = now()
          WHERE video_id = $1 AND name = $2 AND state = ANY($6)`,
        [videoId, r.name, r.width, r.height, r.bandwidth, ['DONE', ...renditionMovesInto('DONE')]],
      );
    }
    const moved = await client.query(
      `UPDATE videos SET state = $2, failure_code = NULL, failure_message = NULL, updated_at = now()
        WHERE video_id = $1 AND state = ANY($3)`,
      [videoId, state, videoMovesInto(state)],
    );
    return (moved.rowCount ?? 0) > 0;
  });
}

/**
 * -> FAILED with a code, and its unfinished renditions with it. Only from a state that may fail: a
 * video already READY (a failure in thumbnails or cleanup) or FAILED (the first failure is kept) is
 * left as it is. Returns whether the video moved.
 */
export async function markFailed(pool: pg.Pool, videoId: string, code: string, message: string): Promise<boolean> {
  return withTransaction(pool, async (client) => {
    const moved = await client.query(
      `UPDATE videos SET state = 'FAILED', failure_code = $2, failure_message = $3, updated_at = now()
        WHERE video_id = $1 AND state = ANY($4)`,
      [videoId, code, message, videoMovesInto('FAILED')],
    );
    if (!moved.rowCount) return false;
    await client.query(
      `UPDATE renditions SET state = 'FAILED', error = COALESCE(error, $2), updated_at = now() WHERE video_id = $1 AND state = ANY($3)`,
      [videoId, message, ['FAILED', ...renditionMovesInto('FAILED')]],
    );
    return true;
  });
}

/**
 * Removes the video and its renditions (cascade), from any state; the trigger leaves a tombstone so
 * the id cannot come back. Returns the video's upload id, or null when there was no such video.
 */
export async function deleteVideo(db: Queryable, videoId: string): Promise<{ uploadId: string } | null> {
  const { rows } = await db.query<{ upload_id: string }>(`DELETE FROM videos WHERE video_id = $1 RETURNING upload_id`, [videoId]);
  return rows[0] ? { uploadId: rows[0].upload_id } : null;
}

