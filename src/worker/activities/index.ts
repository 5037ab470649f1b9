// Activities of VideoProcessingWorkflow, built by createActivities(deps) so tests and the worker
// wire real dependencies explicitly. Every activity is idempotent: re-running one after a crash
// converges on the same rows and objects.
import fs from 'node:fs';
import path from 'node:path';
import { Context, ApplicationFailure } from '@temporalio/activity';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Pool } from '../../common/db.ts';
import type { VoraConfig } from '../../common/config.ts';
import type { Logger } from '../../common/log.ts';
import { keys } from '../../common/keys.ts';
import { rungsForSource, type Rung } from '../../common/ladder.ts';
import type * as Media from '../../media/index.ts';
import { NON_RETRYABLE_MEDIA_ERRORS, type PlannedRendition, type PreparedSource } from '../types.ts';
import { downloadObject, uploadDirectory } from './storage.ts';

export interface ActivityDeps {
  cfg: VoraConfig;
  pool: Pool;
  s3: S3Client;
  log: Logger;
  media: typeof Media;
  ladder: Rung[];
}

function mediaFailure(err: unknown): never {
  const code = (err as { code?: string }).code;
  const message = err instanceof Error ? err.message : String(err);
  if (code && (NON_RETRYABLE_MEDIA_ERRORS as readonly string[]).includes(code)) {
    // Bad input never gets better on retry: fail once, with the probe's code as the failure type.
    throw ApplicationFailure.create({ type: code, message, nonRetryable: true, cause: err as Error });
  }
  throw err;
}

export function createActivities(deps: ActivityDeps) {
  const { cfg, pool, s3, log } = deps;
  const workDir = (videoId: string) => path.join(cfg.workDir, videoId);

  async function localSource(videoId: string): Promise<string> {
    const { rows } = await pool.query<{ source_key: string }>('SELECT source_key FROM videos WHERE video_id = $1', [videoId]);
    const row = rows[0];
    if (!row) throw ApplicationFailure.create({ type: 'VIDEO_NOT_FOUND', message: `video ${videoId} does not exist`, nonRetryable: true });
    const file = path.join(workDir(videoId), 'source');
    try {
      await downloadObject(s3, cfg.s3.bucket, row.source_key, file);
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey') {
        throw ApplicationFailure.create({ type: 'SOURCE_MISSING', message: `source object ${row.source_key} is missing`, nonRetryable: true });
      }
      throw err;
    }
    return file;
  }

  return {
    async prepareSource(videoId: string): Promise<PreparedSource> {
      await pool.query(
        `UPDATE videos SET state = 'PROCESSING', updated_at = now() WHERE video_id = $1 AND state IN ('CREATED', 'PROCESSING')`,
        [videoId],
      );
      const file = await localSource(videoId);
      const probe = await deps.media.probe(file).catch(mediaFailure);
      if (!probe.video) mediaFailure(Object.assign(new Error('the source has no video stream'), { code: 'NO_VIDEO_STREAM' }));
      const v = probe.video!;
      const renditions: PlannedRendition[] = rungsForSource(deps.ladder, v.displayHeight);
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('UPDATE videos SET duration_sec = $2, source = $3, updated_at = now() WHERE video_id = $1', [
          videoId, probe.durationSec, JSON.stringify(probe),
        ]);
        for (const r of renditions) {
          await client.query(
            `INSERT INTO renditions (video_id, name, state) VALUES ($1, $2, 'PENDING') ON CONFLICT (video_id, name) DO NOTHING`,
            [videoId, r.name],
          );
        }
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      } finally {
        client.release();
      }
      log.info({ videoId, durationSec: probe.durationSec, width: v.displayWidth, height: v.displayHeight, renditions: renditions.map((r) => r.name) }, 'source prepared');
      return { durationSec: probe.durationSec, width: v.displayWidth, height: v.displayHeight, renditions };
    },

    async transcode(videoId: string, renditions: PlannedRendition[]): Promise<void> {
      const ctx = Context.current();
      const names = renditions.map((r) => r.name);
      await pool.query(
        `UPDATE renditions SET state = 'PROCESSING', attempts = attempts + 1, error = NULL, updated_at = now()
          WHERE video_id = $1 AND name = ANY($2) AND state <> 'DONE'`,
        [videoId, names],
      );
      const input = await localSource(videoId);
      const outDir = path.join(workDir(videoId), 'hls');
      fs.rmSync(outDir, { recursive: true, force: true });
      // Heartbeat on a timer too: a long GOP or a slow probe must not look like a dead worker.
      let last: unknown = { stage: 'encode', framesDone: 0 };
      const beat = setInterval(() => ctx.heartbeat(last), 5_000);
      try {
        const result = await deps.media
          .transcodeToHls({
            input,
            outDir,
            renditions,
            segmentDurationSec: 4,
            signal: ctx.cancellationSignal,
            onProgress: (p) => {
              last = { stage: 'encode', ...p };
              ctx.heartbeat(last);
            },
          })
          .catch(mediaFailure);
        ctx.heartbeat({ stage: 'upload' });
        const uploaded = await uploadDirectory(s3, cfg.s3.bucket, outDir, keys.hlsPrefix(videoId), ctx.cancellationSignal);
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          for (const r of result.renditions) {
            await client.query(
              `UPDATE renditions SET state = 'DONE', width = $3, height = $4, bandwidth = $5, error = NULL, updated_at = now()
                WHERE video_id = $1 AND name = $2`,
              [videoId, r.name, r.width, r.height, r.bandwidth],
            );
          }
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw err;
        } finally {
          client.release();
        }
        log.info({ videoId, encoder: result.encoder, objects: uploaded, renditions: result.renditions.map((r) => r.name) }, 'transcoded');
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        await pool.query(
          `UPDATE renditions SET state = 'RETRYING', error = $3, updated_at = now() WHERE video_id = $1 AND name = ANY($2) AND state <> 'DONE'`,
          [videoId, names, message],
        );
        throw err;
      } finally {
        clearInterval(beat);
      }
    },

    async publish(videoId: string): Promise<void> {
      await pool.query(
        `UPDATE videos SET state = 'READY', failure_code = NULL, failure_message = NULL, updated_at = now()
          WHERE video_id = $1 AND state IN ('PROCESSING', 'PARTIALLY_READY', 'READY')`,
        [videoId],
      );
      fs.rmSync(workDir(videoId), { recursive: true, force: true });
    },

    async markFailed(videoId: string, code: string, message: string): Promise<void> {
      await pool.query(
        `UPDATE videos SET state = 'FAILED', failure_code = $2, failure_message = $3, updated_at = now() WHERE video_id = $1`,
        [videoId, code, message],
      );
      await pool.query(
        `UPDATE renditions SET state = 'FAILED', error = COALESCE(error, $2), updated_at = now() WHERE video_id = $1 AND state <> 'DONE'`,
        [videoId, message],
      );
      fs.rmSync(workDir(videoId), { recursive: true, force: true });
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
