// Typed front for the native media core (native/, napi-rs + FFmpeg). This is the
// only importer of the addon: everything else in Vora talks to these functions.
//
// Heavy work runs on dedicated native threads (never the JS thread or the libuv
// pool); failures reject with a MediaError whose `code` is stable across releases.
import { createRequire } from 'node:module';
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { RUNG_NAME } from '../common/ladder.ts';

import type * as Native from '../../native/index.js';

type Binding = typeof Native;
let binding: Binding | undefined;

/** Lazily loaded so that processes importing this module without transcoding
 * (API, gateway) do not need the compiled addon. */
function native(): Binding {
  binding ??= createRequire(import.meta.url)('../../native/index.cjs') as Binding;
  return binding;
}

export const MEDIA_ERROR_CODES = [
  'NOT_MEDIA',
  'NO_VIDEO_STREAM',
  'UNSUPPORTED_CODEC',
  'CORRUPT_INPUT',
  'EMPTY_INPUT',
  'ABORTED',
  'IO_ERROR',
  'ENCODER_ERROR',
  'INTERNAL',
] as const;
export type MediaErrorCode = (typeof MEDIA_ERROR_CODES)[number];

/** Codes that describe the input itself: retrying the same file cannot succeed. */
export const PERMANENT_MEDIA_ERRORS: ReadonlySet<MediaErrorCode> = new Set([
  'NOT_MEDIA',
  'NO_VIDEO_STREAM',
  'UNSUPPORTED_CODEC',
  'CORRUPT_INPUT',
  'EMPTY_INPUT',
]);

export class MediaError extends Error {
  readonly code: MediaErrorCode;
  constructor(code: MediaErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MediaError';
    this.code = code;
  }
}

export function isMediaError(err: unknown, code?: MediaErrorCode): err is MediaError {
  return err instanceof MediaError && (code === undefined || err.code === code);
}

function isCode(code: unknown): code is MediaErrorCode {
  return typeof code === 'string' && (MEDIA_ERROR_CODES as readonly string[]).includes(code);
}

