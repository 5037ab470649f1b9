// Types shared by the workflow and its activities. Pure types: workflows import nothing else from
// the worker side (the workflow sandbox must not load Node or native modules).
export type RenditionState = 'PENDING' | 'PROCESSING' | 'DONE' | 'RETRYING' | 'FAILED';

export interface PlannedRendition {
  name: string;
  height: number;
  videoBitrate: number;
  maxrate?: number;
  bufsize?: number;
}

export interface PreparedSource {
  durationSec: number;
  width: number;
  height: number;
  renditions: PlannedRendition[];
}

export interface RenditionStatus {
  name: string;
  state: RenditionState;
  attempts: number;
  error: string | null;
}

export interface WorkflowStatus {
  videoId: string;
  stage: 'PREPARING' | 'TRANSCODING' | 'PUBLISHING' | 'DONE' | 'FAILED';
  renditions: RenditionStatus[];
}

/** Stable failure types: input errors are non-retryable and end the video FAILED at once. */
export const NON_RETRYABLE_MEDIA_ERRORS = [
  'NOT_MEDIA',
  'NO_VIDEO_STREAM',
  'UNSUPPORTED_CODEC',
  'CORRUPT_INPUT',
  'EMPTY_INPUT',
  'SOURCE_MISSING',
] as const;
