// Activities of VideoProcessingWorkflow, built by createActivities(deps) so the worker and tests wire
// real dependencies explicitly. Every activity is idempotent: re-running one after a crash converges
// on the same rows and objects, and an encode whose checkpoint is already in MinIO is skipped.
//
// Object flow (all in the one bucket):
//   videos.source_key (uploads/{uploadId})    the verified upload, the source in place
//   work/{id}/manifest.json                   chunk plan (the unit of work and of checkpoints)
//   work/{id}/enc/{rendition}/chunk_N.mp4     per-(chunk, rendition) encode + .json record (commit marker)
//   hls/{id}/...                              what players fetch
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { Context, ApplicationFailure } from '@temporalio/activity';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Pool } from '../../common/db.ts';
import type { VoraConfig } from '../../common/config.ts';
import type { Logger } from '../../common/log.ts';
import { keys } from '../../common/keys.ts';
import { rungsForSource, type Rung } from '../../common/ladder.ts';
import * as videoStore from '../../common/video-store.ts';
import type * as Media from '../../media/index.ts';
import { injectFault, type Fault } from '../faults.ts';
import { CorePins, threadsForChunk, type EncodeLanes } from '../encode-lanes.ts';
import {
  NON_RETRYABLE_MEDIA_ERRORS,
  type ChunkManifest,
  type EncodeFailureDetails,
  type PackagedAudio,
  type PackagedRendition,
  type PreparedSource,
  type RenditionStatus,
} from '../types.ts';
import {
  deletePrefix,
  downloadObject,
  getJson,
  headObject,
  putFile,
  putJson,
  putText,
  uploadDirectory,
} from './storage.ts';

export interface ActivityDeps {
  cfg: VoraConfig;
  pool: Pool;
  s3: S3Client;
  log: Logger;
  media: typeof Media;
  ladder: Rung[];
  faults?: Fault[];
  /** Processing knobs (the worker's from loadWorkerConfig().processing; tests set them). */
  settings?: Partial<ProcessingSettings>;
  /** Called when a video becomes READY (cache pre-warm); failures are logged, never fatal. */
  onReady?: (videoId: string) => Promise<unknown>;
  /** Called for every chunk encode or skip (worker metrics). */
  onEncode?: (e: { rendition: string; skipped: boolean; crashed: boolean; ms: number }) => void;
}

export interface ProcessingSettings {
  segmentDurationSec: number;
  /** Target chunk length; long sources get longer chunks so a plan stays <= maxChunks. */
  chunkTargetSec: number;
  maxChunks: number;
  concurrency: number;
  preset: string;
  /** How the worker's cores are shared among chunk encodes (encode-lanes.ts); set by the worker. */
  lanes: EncodeLanes;
}

export const DEFAULT_SETTINGS: ProcessingSettings = {
  segmentDurationSec: 4,
  chunkTargetSec: 8,
  maxChunks: 120,
  concurrency: 4,
  preset: 'veryfast',
  lanes: { slots: 1, threads: 0, tailThreads: 0, pin: false },
};

