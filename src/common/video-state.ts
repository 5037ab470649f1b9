// Video and rendition state machines (docs/states.md): the one definition. Pure (no imports),
// so the web app (bundled by Vite) and the workflow's types use it too. Every move is written by video-store.ts,
// whose UPDATEs name the states they may come from (a replayed or late move matches no row), and the
// same tables are enforced by the triggers of migrations/011_video_transitions.sql, so a bug or a
// hand-written UPDATE cannot move a video backwards either.
//
// Deleting a video removes its row from any state; the trigger keeps a tombstone so a deleted video
// id never comes back (DELETED is final).

export const VIDEO_STATES = ['CREATED', 'PROCESSING', 'PARTIALLY_READY', 'READY', 'FAILED'] as const;
export type VideoState = (typeof VIDEO_STATES)[number];

/**
 * Legal moves (a state to itself is always allowed: a replay). READY and FAILED are final: a failure
 * after READY (thumbnails, cleanup) must not unpublish a video. A PARTIALLY_READY video whose later
 * rungs fail becomes FAILED, as the workflow has always reported it (clients wait for READY or FAILED).
 */
export const VIDEO_TRANSITIONS: Record<VideoState, readonly VideoState[]> = {
  CREATED: ['PROCESSING', 'PARTIALLY_READY', 'READY', 'FAILED'],
  PROCESSING: ['PARTIALLY_READY', 'READY', 'FAILED'],
  PARTIALLY_READY: ['READY', 'FAILED'],
  READY: [],
  FAILED: [],
};

export const RENDITION_STATES = ['PENDING', 'PROCESSING', 'RETRYING', 'DONE', 'FAILED'] as const;
export type RenditionState = (typeof RENDITION_STATES)[number];

/** PENDING -> PROCESSING -> DONE; RETRYING while a failed attempt waits; FAILED when retries are spent. */
export const RENDITION_TRANSITIONS: Record<RenditionState, readonly RenditionState[]> = {
  PENDING: ['PROCESSING', 'FAILED'],
  PROCESSING: ['RETRYING', 'DONE', 'FAILED'],
  RETRYING: ['PROCESSING', 'FAILED'],
  DONE: [],
  FAILED: [],
};

export function canMoveVideo(from: VideoState, to: VideoState): boolean {
  return from === to || VIDEO_TRANSITIONS[from].includes(to);
}

export function canMoveRendition(from: RenditionState, to: RenditionState): boolean {
  return from === to || RENDITION_TRANSITIONS[from].includes(to);
}

/** The states with a real move into `to` (not `to` itself): a guarded UPDATE's `WHERE state = ANY(...)`. */
export function videoMovesInto(to: VideoState): VideoState[] {
  return VIDEO_STATES.filter((from) => VIDEO_TRANSITIONS[from].includes(to));
}

export function renditionMovesInto(to: RenditionState): RenditionState[] {
  return RENDITION_STATES.filter((from) => RENDITION_TRANSITIONS[from].includes(to));
}

/** Nothing leaves these (READY, FAILED): clients following a video stop here. */
export const FINAL_VIDEO_STATES: ReadonlySet<string> = new Set(VIDEO_STATES.filter((s) => VIDEO_TRANSITIONS[s].length === 0));

export function isFinalVideoState(state: string): boolean {
  return FINAL_VIDEO_STATES.has(state);
}

/**
 * Playback exists once at least one rendition is done: the gateway serves the video's objects and
 * the API gives its playback and thumbnail URLs. Other states (and unknown videos) are not found.
 */
export const PLAYABLE_STATES: ReadonlySet<string> = new Set<VideoState>(['PARTIALLY_READY', 'READY']);

export function isPlayable(state: string): boolean {
  return PLAYABLE_STATES.has(state);
}