/** Re-throws the native error's `code` as a MediaError (unknown codes become INTERNAL). */
export function toMediaError(err: unknown): MediaError {
  if (err instanceof MediaError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return new MediaError(isCode(code) ? code : 'INTERNAL', message, { cause: err });
}

export interface VideoStreamInfo {
  index: number;
  codec: string;
  profile: string | null;
  width: number;
  height: number;
  displayWidth: number;
  displayHeight: number;
  /** Clockwise degrees applied for display (0, 90, 180, 270). */
  rotation: number;
  sar: string;
  dar: string;
  frameRate: number;
  avgFrameRate: number;
  variableFrameRate: boolean;
  pixelFormat: string;
  bitDepth: number;
  colorSpace: string | null;
  colorPrimaries: string | null;
  colorTransfer: string | null;
  colorRange: string | null;
  fieldOrder: string | null;
  language: string | null;
}

export interface AudioStreamInfo {
  index: number;
  codec: string;
  channels: number;
  channelLayout: string;
  sampleRate: number;
  language: string | null;
}

export interface ProbeResult {
  container: string;
  durationSec: number;
  sizeBytes: number;
  bitRate: number | null;
  video: VideoStreamInfo | null;
  audio: AudioStreamInfo[];
  /** Keyframe times in seconds from the start of the video stream, ascending. */
  keyframes: number[];
}

export interface RenditionSpec {
  /** Directory name and playlist label, e.g. '360p' ([A-Za-z0-9_-]). */
  name: string;
  height: number;
  /** Target video bitrate in bits per second. */
  videoBitrate: number;
  maxrate?: number;
  bufsize?: number;
}

export interface HlsProgress {
  framesDone: number;
  framesTotal: number | null;
  fps: number;
}

export interface HlsOptions {
  input: string;
  outDir: string;
  renditions: RenditionSpec[];
  /** Segment grid in seconds, identical for every rung (default 4). */
  segmentDurationSec?: number;
  encoder?: 'auto' | 'libx264' | 'h264_nvenc';
  /** x264 preset (default 'veryfast'). */
  preset?: string;
  threads?: number;
  signal?: AbortSignal;
  onProgress?: (p: HlsProgress) => void;
}

export interface HlsSegmentInfo {
  file: string;
  durationSec: number;
  bytes: number;
}

export interface HlsRenditionResult {
  name: string;
  width: number;
  height: number;
  /** Peak segment bitrate (bps), as EXT-X-STREAM-INF BANDWIDTH. */
  bandwidth: number;
  averageBandwidth: number;
  /** RFC 6381 codecs from the real bitstream, e.g. 'avc1.64001f,mp4a.40.2'. */
  codecs: string;
  frameRate: number;
  /** Relative to outDir, e.g. '360p/index.m3u8'. */
  playlist: string;
  segments: HlsSegmentInfo[];
}

export interface HlsResult {
  durationSec: number;
  encoder: string;
  renditions: HlsRenditionResult[];
  /** Relative to outDir: 'master.m3u8'. */
  master: string;
}

function normalizeProbe(p: Native.ProbeResult): ProbeResult {
  const v = p.video;
  return {
    container: p.container,
    durationSec: p.durationSec,
    sizeBytes: p.sizeBytes,
    bitRate: p.bitRate ?? null,
    video: v
      ? {
          index: v.index,
          codec: v.codec,
          profile: v.profile ?? null,
          width: v.width,
          height: v.height,
          displayWidth: v.displayWidth,
          displayHeight: v.displayHeight,
          rotation: v.rotation,
          sar: v.sar,
          dar: v.dar,
          frameRate: v.frameRate,
          avgFrameRate: v.avgFrameRate,
          variableFrameRate: v.variableFrameRate,
          pixelFormat: v.pixelFormat,
          bitDepth: v.bitDepth,
          colorSpace: v.colorSpace ?? null,
          colorPrimaries: v.colorPrimaries ?? null,
          colorTransfer: v.colorTransfer ?? null,
          colorRange: v.colorRange ?? null,
          fieldOrder: v.fieldOrder ?? null,
          language: v.language ?? null,
        }
      : null,
    audio: p.audio.map((a) => ({
      index: a.index,
      codec: a.codec,
      channels: a.channels,
      channelLayout: a.channelLayout,
      sampleRate: a.sampleRate,
      language: a.language ?? null,
    })),
    keyframes: p.keyframes,
  };
}

/** Stream inventory plus the keyframe index of the video stream (reads the whole file). */
export async function probe(file: string): Promise<ProbeResult> {
  try {
    return normalizeProbe(await native().probe(file));
  } catch (err) {
    throw toMediaError(err);
  }
}

function validate(opts: HlsOptions): void {
  if (!opts.input || !opts.outDir) throw new TypeError('transcodeToHls: input and outDir are required');
  if (!opts.renditions?.length) throw new TypeError('transcodeToHls: at least one rendition is required');
  const names = new Set<string>();
  for (const r of opts.renditions) {
    if (!RUNG_NAME.test(r.name)) throw new TypeError(`transcodeToHls: bad rendition name ${JSON.stringify(r.name)}`);
    if (names.has(r.name)) throw new TypeError(`transcodeToHls: duplicate rendition ${r.name}`);
    names.add(r.name);
    if (!Number.isInteger(r.height) || r.height < 2) throw new TypeError(`transcodeToHls: bad height for ${r.name}`);
    if (!(r.videoBitrate >= 1000)) throw new TypeError(`transcodeToHls: bad videoBitrate for ${r.name}`);
  }
  const seg = opts.segmentDurationSec;
  if (seg !== undefined && !(seg >= 0.5 && seg <= 60)) throw new TypeError('transcodeToHls: segmentDurationSec must be in [0.5, 60]');
}

/**
 * Decodes `input` once and encodes every rung in the same pass into
 * `outDir/{name}/index.m3u8` (fMP4, aligned segments) plus `outDir/master.m3u8`.
 * Rungs above the source height are skipped (the lowest is always produced).
 * Aborting via `signal` rejects with code ABORTED and removes partial output.
 */
export async function transcodeToHls(opts: HlsOptions): Promise<HlsResult> {
  validate(opts);
  const { signal, onProgress } = opts;
  if (signal?.aborted) throw new MediaError('ABORTED', 'aborted before start', { cause: signal.reason });
  const n = native();
  const token = new n.CancelToken();
  const onAbort = (): void => token.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  const progress = onProgress
    ? (p: Native.HlsProgressEvent): void => {
        try {
          onProgress({ framesDone: p.framesDone, framesTotal: p.framesTotal ?? null, fps: p.fps });
        } catch {
          // A throwing progress listener must not surface as an uncaught exception
          // from a native callback; progress is advisory.
        }
      }
    : undefined;
  try {
    return await n.transcodeToHls(
      {
        input: opts.input,
        outDir: opts.outDir,
        renditions: opts.renditions.map((r) => ({ ...r })),
        segmentDurationSec: opts.segmentDurationSec,
        encoder: opts.encoder,
        preset: opts.preset,
        threads: opts.threads,
      },
      token,
      progress,
    );
  } catch (err) {
    throw toMediaError(err);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Master playlist text (RFC 8216) for a set of finished renditions, lowest
 * bandwidth first. With `audio` (the separate rendition from encodeAudio), an
 * `EXT-X-MEDIA TYPE=AUDIO,GROUP-ID="aud"` entry per track is added (the first
 * DEFAULT=YES, alternates with their LANGUAGE) and every variant gets
 * `AUDIO="aud"`, CODECS with mp4a and BANDWIDTH including the largest audio's.
 */
export function masterPlaylistText(renditions: HlsRenditionResult[], audio?: HlsAudioResult | null): string {
  return native().masterPlaylist(renditions, audio ? toNativeAudio(audio) : undefined);
}

/**
 * Writes `outDir/master.m3u8` for the given finished renditions (e.g. the rungs
 * ready so far, for PARTIALLY_READY), atomically (temp file + rename) so players
 * never read a half-written master. Returns the relative playlist name.
 */
export async function writeMasterPlaylist(
  outDir: string,
  renditions: HlsRenditionResult[],
  audio?: HlsAudioResult | null,
): Promise<string> {
  const target = path.join(outDir, 'master.m3u8');
  const tmp = `${target}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, masterPlaylistText(renditions, audio));
  await rename(tmp, target);
  return 'master.m3u8';
}

// ---------------------------------------------------------------------------
// Chunked encoding foundations (issue 3): GOP-aligned plans and checkpointed
// per-(chunk, rendition) encodes that a retried activity can resume.

/** Half-open source range `[startSec, endSec)`; serializable as-is (e.g. Temporal payloads). */
export interface Chunk {
  index: number;
  /** Zero-padded, sorts lexically: 'chunk_00007'. */
  name: string;
  startSec: number;
  /** Exclusive. */
  endSec: number;
  /** False when keyframes were too sparse and the chunk starts mid-GOP. */
  startsOnKeyframe: boolean;
}

/**
 * Splits the source into chunks of about `targetSec`, cutting on keyframes
 * (nearest to the target within [0.5x, 1.5x]); with sparse keyframes a chunk is
 * cut at the target anyway, so no chunk exceeds 1.5x. Chunks tile [0, duration).
 */
export function planChunks(probeResult: ProbeResult, targetSec: number): Chunk[] {
  if (!probeResult.video) throw new MediaError('NO_VIDEO_STREAM', 'planChunks: probe has no video stream');
  if (!(targetSec > 0)) throw new TypeError('planChunks: targetSec must be > 0');
  return native().planChunks(probeResult.keyframes, probeResult.durationSec, targetSec);
}

export interface EncodeChunkOptions {
  input: string;
  /** Outputs: `outDir/{rendition}/chunk_NNNNN.mp4` + `chunk_NNNNN.json` checkpoint. */
  outDir: string;
  chunk: Chunk;
  renditions: RenditionSpec[];
  /** Keyframe grid inside the chunk, from its start (default 4). */
  segmentDurationSec?: number;
  encoder?: 'auto' | 'libx264' | 'h264_nvenc';
  preset?: string;
  /**
   * 1: decoding and every rung on one native thread (least CPU). n > 1: each rung scales and
   * encodes on its own thread, its encoder given n / rungs threads (at least 1). 0 (default):
   * rung threads, FFmpeg picks the encoders' threads.
   */
  threads?: number;
  /** Pins a single-threaded encode to this CPU (index into the process's CPUs, modulo their count). */
  cpu?: number;
  signal?: AbortSignal;
}

export interface ChunkRenditionResult {
  rendition: string;
  /** Relative to outDir, e.g. '360p/chunk_00003.mp4'. */
  file: string;
  /** Relative path of the JSON checkpoint record. */
  checkpoint: string;
  bytes: number;
  sha256: string;
  durationSec: number;
  frames: number;
  width: number;
  height: number;
  codecs: string;
  encoder: string;
  /** True when a valid checkpoint existed and nothing was re-encoded. */
  skipped: boolean;
}

export interface EncodeChunkResult {
  chunk: Chunk;
  renditions: ChunkRenditionResult[];
}

/**
 * Encodes one chunk (video only) for every rendition not above the source,
 * decoding the range once. Each (chunk, rendition) output is committed
 * atomically (temp + rename, then a JSON record with size/sha256/duration);
 * outputs whose record is valid for the same settings are skipped.
 */
export async function encodeChunk(opts: EncodeChunkOptions): Promise<EncodeChunkResult> {
  validate({ input: opts.input, outDir: opts.outDir, renditions: opts.renditions, segmentDurationSec: opts.segmentDurationSec });
  const { signal } = opts;
  if (signal?.aborted) throw new MediaError('ABORTED', 'aborted before start', { cause: signal.reason });
  const n = native();
  const token = new n.CancelToken();
  const onAbort = (): void => token.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await n.encodeChunk(
      {
        input: opts.input,
        outDir: opts.outDir,
        chunk: opts.chunk,
        renditions: opts.renditions.map((r) => ({ ...r })),
        segmentDurationSec: opts.segmentDurationSec,
        encoder: opts.encoder,
        preset: opts.preset,
        threads: opts.threads,
        cpu: opts.cpu,
      },
      token,
    );
  } catch (err) {
    throw toMediaError(err);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

// ---------------------------------------------------------------------------
// Chunked pipeline (issue 3): encodeChunk per chunk (from the whole source, or from a
// splitSource file) -> packageRendition per rung, encodeAudio once, master. The worker runs
// each step as a Temporal activity on the whole source; inputs and outputs are local files.

/** Runs a native call with a CancelToken wired to `signal`; errors become MediaError. */
async function withCancel<T>(signal: AbortSignal | undefined, call: (token: Native.CancelToken) => Promise<T>): Promise<T> {
  if (signal?.aborted) throw new MediaError('ABORTED', 'aborted before start', { cause: signal.reason });
  const token = new (native().CancelToken)();
  const onAbort = (): void => token.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await call(token);
  } catch (err) {
    throw toMediaError(err);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

export interface SplitSourceOptions {
  input: string;
  chunks: Chunk[];
  outDir: string;
  signal?: AbortSignal;
}

export interface SplitChunkFile {
  index: number;
  name: string;
  /** Relative to outDir, e.g. 'chunk_00003.mp4'. */
  file: string;
  bytes: number;
}

/**
 * Stream-copies (no re-encode) each chunk's video into `outDir/{name}.mp4`, in one
 * pass over the source. A file starts at the keyframe at or before its chunk's
 * start and carries the source timing, so `encodeChunk({ input: file, chunk })`
 * yields exactly the frames of encoding `chunk` from the whole source.
 */
export async function splitSource(opts: SplitSourceOptions): Promise<SplitChunkFile[]> {
  if (!opts.input || !opts.outDir) throw new TypeError('splitSource: input and outDir are required');
  if (!opts.chunks?.length) throw new TypeError('splitSource: at least one chunk is required');
  return withCancel(opts.signal, (token) =>
    native().splitSource({ input: opts.input, chunks: opts.chunks, outDir: opts.outDir }, token),
  );
}

export interface PackageRenditionOptions {
  rendition: string;
  /** encodeChunk outputs of ONE rendition, in chunk order (their checkpoint records, when next to them, give exact chunk starts). */
  chunkFiles: string[];
  /** The rendition directory (e.g. `<root>/720p`); the master goes in its parent. */
  outDir: string;
  segmentDurationSec: number;
}

/**
 * Stream-copy remux of one rendition's chunk MP4s into `outDir/{init.mp4,
 * seg_NNNNN.m4s, index.m3u8}`: continuous timestamps, one segment per forced
 * keyframe (identical boundaries across renditions of the same plan), exact
 * EXTINF, measured bandwidth. Rejects with ENCODER_ERROR when chunks do not share
 * SPS/PPS. `playlist` in the result is `<basename(outDir)>/index.m3u8`.
 */
export async function packageRendition(opts: PackageRenditionOptions): Promise<HlsRenditionResult> {
  if (!RUNG_NAME.test(opts.rendition)) throw new TypeError(`packageRendition: bad rendition name ${JSON.stringify(opts.rendition)}`);
  if (!opts.chunkFiles?.length) throw new TypeError('packageRendition: chunkFiles is empty');
  try {
    return await native().packageRendition({ ...opts, chunkFiles: [...opts.chunkFiles] });
  } catch (err) {
    throw toMediaError(err);
  }
}

export interface HlsAudioResult {
  /** EXT-X-MEDIA NAME: the language when tagged, else 'audio'. */
  name: string;
  language: string | null;
  /** Output channels (always 2: surround is downmixed). */
  channels: number;
  sourceChannels: number;
  sampleRate: number;
  /** RFC 6381 from the encoder's AudioSpecificConfig, e.g. 'mp4a.40.2'. */
  codecs: string;
  bandwidth: number;
  averageBandwidth: number;
  durationSec: number;
  /** Relative to outDir: 'audio/index.m3u8' (alternates: 'audio_1/index.m3u8', ...). */
  playlist: string;
  segments: HlsSegmentInfo[];
  /** The source's other audio streams (same settings and grid), listed in the same group, not DEFAULT. */
  alternates: HlsAudioResult[];
}

function fromNativeAudio(a: Native.HlsAudioResult): HlsAudioResult {
  return { ...a, language: a.language ?? null, alternates: a.alternates.map(fromNativeAudio) };
}

function toNativeAudio(a: HlsAudioResult): Native.HlsAudioResult {
  return { ...a, language: a.language ?? undefined, alternates: (a.alternates ?? []).map(toNativeAudio) };
}

export interface EncodeAudioOptions {
  input: string;
  /** The rendition is written to `outDir/audio/` (init.mp4, seg_NNNNN.m4s, index.m3u8). */
  outDir: string;
  segmentDurationSec: number;
  signal?: AbortSignal;
}

/**
 * Encodes the source's first audio stream ONCE (AAC-LC, stereo, 48 kHz; 5.1 is
 * downmixed) into an fMP4 HLS audio rendition on the segment grid, on the same
 * timeline as packageRendition's video. Further audio streams become
 * `alternates` (`audio_1/`, ...), NAME = their language. Resolves null when
 * there is no audio.
 */
export async function encodeAudio(opts: EncodeAudioOptions): Promise<HlsAudioResult | null> {
  if (!opts.input || !opts.outDir) throw new TypeError('encodeAudio: input and outDir are required');
  const seg = opts.segmentDurationSec;
  if (!(seg >= 0.5 && seg <= 60)) throw new TypeError('encodeAudio: segmentDurationSec must be in [0.5, 60]');
  const r = await withCancel(opts.signal, (token) =>
    native().encodeAudio({ input: opts.input, outDir: opts.outDir, segmentDurationSec: seg }, token),
  );
  return r ? fromNativeAudio(r) : null;
}

export interface ThumbnailsOptions {
  input: string;
  outDir: string;
  /** Default: 10% into the video, at most 10 s. */
  posterAtSec?: number;
  /** Sprite of `columns` x N tiles, one every `intervalSec`, `tileWidth` wide (display aspect). */
  storyboard?: { intervalSec: number; columns: number; tileWidth: number };
  signal?: AbortSignal;
}

export interface ThumbnailsResult {
  poster: 'poster.jpg';
  posterWidth: number;
  posterHeight: number;
  storyboard: {
    image: 'storyboard.jpg';
    vtt: 'storyboard.vtt';
    tiles: number;
    tileWidth: number;
    tileHeight: number;
    columns: number;
  } | null;
}

/**
 * Poster JPEG (display aspect, rotation applied, at most 720 px high) and, when
 * asked, a storyboard sprite + WebVTT whose cues are `storyboard.jpg#xywh=x,y,w,h`.
 * Files are written into `outDir` under the names in the result.
 */
export async function thumbnails(opts: ThumbnailsOptions): Promise<ThumbnailsResult> {
  if (!opts.input || !opts.outDir) throw new TypeError('thumbnails: input and outDir are required');
  const r = await withCancel(opts.signal, (token) =>
    native().thumbnails({ input: opts.input, outDir: opts.outDir, posterAtSec: opts.posterAtSec, storyboard: opts.storyboard }, token),
  );
  return { ...r, storyboard: r.storyboard ?? null };
}