/** Chunk length for a source: the target, stretched so that no plan exceeds maxChunks. */
export function chunkTargetFor(durationSec: number, s: ProcessingSettings): number {
  const stretched = Math.max(s.chunkTargetSec, durationSec / s.maxChunks);
  // Whole segments per chunk, so chunk ends fall on the segment grid.
  return Math.ceil(stretched / s.segmentDurationSec) * s.segmentDurationSec;
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

const encKey = (videoId: string, rendition: string, chunkName: string, ext: 'mp4' | 'json') =>
  keys.work(videoId, `enc/${rendition}/${chunkName}.${ext}`);

interface EncodeRecord {
  bytes: number;
  sha256: string;
  durationSec: number;
  frames: number;
  width: number;
  height: number;
  codecs: string;
  encoder: string;
  settingsKey: string;
}

export function createActivities(deps: ActivityDeps) {
  const { cfg, pool, s3, log } = deps;
  const settings: ProcessingSettings = { ...DEFAULT_SETTINGS, ...deps.settings };
  const bucket = cfg.s3.bucket;
  const scratch = (videoId: string, ...p: string[]) => path.join(cfg.workDir, videoId, ...p);
  const worker = `${os.hostname()}:${process.pid}`;
  // One CPU per single-threaded chunk encode of this worker (encode-lanes.ts).
  const pins = new CorePins(os.availableParallelism());

  async function sourceKeyOf(videoId: string): Promise<string> {
    const { rows } = await pool.query<{ source_key: string }>('SELECT source_key FROM videos WHERE video_id = $1', [videoId]);
    if (!rows[0]) throw ApplicationFailure.create({ type: 'VIDEO_NOT_FOUND', message: `video ${videoId} does not exist`, nonRetryable: true });
    return rows[0].source_key;
  }

  /** The source on local disk (downloaded once per worker, reused by later activities). */
  async function localSource(videoId: string): Promise<string> {
    const key = await sourceKeyOf(videoId);
    const file = scratch(videoId, 'source');
    try {
      await downloadObject(s3, bucket, key, file);
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey' || (err as { name?: string }).name === 'NotFound') {
        throw ApplicationFailure.create({ type: 'SOURCE_MISSING', message: `source object ${key} is missing`, nonRetryable: true });
      }
      throw err;
    }
    return file;
  }

  const manifestOf = (videoId: string) => getJson<ChunkManifest>(s3, bucket, keys.work(videoId, 'manifest.json'));

  /** Keeps the activity alive while a long native call runs, carrying the latest progress. */
  function heartbeating(): { update: (d: Record<string, unknown>) => void; stop: () => void } {
    const ctx = Context.current();
    let last: Record<string, unknown> = {};
    const timer = setInterval(() => ctx.heartbeat(last), 3_000);
    return {
      update: (d) => {
        last = d;
        ctx.heartbeat(d);
      },
      stop: () => clearInterval(timer),
    };
  }

  return {
    /** Probe, validate, plan chunks; the plan is stored in MinIO and referenced by key. */
    async prepareSource(videoId: string): Promise<PreparedSource> {
      await videoStore.markProcessing(pool, videoId);
      await injectFault(deps.faults ?? [], { at: 'prepare', videoId, attempt: Context.current().info.attempt });
      const file = await localSource(videoId);
      const probe = await deps.media.probe(file).catch(mediaFailure);
      if (!probe.video) mediaFailure(Object.assign(new Error('the source has no video stream'), { code: 'NO_VIDEO_STREAM' }));
      const v = probe.video!;
      const renditions = rungsForSource(deps.ladder, v.displayHeight);
      const chunks = deps.media.planChunks(probe, chunkTargetFor(probe.durationSec, settings));
      const settingsKey = createHash('sha256')
        .update(JSON.stringify({ renditions, segment: settings.segmentDurationSec, preset: settings.preset, chunks }))
        .digest('hex')
        .slice(0, 16);
      const manifest: ChunkManifest = {
        videoId,
        sourceKey: await sourceKeyOf(videoId),
        durationSec: probe.durationSec,
        segmentDurationSec: settings.segmentDurationSec,
        chunks: chunks.map((c) => ({ index: c.index, name: c.name, startSec: c.startSec, endSec: c.endSec, startsOnKeyframe: c.startsOnKeyframe })),
        renditions,
        settingsKey,
      };
      await putJson(s3, bucket, keys.work(videoId, 'manifest.json'), manifest);
      await videoStore.recordPlan(pool, videoId, {
        durationSec: probe.durationSec, source: probe, renditions: renditions.map((r) => r.name), chunksTotal: chunks.length,
      });
      log.info({ videoId, durationSec: probe.durationSec, chunks: chunks.length, renditions: renditions.map((r) => r.name) }, 'source prepared');
      return {
        durationSec: probe.durationSec,
        width: v.displayWidth,
        height: v.displayHeight,
        hasAudio: probe.audio.length > 0,
        renditions,
        chunkCount: chunks.length,
        segmentDurationSec: settings.segmentDurationSec,
        concurrency: settings.concurrency,
      };
    },

    /**
     * Encodes one chunk for the given renditions, decoding it once. Outputs already committed in
     * MinIO (media then record) are skipped; each new output is put media-first, record-last, so a
     * record is proof of a complete output. On failure the details name the renditions to retry.
     */
    async encodeChunk(videoId: string, chunkIndex: number, renditionNames: string[], attempt: number): Promise<{ encoded: string[]; skipped: string[] }> {
      const manifest = await manifestOf(videoId);
      const chunk = manifest.chunks[chunkIndex];
      if (!chunk) throw ApplicationFailure.create({ type: 'BAD_CHUNK', message: `chunk ${chunkIndex} is not in the plan`, nonRetryable: true });
      const todo: typeof manifest.renditions = [];
      const skipped: string[] = [];
      for (const name of renditionNames) {
        const rung = manifest.renditions.find((r) => r.name === name);
        if (!rung) throw ApplicationFailure.create({ type: 'BAD_RENDITION', message: `rendition ${name} is not in the plan`, nonRetryable: true });
        const record = await getJson<EncodeRecord>(s3, bucket, encKey(videoId, name, chunk.name, 'json')).catch(() => null);
        const media = record && record.settingsKey === manifest.settingsKey ? await headObject(s3, bucket, encKey(videoId, name, chunk.name, 'mp4')) : null;
        if (record && media?.ContentLength === record.bytes) skipped.push(name);
        else todo.push(rung);
      }
      for (const name of skipped) await logEncode(videoId, chunkIndex, name, attempt, true, null, 0);
      if (!todo.length) return { encoded: [], skipped };

      const hb = heartbeating();
      // Own dir per (chunk, attempt): concurrent encodes on one worker must not clean up each other.
      const outDir = scratch(videoId, 'enc', `${chunk.name}-attempt-${attempt}-${process.pid}`);
      const t0 = Date.now();
      const failed: string[] = [];
      try {
        const input = await localSource(videoId);
        hb.update({ chunk: chunkIndex, stage: 'encode', renditions: todo.map((r) => r.name) });
        const threads = threadsForChunk(settings.lanes, chunkIndex, manifest.chunks.length);
        const result = await pins
          .with(settings.lanes.pin && threads === 1, (cpu) =>
            deps.media.encodeChunk({
              input,
              outDir,
              chunk,
              renditions: todo,
              segmentDurationSec: manifest.segmentDurationSec,
              preset: settings.preset,
              threads,
              cpu,
              signal: Context.current().cancellationSignal,
            }),
          )
          .catch(mediaFailure);
        const ms = Date.now() - t0;
        for (const r of result.renditions) {
          try {
            // An injected encoder crash of this rendition: its output is lost, the others commit.
            await injectFault(deps.faults ?? [], { at: 'encode', videoId, rendition: r.rendition, chunk: chunkIndex, attempt });
            await putFile(s3, bucket, encKey(videoId, r.rendition, chunk.name, 'mp4'), path.join(outDir, r.file), 'video/mp4');
            const record: EncodeRecord = {
              bytes: r.bytes, sha256: r.sha256, durationSec: r.durationSec, frames: r.frames, width: r.width, height: r.height,
              codecs: r.codecs, encoder: r.encoder, settingsKey: manifest.settingsKey,
            };
            await putJson(s3, bucket, encKey(videoId, r.rendition, chunk.name, 'json'), record);
            await logEncode(videoId, chunkIndex, r.rendition, attempt, false, r.encoder, ms);
          } catch (err) {
            if ((err as { code?: string }).code !== 'INJECTED_FAULT') throw err;
            await logEncode(videoId, chunkIndex, r.rendition, attempt, false, `${r.encoder} (crashed)`, ms);
            failed.push(r.rendition);
            log.warn({ videoId, chunk: chunkIndex, rendition: r.rendition, attempt }, (err as Error).message);
          }
        }
        await videoStore.countChunkDone(pool, videoId, todo.map((r) => r.name).filter((n) => !failed.includes(n)));
        if (failed.length) {
          const details: EncodeFailureDetails = { failedRenditions: failed };
          throw ApplicationFailure.create({ type: 'ENCODER_CRASHED', message: `encoder crashed for ${failed.join(', ')} on chunk ${chunkIndex}`, details: [details] });
        }
        return { encoded: todo.map((r) => r.name), skipped };
      } finally {
        hb.stop();
        fs.rmSync(outDir, { recursive: true, force: true });
      }
    },

    /** Encodes the audio once for the whole source into an HLS audio rendition. */
    async encodeAudio(videoId: string): Promise<PackagedAudio | null> {
      const hb = heartbeating();
      const outDir = scratch(videoId, 'audio');
      try {
        const input = await localSource(videoId);
        hb.update({ stage: 'audio' });
        fs.rmSync(outDir, { recursive: true, force: true });
        const res = await deps.media
          .encodeAudio({ input, outDir, segmentDurationSec: settings.segmentDurationSec, signal: Context.current().cancellationSignal })
          .catch(mediaFailure);
        if (!res) return null;
        await uploadDirectory(s3, bucket, outDir, keys.hls(videoId, ''), Context.current().cancellationSignal);
        return withoutSegments(res);
      } finally {
        hb.stop();
        fs.rmSync(outDir, { recursive: true, force: true });
      }
    },

    /** Joins a rendition's chunk encodes into its HLS playlist and segments (stream copy). */
    async packageRendition(videoId: string, rendition: string): Promise<PackagedRendition> {
      const manifest = await manifestOf(videoId);
      const hb = heartbeating();
      const dir = scratch(videoId, 'pkg', rendition);
      try {
        fs.rmSync(dir, { recursive: true, force: true });
        const inputs: string[] = [];
        for (const c of manifest.chunks) {
          const file = path.join(dir, 'chunks', `${c.name}.mp4`);
          await downloadObject(s3, bucket, encKey(videoId, rendition, c.name, 'mp4'), file);
          inputs.push(file);
          hb.update({ stage: 'package', rendition, chunk: c.index });
        }
        const outDir = path.join(dir, 'out', rendition);
        const res = await deps.media
          .packageRendition({ rendition, chunkFiles: inputs, outDir, segmentDurationSec: manifest.segmentDurationSec })
          .catch(mediaFailure);
        await injectFault(deps.faults ?? [], { at: 'package', videoId, rendition, attempt: Context.current().info.attempt });
        await uploadDirectory(s3, bucket, path.join(dir, 'out'), keys.hls(videoId, ''), Context.current().cancellationSignal);
        return toPackaged(res);
      } finally {
        hb.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },

    /** Writes the master playlist with the renditions done so far and moves the video's state. */
    async publishMaster(videoId: string, renditions: PackagedRendition[], audio: PackagedAudio | null, state: 'PARTIALLY_READY' | 'READY'): Promise<void> {
      await injectFault(deps.faults ?? [], { at: 'publish', videoId, attempt: Context.current().info.attempt });
      // Payloads carry no segment lists (history stays small); the master needs none.
      const text = deps.media.masterPlaylistText(renditions.map((r) => ({ ...r, segments: [] })), audio ? withSegments(audio) : null);
      await putText(s3, bucket, keys.hls(videoId, 'master.m3u8'), text, 'application/vnd.apple.mpegurl');
      // Never moves backwards: a replayed PARTIALLY_READY after READY is a no-op.
      await videoStore.publish(pool, videoId, renditions, state);
      log.info({ videoId, state, renditions: renditions.map((r) => r.name) }, 'master published');
      if (state === 'READY' && deps.onReady) await deps.onReady(videoId).catch((err) => log.warn({ videoId, err: String(err) }, 'pre-warm failed'));
    },

    /** Poster and storyboard; written under hls/{id}/. */
    async thumbnails(videoId: string): Promise<void> {
      const outDir = scratch(videoId, 'thumbs');
      try {
        const input = await localSource(videoId);
        fs.rmSync(outDir, { recursive: true, force: true });
        fs.mkdirSync(outDir, { recursive: true });
        await deps.media
          .thumbnails({ input, outDir, storyboard: { intervalSec: 2, columns: 10, tileWidth: 160 }, signal: Context.current().cancellationSignal })
          .catch(mediaFailure);
        await uploadDirectory(s3, bucket, outDir, keys.hls(videoId, ''));
      } finally {
        fs.rmSync(outDir, { recursive: true, force: true });
      }
    },

    /** Mirrors the workflow's rendition states to PostgreSQL (idempotent). */
    async recordRenditions(videoId: string, states: RenditionStatus[]): Promise<void> {
      await videoStore.recordRenditions(pool, videoId, states);
    },

    /** Removes intermediate objects and scratch files once the video is published. */
    async cleanup(videoId: string): Promise<void> {
      await deletePrefix(s3, bucket, keys.workPrefix(videoId));
      fs.rmSync(scratch(videoId), { recursive: true, force: true });
    },

    async markFailed(videoId: string, code: string, rawMessage: string): Promise<void> {
      // The reason is shown to users: no machine paths in it.
      const message = rawMessage.split(`${cfg.workDir}${path.sep}`).join('').split(cfg.dataDir).join('<data>');
      // No-op once READY (a failure in thumbnails or cleanup does not unpublish) or already FAILED.
      await videoStore.markFailed(pool, videoId, code, message);
      fs.rmSync(scratch(videoId), { recursive: true, force: true });
    },
  };

  async function logEncode(videoId: string, chunk: number, rendition: string, attempt: number, skipped: boolean, encoder: string | null, ms: number) {
    deps.onEncode?.({ rendition, skipped, crashed: Boolean(encoder?.endsWith('(crashed)')), ms });
    await pool.query(
      'INSERT INTO encode_log (video_id, chunk, rendition, attempt, skipped, encoder, worker, duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
      [videoId, chunk, rendition, attempt, skipped, encoder, worker, ms],
    );
  }
}

/** Segment lists stay out of workflow payloads (history stays small); the master needs none. */
function withoutSegments(a: Media.HlsAudioResult): PackagedAudio {
  const { segments: _segments, alternates, ...rest } = a;
  return { ...rest, alternates: alternates.map(withoutSegments) };
}
function withSegments(a: PackagedAudio): Media.HlsAudioResult {
  return { ...a, segments: [], alternates: a.alternates.map(withSegments) };
}

function toPackaged(r: { name: string; width: number; height: number; bandwidth: number; averageBandwidth: number; codecs: string; frameRate: number; playlist: string }): PackagedRendition {
  return { name: r.name, width: r.width, height: r.height, bandwidth: r.bandwidth, averageBandwidth: r.averageBandwidth, codecs: r.codecs, frameRate: r.frameRate, playlist: r.playlist };
}

export type Activities = ReturnType<typeof createActivities>;
