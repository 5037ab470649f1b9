// Video and rendition state machines in the real database (shared stack's PostgreSQL): the triggers
// of migrations/011_video_transitions.sql allow exactly video-state.ts's moves, and the moves of
// video-store.ts (which the API and the worker's activities call) are no-ops where a late or
// replayed result would move a video backwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, withTransaction, type Pool } from '../../src/common/db.ts';
import { newUploadId, newVideoId } from '../../src/common/ids.ts';
import { createLogger } from '../../src/common/log.ts';
import { createS3 } from '../../src/common/s3.ts';
import { canMoveRendition, canMoveVideo, RENDITION_STATES, VIDEO_STATES, type RenditionState, type VideoState } from '../../src/common/video-state.ts';
import * as store from '../../src/common/video-store.ts';
import * as media from '../../src/media/index.ts';
import { createActivities } from '../../src/worker/activities/index.ts';
import { stackConfig } from '../support/client.ts';

const cfg = stackConfig();
const s3 = createS3(cfg);
let pool: Pool;

beforeAll(() => {
  pool = createPool(cfg, 4);
});
afterAll(async () => {
  await pool?.end();
  s3.destroy();
});

/** A video row in any state. Its upload is not UPLOADED, so the stack's reconciler leaves it alone. */
async function makeVideo(state: VideoState): Promise<string> {
  const videoId = newVideoId();
  const uploadId = newUploadId();
  await pool.query(`INSERT INTO uploads (upload_id) VALUES ($1)`, [uploadId]);
  await pool.query(`INSERT INTO videos (video_id, upload_id, state, source_key, workflow_id) VALUES ($1, $2, $3, 's', $4)`, [
    videoId, uploadId, state, `video-state-test-${videoId}`,
  ]);
  return videoId;
}

async function addRendition(videoId: string, name: string, state: RenditionState, error: string | null = null): Promise<void> {
  await pool.query(`INSERT INTO renditions (video_id, name, state, error) VALUES ($1, $2, $3, $4)`, [videoId, name, state, error]);
}

async function video(videoId: string) {
  const { rows } = await pool.query<{ state: string; failure_code: string | null; failure_message: string | null }>(
    'SELECT state, failure_code, failure_message FROM videos WHERE video_id = $1',
    [videoId],
  );
  return rows[0] ?? null;
}

async function renditions(videoId: string): Promise<Record<string, { state: string; error: string | null; attempts: number }>> {
  const { rows } = await pool.query<{ name: string; state: string; error: string | null; attempts: number }>(
    'SELECT name, state, error, attempts FROM renditions WHERE video_id = $1',
    [videoId],
  );
  return Object.fromEntries(rows.map((r) => [r.name, { state: r.state, error: r.error, attempts: r.attempts }]));
}

/** The error a statement raised (null when it succeeded). */
const errorOf = (p: Promise<unknown>) => p.then(() => null, (e: Error & { code?: string }) => e);

const rendition = (name: string, width = 640, height = 360) => ({ name, width, height, bandwidth: 800_000 });

describe('transition triggers', () => {
  it('allow exactly the video moves of video-state.ts (and any state to itself); the rest is check_violation', async () => {
    for (const from of VIDEO_STATES) {
      for (const to of VIDEO_STATES) {
        const id = await makeVideo(from);
        const err = await errorOf(pool.query(`UPDATE videos SET state = $2 WHERE video_id = $1`, [id, to]));
        if (canMoveVideo(from, to)) {
          expect(err, `${from} -> ${to}`).toBeNull();
        } else {
          expect(err?.code, `${from} -> ${to}`).toBe('23514');
          expect(err?.message).toBe(`video ${id}: illegal state transition ${from} -> ${to}`);
          expect((await video(id))?.state).toBe(from);
        }
      }
    }
  });

  it('allow exactly the rendition moves of video-state.ts', async () => {
    const id = await makeVideo('PROCESSING');
    for (const from of RENDITION_STATES) {
      for (const to of RENDITION_STATES) {
        const name = `${from}-${to}`.toLowerCase();
        await addRendition(id, name, from);
        const err = await errorOf(pool.query(`UPDATE renditions SET state = $3 WHERE video_id = $1 AND name = $2`, [id, name, to]));
        if (canMoveRendition(from, to)) {
          expect(err, `${from} -> ${to}`).toBeNull();
        } else {
          expect(err?.code, `${from} -> ${to}`).toBe('23514');
          expect(err?.message).toBe(`rendition ${id}/${name}: illegal state transition ${from} -> ${to}`);
        }
      }
    }
  });
});

