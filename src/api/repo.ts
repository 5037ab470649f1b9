// SQL for uploads, and the API's reads of videos. Every upload status change names the states it may
// come from (states.ts), so a move that is not allowed updates no row instead of going back; the
// trigger in migrations/002_upload_transitions.sql refuses it as well. Writes to videos and
// renditions are src/common/video-store.ts's.
import type pg from 'pg';
import { withTransaction } from '../common/db.ts';
import type { VideoState } from '../common/video-state.ts';
import { createVideo, deleteVideo } from '../common/video-store.ts';
import { VIDEO_COLUMNS, type VideoRow } from '../common/video-view.ts';
import { uploadSourcesFor, type UploadState } from './states.ts';

type Db = pg.Pool | pg.PoolClient;

export interface UploadRow {
  upload_id: string;
  status: UploadState;
  bytes_uploaded: string; // bigint
  size: string | null;
  filename: string | null;
  filetype: string | null;
  sha256_expected: string | null;
  sha256_actual: string | null;
  object_key: string | null;
  error_code: string | null;
  error_message: string | null;
  created_at: Date;
  updated_at: Date;
  owner_key_id: string | null;
  private: boolean;
  dedup: boolean;
  dedup_video_id: string | null;
  /** The upload's own video, or (dedup) the existing one it resolved to. */
  video_id: string | null;
}

export type { RenditionRow, VideoRow } from '../common/video-view.ts';
export { getVideoRow as getVideo, renditionsFor } from '../common/video-view.ts';

export async function insertUpload(
  db: Db,
  u: {
    uploadId: string;
    size: number | null;
    filename: string | null;
    filetype: string | null;
    sha256: string | null;
    objectKey: string;
    ownerKeyId: string | null;
    private: boolean;
    dedup: boolean;
  },
): Promise<void> {
  await db.query(
    `INSERT INTO uploads (upload_id, status, size, filename, filetype, sha256_expected, object_key, owner_key_id, private, dedup)
     VALUES ($1, 'CREATED', $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (upload_id) DO NOTHING`,
    [u.uploadId, u.size, u.filename, u.filetype, u.sha256, u.objectKey, u.ownerKeyId, u.private, u.dedup],
  );
}

export async function getUpload(db: Db, uploadId: string): Promise<UploadRow | null> {
  const { rows } = await db.query<UploadRow>(
    `SELECT u.*, COALESCE(v.video_id, u.dedup_video_id) AS video_id
       FROM uploads u LEFT JOIN videos v ON v.upload_id = u.upload_id WHERE u.upload_id = $1`,
    [uploadId],
  );
  return rows[0] ?? null;
}

/** First bytes arrive: CREATED -> UPLOADING (no-op when already UPLOADING or beyond). */
export async function markUploading(db: Db, uploadId: string): Promise<void> {
  await db.query(`UPDATE uploads SET status = 'UPLOADING' WHERE upload_id = $1 AND status = 'CREATED'`, [uploadId]);
}

/**
 * The store's offset after a PATCH (durable bytes; exact, so a progress figure that ran ahead of what
 * was stored before a drop is corrected). Only while the upload is in progress.
 */
export async function recordOffset(db: Db, uploadId: string, offset: number): Promise<void> {
  await db.query(
    `UPDATE uploads SET status = 'UPLOADING', bytes_uploaded = $2 WHERE upload_id = $1 AND status = ANY($3)`,
    [uploadId, offset, uploadSourcesFor('UPLOADING')],
  );
}

/** Progress while a PATCH streams (bytes received so far; forward only). */
export async function recordProgress(db: Db, uploadId: string, offset: number): Promise<void> {
  await db.query(
    `UPDATE uploads SET bytes_uploaded = $2 WHERE upload_id = $1 AND status = 'UPLOADING' AND bytes_uploaded < $2`,
    [uploadId, offset],
  );
}

export async function declareSize(db: Db, uploadId: string, size: number): Promise<void> {
  await db.query(`UPDATE uploads SET size = $2 WHERE upload_id = $1 AND size IS NULL`, [uploadId, size]);
}

/** -> FAILED with a code; returns false when the upload is already UPLOADED/EXPIRED (not moved). */
export async function failUpload(db: Db, uploadId: string, code: string, message: string): Promise<boolean> {
  const r = await db.query(
    `UPDATE uploads SET status = 'FAILED', error_code = $2, error_message = $3
      WHERE upload_id = $1 AND status = ANY($4) AND status <> 'FAILED'`,
    [uploadId, code, message, uploadSourcesFor('FAILED')],
  );
  return (r.rowCount ?? 0) > 0;
}

/**
 * The upload is verified and its source is in place: in ONE transaction mark it UPLOADED and create
 * its video (CREATED). Idempotent: a second call finds the upload UPLOADED (allowed: same state) and
 * the video already there. Returns the upload's status after the call.
 */
export async function completeUpload(
  pool: pg.Pool,
  u: { uploadId: string; videoId: string; size: number; sha256: string; sourceKey: string; workflowId: string },
): Promise<UploadState | null> {
  const done = await withTransaction(pool, async (client) => {
    const upd = await client.query<{ status: UploadState }>(
      `UPDATE uploads SET status = 'UPLOADED', bytes_uploaded = $2, size = COALESCE(size, $2), sha256_actual = $3
        WHERE upload_id = $1 AND status = ANY($4)
        RETURNING status`,
      [u.uploadId, u.size, u.sha256, uploadSourcesFor('UPLOADED')],
    );
    if (upd.rowCount === 0) return false; // nothing written: the commit is a no-op
    await createVideo(client, { videoId: u.videoId, uploadId: u.uploadId, sourceKey: u.sourceKey, workflowId: u.workflowId });
    return true;
  });
  if (done) return 'UPLOADED';
  return (await getUpload(pool, u.uploadId))?.status ?? null;
}

