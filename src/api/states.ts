// Upload state machine (docs/states.md): CREATED -> UPLOADING -> UPLOADED, or FAILED / EXPIRED. (Videos'
// and renditions' are src/common/video-state.ts's.)
// The same table is enforced twice: here (callers name the states they may move from, so an UPDATE
// simply matches no row when the move is not allowed) and by the trigger in
// migrations/002_upload_transitions.sql (nothing, not even a hand-written UPDATE, leaves UPLOADED).
export const UPLOAD_STATES = ['CREATED', 'UPLOADING', 'UPLOADED', 'FAILED', 'EXPIRED'] as const;
export type UploadState = (typeof UPLOAD_STATES)[number];

export const UPLOAD_TRANSITIONS: Record<UploadState, readonly UploadState[]> = {
  // creation-with-upload can carry the whole file in the POST: CREATED -> UPLOADED directly.
  CREATED: ['UPLOADING', 'UPLOADED', 'FAILED', 'EXPIRED'],
  UPLOADING: ['UPLOADED', 'FAILED', 'EXPIRED'],
  UPLOADED: [],
  FAILED: [],
  EXPIRED: [],
};

export function canTransitionUpload(from: UploadState, to: UploadState): boolean {
  return from === to || UPLOAD_TRANSITIONS[from].includes(to);
}

/** The states an upload may be in for an UPDATE to `to` to apply (including `to` itself: idempotent). */
export function uploadSourcesFor(to: UploadState): UploadState[] {
  return UPLOAD_STATES.filter((from) => canTransitionUpload(from, to));
}