describe('moves (src/common/video-store.ts)', () => {
  it('markFailed after READY leaves the video READY (a failed cleanup does not unpublish it)', async () => {
    const id = await makeVideo('CREATED');
    expect(await store.markProcessing(pool, id)).toBe(true);
    expect(await store.markProcessing(pool, id)).toBe(false); // a replay: no row
    await addRendition(id, '360p', 'PROCESSING');
    await addRendition(id, '720p', 'PENDING');
    expect(await store.publish(pool, id, [rendition('360p')], 'PARTIALLY_READY')).toBe(true);
    await store.recordRenditions(pool, id, [{ name: '720p', state: 'PROCESSING', attempts: 1, error: null, chunksTotal: 3 }]);
    expect(await store.publish(pool, id, [rendition('360p'), rendition('720p', 1280, 720)], 'READY')).toBe(true);

    // The worker's own activity, as the workflow calls it when cleanup throws after READY.
    const activities = createActivities({ cfg, pool, s3, log: createLogger('video-state-test', 'silent'), media, ladder: [] });
    await activities.markFailed(id, 'PROCESSING_FAILED', 'cleanup failed');
    expect(await video(id)).toEqual({ state: 'READY', failure_code: null, failure_message: null });
    expect(await renditions(id)).toMatchObject({ '360p': { state: 'DONE' }, '720p': { state: 'DONE' } });

    // A replayed PARTIALLY_READY publish after READY is a no-op, and a hand-written UPDATE is refused.
    expect(await store.publish(pool, id, [rendition('360p')], 'PARTIALLY_READY')).toBe(false);
    expect((await video(id))?.state).toBe('READY');
    const err = await errorOf(pool.query(`UPDATE videos SET state = 'FAILED' WHERE video_id = $1`, [id]));
    expect(err?.code).toBe('23514');
    expect((await video(id))?.state).toBe('READY');
  });

  it('a PARTIALLY_READY video whose later rungs fail becomes FAILED; the first failure is kept', async () => {
    const id = await makeVideo('PROCESSING');
    await addRendition(id, '360p', 'PROCESSING');
    await addRendition(id, '720p', 'PENDING');
    await addRendition(id, '1080p', 'PENDING');
    await store.publish(pool, id, [rendition('360p')], 'PARTIALLY_READY');
    await store.recordRenditions(pool, id, [{ name: '720p', state: 'PROCESSING', attempts: 1, error: null, chunksTotal: 3 }]);
    await store.recordRenditions(pool, id, [{ name: '720p', state: 'RETRYING', attempts: 2, error: 'encoder crashed', chunksTotal: 3 }]);

    expect(await store.markFailed(pool, id, 'ENCODER_CRASHED', 'encoder crashed for 720p')).toBe(true);
    expect(await video(id)).toEqual({ state: 'FAILED', failure_code: 'ENCODER_CRASHED', failure_message: 'encoder crashed for 720p' });
    expect(await renditions(id)).toEqual({
      '360p': { state: 'DONE', error: null, attempts: 0 },
      '720p': { state: 'FAILED', error: 'encoder crashed', attempts: 2 },
      '1080p': { state: 'FAILED', error: 'encoder crashed for 720p', attempts: 0 },
    });
    expect(await store.markFailed(pool, id, 'CANCELLED', 'processing was cancelled')).toBe(false);
    expect((await video(id))?.failure_code).toBe('ENCODER_CRASHED');
    // A late publish does not revive it.
    expect(await store.publish(pool, id, [rendition('360p')], 'READY')).toBe(false);
    expect((await video(id))?.state).toBe('FAILED');
  });

  it('recordRenditions skips a move the table forbids (a chunk still retrying after its rendition FAILED)', async () => {
    const id = await makeVideo('PROCESSING');
    await addRendition(id, '360p', 'PROCESSING');
    await addRendition(id, '720p', 'FAILED', 'retries spent');
    await store.recordRenditions(pool, id, [
      { name: '360p', state: 'RETRYING', attempts: 2, error: 'crashed', chunksTotal: 4 },
      { name: '720p', state: 'RETRYING', attempts: 3, error: 'crashed again', chunksTotal: 4 },
      { name: '1080p', state: 'PENDING', attempts: 0, error: null, chunksTotal: 4 },
    ]);
    expect(await renditions(id)).toEqual({
      '360p': { state: 'RETRYING', error: 'crashed', attempts: 2 },
      '720p': { state: 'FAILED', error: 'retries spent', attempts: 0 },
      '1080p': { state: 'PENDING', error: null, attempts: 0 },
    });
  });

  it('DELETED is final: the id never comes back, and late moves find nothing', async () => {
    const id = await makeVideo('READY');
    await addRendition(id, '360p', 'DONE');
    const { rows } = await pool.query<{ upload_id: string }>('SELECT upload_id FROM videos WHERE video_id = $1', [id]);
    expect(await store.deleteVideo(pool, id)).toEqual({ uploadId: rows[0]!.upload_id });
    expect(await store.deleteVideo(pool, id)).toBeNull();
    expect(await renditions(id)).toEqual({});

    const again = await errorOf(store.createVideo(pool, { videoId: id, uploadId: rows[0]!.upload_id, sourceKey: 's', workflowId: 'w' }));
    expect(again?.code).toBe('23514');
    expect(again?.message).toBe(`video ${id}: illegal state transition DELETED -> CREATED`);
    const late = await errorOf(store.recordRenditions(pool, id, [{ name: '360p', state: 'PROCESSING', attempts: 1, error: null, chunksTotal: 1 }]));
    expect(late?.code).toBe('23503'); // foreign key: no video
    expect(await store.markProcessing(pool, id)).toBe(false);
    expect(await store.publish(pool, id, [rendition('360p')], 'READY')).toBe(false);
    expect(await store.markFailed(pool, id, 'CANCELLED', 'processing was cancelled')).toBe(false);
    expect(await video(id)).toBeNull();
  });
});

describe('withTransaction', () => {
  it('rolls back on a throw, and gives the connection back either way', async () => {
    const one = createPool(cfg, 1);
    try {
      const uploadId = newUploadId();
      const boom = new Error('boom');
      await expect(
        withTransaction(one, async (c) => {
          await c.query(`INSERT INTO uploads (upload_id) VALUES ($1)`, [uploadId]);
          throw boom;
        }),
      ).rejects.toBe(boom);
      expect((await pool.query('SELECT 1 FROM uploads WHERE upload_id = $1', [uploadId])).rowCount).toBe(0);
      // The pool's only connection is usable again (not left inside the aborted transaction).
      expect(await withTransaction(one, async (c) => (await c.query<{ n: number }>('SELECT 1 AS n')).rows[0]!.n)).toBe(1);
      expect(one.idleCount).toBe(1);
    } finally {
      await one.end();
    }
  });
});