/**
 * Dedup: a live video (not FAILED; deleted ones have no row) of the same owner whose verified
 * source has this sha256, oldest first. Null when there is none.
 */
export async function findDuplicateVideo(db: Db, ownerKeyId: string, sha256: string, exceptUploadId: string): Promise<string | null> {
  const { rows } = await db.query<{ video_id: string }>(
    `SELECT v.video_id FROM videos v JOIN uploads u ON u.upload_id = v.upload_id
      WHERE u.status = 'UPLOADED' AND u.sha256_actual = $2 AND v.owner_key_id = $1 AND v.state <> 'FAILED'
        AND u.upload_id <> $3
      ORDER BY v.created_at LIMIT 1`,
    [ownerKeyId, sha256, exceptUploadId],
  );
  return rows[0]?.video_id ?? null;
}

/** Dedup: the upload is verified and resolves to an existing video; it makes none of its own. */
export async function completeUploadAsDuplicate(
  db: Db,
  u: { uploadId: string; size: number; sha256: string; videoId: string },
): Promise<UploadState | null> {
  const upd = await db.query<{ status: UploadState }>(
    `UPDATE uploads SET status = 'UPLOADED', bytes_uploaded = $2, size = COALESCE(size, $2), sha256_actual = $3, dedup_video_id = $4
      WHERE upload_id = $1 AND status = ANY($5)
      RETURNING status`,
    [u.uploadId, u.size, u.sha256, u.videoId, uploadSourcesFor('UPLOADED')],
  );
  if (upd.rowCount) return 'UPLOADED';
  return (await getUpload(db, u.uploadId))?.status ?? null;
}

/** Newest first; the cursor is the last row's (created_at, video_id), matching videos_created_idx. */
export async function listVideos(
  db: Db,
  q: { state?: VideoState; limit: number; after?: { createdAt: string; videoId: string }; viewerKeyId?: string | null },
): Promise<VideoRow[]> {
  const params: unknown[] = [q.limit];
  const where: string[] = [];
  // Private videos are listed to their owner only.
  params.push(q.viewerKeyId ?? null);
  where.push(`(NOT private OR owner_key_id = $${params.length})`);
  if (q.state) {
    params.push(q.state);
    where.push(`state = $${params.length}`);
  }
  if (q.after) {
    params.push(q.after.createdAt, q.after.videoId);
    where.push(`(created_at, video_id) < ($${params.length - 1}::timestamptz, $${params.length})`);
  }
  const { rows } = await db.query<VideoRow>(
    `SELECT ${VIDEO_COLUMNS} FROM videos ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY created_at DESC, video_id DESC LIMIT $1`,
    params,
  );
  return rows;
}

/** Removes the video, its renditions (cascade) and its upload row. */
export async function deleteVideoRows(pool: pg.Pool, videoId: string): Promise<{ uploadId: string } | null> {
  return withTransaction(pool, async (client) => {
    const gone = await deleteVideo(client, videoId);
    if (gone) await client.query(`DELETE FROM uploads WHERE upload_id = $1`, [gone.uploadId]);
    return gone;
  });
}

/** Videos whose upload is UPLOADED but whose workflow was never confirmed started. */
export async function videosAwaitingWorkflow(db: Db, limit = 100): Promise<string[]> {
  const { rows } = await db.query<{ video_id: string }>(
    `SELECT v.video_id FROM videos v JOIN uploads u ON u.upload_id = v.upload_id
      WHERE v.state = 'CREATED' AND u.status = 'UPLOADED' ORDER BY v.created_at LIMIT $1`,
    [limit],
  );
  return rows.map((r) => r.video_id);
}

/** Uploads whose bytes are all in but that were never finalized (crash between store and hook). */
export async function uploadsAwaitingFinish(db: Db, minAgeMs: number, limit = 100): Promise<string[]> {
  const { rows } = await db.query<{ upload_id: string }>(
    `SELECT upload_id FROM uploads
      WHERE status IN ('CREATED','UPLOADING') AND size IS NOT NULL AND size > 0 AND bytes_uploaded = size
        AND updated_at < now() - make_interval(secs => $2::double precision / 1000)
      ORDER BY created_at LIMIT $1`,
    [limit, minAgeMs],
  );
  return rows.map((r) => r.upload_id);
}

/** Unfinished uploads older than the expiry -> EXPIRED; returns their ids and object keys. */
export async function expireUploads(db: Db, olderThanMs: number): Promise<{ upload_id: string; object_key: string | null }[]> {
  const { rows } = await db.query<{ upload_id: string; object_key: string | null }>(
    `UPDATE uploads SET status = 'EXPIRED', error_code = 'UPLOAD_EXPIRED',
            error_message = 'the upload was not finished before it expired'
      WHERE status IN ('CREATED','UPLOADING') AND created_at < now() - make_interval(secs => $1::double precision / 1000)
      RETURNING upload_id, object_key`,
    [olderThanMs],
  );
  return rows;
}
