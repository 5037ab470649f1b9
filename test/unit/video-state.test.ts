import { describe, expect, it } from 'vitest';
import { SERVABLE_STATES } from '../../src/gateway/http.ts';
import {
  canMoveRendition,
  canMoveVideo,
  FINAL_VIDEO_STATES,
  isFinalVideoState,
  isPlayable,
  RENDITION_STATES,
  RENDITION_TRANSITIONS,
  renditionMovesInto,
  VIDEO_STATES,
  VIDEO_TRANSITIONS,
  videoMovesInto,
} from '../../src/common/video-state.ts';

describe('video state machine', () => {
  it("follows docs/states.md: CREATED -> PROCESSING -> PARTIALLY_READY -> READY, or FAILED", () => {
    const path = ['CREATED', 'PROCESSING', 'PARTIALLY_READY', 'READY'] as const;
    for (let i = 1; i < path.length; i++) expect(canMoveVideo(path[i - 1]!, path[i]!)).toBe(true);
    for (const from of ['CREATED', 'PROCESSING', 'PARTIALLY_READY'] as const) expect(canMoveVideo(from, 'FAILED')).toBe(true);
  });

  it('never goes backwards, and nothing leaves READY or FAILED', () => {
    expect(canMoveVideo('READY', 'FAILED')).toBe(false);
    expect(canMoveVideo('READY', 'PARTIALLY_READY')).toBe(false);
    expect(canMoveVideo('PARTIALLY_READY', 'PROCESSING')).toBe(false);
    expect(canMoveVideo('PROCESSING', 'CREATED')).toBe(false);
    for (const final of ['READY', 'FAILED'] as const) {
      expect(VIDEO_TRANSITIONS[final]).toEqual([]);
      for (const to of VIDEO_STATES) expect(canMoveVideo(final, to)).toBe(to === final);
    }
    expect([...FINAL_VIDEO_STATES].sort()).toEqual(['FAILED', 'READY']);
    expect(isFinalVideoState('PARTIALLY_READY')).toBe(false);
    expect(isFinalVideoState('nonsense')).toBe(false);
  });

  it('names the states a guarded UPDATE may move from (never the target: a replay matches no row)', () => {
    expect(videoMovesInto('FAILED')).toEqual(['CREATED', 'PROCESSING', 'PARTIALLY_READY']);
    expect(videoMovesInto('READY')).toEqual(['CREATED', 'PROCESSING', 'PARTIALLY_READY']);
    expect(videoMovesInto('PARTIALLY_READY')).toEqual(['CREATED', 'PROCESSING']);
    expect(videoMovesInto('PROCESSING')).toEqual(['CREATED']);
    expect(videoMovesInto('CREATED')).toEqual([]);
  });

  it('playback exists for READY and PARTIALLY_READY only; the gateway serves the same set', () => {
    expect(VIDEO_STATES.filter(isPlayable)).toEqual(['PARTIALLY_READY', 'READY']);
    expect(isPlayable('DELETED')).toBe(false);
    expect([...SERVABLE_STATES].sort()).toEqual(['PARTIALLY_READY', 'READY']);
  });
});

describe('rendition state machine', () => {
  it('PENDING -> PROCESSING -> DONE, RETRYING between attempts, FAILED when retries are spent', () => {
    expect(canMoveRendition('PENDING', 'PROCESSING')).toBe(true);
    expect(canMoveRendition('PROCESSING', 'RETRYING')).toBe(true);
    expect(canMoveRendition('RETRYING', 'PROCESSING')).toBe(true);
    expect(canMoveRendition('PROCESSING', 'DONE')).toBe(true);
    expect(canMoveRendition('RETRYING', 'FAILED')).toBe(true);
    expect(canMoveRendition('RETRYING', 'DONE')).toBe(false);
    expect(canMoveRendition('PENDING', 'DONE')).toBe(false);
    for (const final of ['DONE', 'FAILED'] as const) {
      expect(RENDITION_TRANSITIONS[final]).toEqual([]);
      for (const to of RENDITION_STATES) expect(canMoveRendition(final, to)).toBe(to === final);
    }
    expect(renditionMovesInto('FAILED')).toEqual(['PENDING', 'PROCESSING', 'RETRYING']);
    expect(renditionMovesInto('DONE')).toEqual(['PROCESSING']);
  });
});
