// Types shared by the workflow and its activities. Pure types and constants: workflows import
// nothing else from the worker side (the workflow sandbox must not load Node or native modules).
import type { RenditionState } from '../common/video-state.ts';

export type { RenditionState };

export interface PlannedRendition {
  name: string;
  height: number;
  videoBitrate: number;
  maxrate?: number;
  bufsize?: number;
}

/** What prepareSource learned and planned; the chunk list itself stays in MinIO (manifest). */
export interface PreparedSource {
  durationSec: number;
  width: number;
  height: number;
  hasAudio: boolean;
  /** Lowest first: the first one is published alone as soon as it is done (PARTIALLY_READY). */
  renditions: PlannedRendition[];
  chunkCount: number;
  segmentDurationSec: number;
  /** How many chunk encodes the workflow keeps in flight. */
  concurrency: number;
}

/** The chunk manifest stored at work/{videoId}/manifest.json. */
export interface ChunkManifest {
  videoId: string;
  sourceKey: string;
  durationSec: number;
  segmentDurationSec: number;
  /** Half-open [startSec, endSec) ranges, zero-padded names ('chunk_00007'). */
  chunks: Array<{ index: number; name: string; startSec: number; endSec: number; startsOnKeyframe: boolean }>;
  renditions: PlannedRendition[];
  /** Settings fingerprint: same input and settings give the same checkpoint keys. */
  settingsKey: string;
}

/** A packaged rendition, as the master playlist needs it (no media bytes). */
export interface PackagedRendition {
  name: string;
  width: number;
  height: number;
  bandwidth: number;
  averageBandwidth: number;
  codecs: string;
  frameRate: number;
  playlist: string;
}

/** The packaged audio rendition (encoded once for the whole source). */
export interface PackagedAudio {
  name: string;
  language: string | null;
  channels: number;
  sourceChannels: number;
  sampleRate: number;
  codecs: string;
  bandwidth: number;
  averageBandwidth: number;
  durationSec: number;
  playlist: string;
  /** The source's other audio tracks, listed in the same group (not DEFAULT). */
  alternates: PackagedAudio[];
}

export interface RenditionStatus {
  name: string;
  state: RenditionState;
  attempts: number;
  error: string | null;
  chunksDone: number;
  chunksTotal: number;
}

export interface WorkflowStatus {
  videoId: string;
  stage: 'PREPARING' | 'TRANSCODING' | 'PUBLISHING' | 'DONE' | 'FAILED';
  renditions: RenditionStatus[];
}

/** Details carried by a failed encodeChunk, so only the renditions that failed are retried. */
export interface EncodeFailureDetails {
  failedRenditions: string[];
}

/** Stable failure types: input errors are non-retryable and end the video FAILED at once. */
export const NON_RETRYABLE_MEDIA_ERRORS = [
  'NOT_MEDIA',
  'NO_VIDEO_STREAM',
  'UNSUPPORTED_CODEC',
  'CORRUPT_INPUT',
  'EMPTY_INPUT',
  'SOURCE_MISSING',
  'VIDEO_NOT_FOUND',
] as const;
