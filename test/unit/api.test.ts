import { ERRORS as TUS_ERRORS } from '@tus/utils';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { isTusRequest } from '../../src/api/app.ts';
import { loadApiOptions as apiOptionsFromEnv } from '../../src/common/config.ts';
import { ApiError, ERROR_STATUS, errorBody, toHttpError } from '../../src/api/errors.ts';
import { videoIdForUpload } from '../../src/api/finalize.ts';
import { decodeCursor, encodeCursor, listQuerySchema, uploadView, videoView } from '../../src/api/routes.ts';
import { canTransitionUpload, UPLOAD_STATES, uploadSourcesFor } from '../../src/api/states.ts';
import { parseChecksumHeader, parseUploadMetadata, tusIdOf, uploadIdOfTusId } from '../../src/api/tus.ts';
import { loadConfig } from '../../src/common/config.ts';
import { newUploadId } from '../../src/common/ids.ts';
import { ID_RE } from '../../src/common/keys.ts';

describe('upload state machine', () => {
  it('moves forward only, and nothing leaves UPLOADED/FAILED/EXPIRED', () => {
    expect(canTransitionUpload('CREATED', 'UPLOADING')).toBe(true);
    expect(canTransitionUpload('CREATED', 'UPLOADED')).toBe(true); // creation-with-upload
    expect(canTransitionUpload('UPLOADING', 'UPLOADED')).toBe(true);
    expect(canTransitionUpload('UPLOADING', 'FAILED')).toBe(true);
    expect(canTransitionUpload('UPLOADING', 'EXPIRED')).toBe(true);
    expect(canTransitionUpload('UPLOADING', 'CREATED')).toBe(false);
    for (const terminal of ['UPLOADED', 'FAILED', 'EXPIRED'] as const) {
      for (const to of UPLOAD_STATES) expect(canTransitionUpload(terminal, to)).toBe(to === terminal);
    }
  });

  it('names the states an UPDATE may come from (idempotent: the target itself included)', () => {
    expect(uploadSourcesFor('UPLOADED').sort()).toEqual(['CREATED', 'UPLOADED', 'UPLOADING']);
    expect(uploadSourcesFor('UPLOADING').sort()).toEqual(['CREATED', 'UPLOADING']);
    expect(uploadSourcesFor('FAILED')).not.toContain('UPLOADED');
  });
});

describe('error table and handler', () => {
  it('every code is SNAKE_CASE with a 4xx/5xx status', () => {
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      expect(code).toMatch(/^[A-Z][A-Z0-9_]*$/);
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(600);
    }
    expect(ERROR_STATUS.CHECKSUM_MISMATCH).toBe(460);
    expect(ERROR_STATUS.UPLOAD_TOO_LARGE).toBe(413);
    expect(ERROR_STATUS.VIDEO_NOT_FOUND).toBe(404);
  });

  it('ApiError carries the tus {status_code, body} shape with the JSON body', () => {
    const e = new ApiError('EMPTY_UPLOAD', 'zero bytes');
    expect(e.status_code).toBe(400);
    expect(JSON.parse(e.body)).toEqual({ error: { code: 'EMPTY_UPLOAD', message: 'zero bytes' } });
    expect(toHttpError(e)).toMatchObject({ status: 400, code: 'EMPTY_UPLOAD', unexpected: false });
  });

  it('maps tus-node-server errors, zod errors, fastify errors and the unknown', () => {
    expect(toHttpError(TUS_ERRORS.ERR_MAX_SIZE_EXCEEDED)).toMatchObject({ status: 413, code: 'UPLOAD_TOO_LARGE' });
    expect(toHttpError(TUS_ERRORS.INVALID_OFFSET)).toMatchObject({ status: 409, code: 'OFFSET_MISMATCH' });
    expect(toHttpError(TUS_ERRORS.FILE_NOT_FOUND)).toMatchObject({ status: 404, code: 'UPLOAD_NOT_FOUND' });
    expect(toHttpError(TUS_ERRORS.FILE_NO_LONGER_EXISTS)).toMatchObject({ status: 410, code: 'UPLOAD_GONE' });
    const zerr = z.object({ limit: z.number() }).safeParse({ limit: 'x' }).error;
    expect(toHttpError(zerr)).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
    expect(toHttpError(Object.assign(new Error('Unsupported Media Type'), { statusCode: 415 }))).toMatchObject({ status: 415, code: 'BAD_REQUEST' });
    expect(toHttpError({ status_code: 412, body: 'Tus-Resumable Required\n' })).toMatchObject({ status: 412, code: 'TUS_VERSION_REQUIRED', message: 'Tus-Resumable Required' });
    expect(toHttpError(new Error('boom'))).toMatchObject({ status: 500, code: 'INTERNAL', unexpected: true });
    expect(errorBody('NOT_FOUND', 'x')).toEqual({ error: { code: 'NOT_FOUND', message: 'x' } });
  });
});

describe('tus request parsing', () => {
  it('Upload-Checksum: sha1/sha256 with base64 digests; others 400', () => {
    const d = Buffer.alloc(32, 1).toString('base64');
    expect(parseChecksumHeader(`sha256 ${d}`)).toEqual({ algorithm: 'sha256', digest: d });
    expect(parseChecksumHeader(`SHA1 ${Buffer.alloc(20).toString('base64')}`).algorithm).toBe('sha1');
    expect(() => parseChecksumHeader(`md5 ${Buffer.alloc(16).toString('base64')}`)).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED_CHECKSUM_ALGORITHM' }),
    );
    expect(() => parseChecksumHeader(`sha256 ${Buffer.alloc(20).toString('base64')}`)).toThrow(expect.objectContaining({ code: 'INVALID_CHECKSUM' }));
    expect(() => parseChecksumHeader('sha256')).toThrow(expect.objectContaining({ code: 'INVALID_CHECKSUM' }));
  });

  it('Upload-Metadata: filename, filetype, optional lower-cased sha256', () => {
    const hex = 'AB'.repeat(32);
    expect(parseUploadMetadata({ filename: 'a.mp4', filetype: 'video/mp4', sha256: hex })).toEqual({
      filename: 'a.mp4',
      filetype: 'video/mp4',
      sha256: hex.toLowerCase(),
      private: false,
      dedup: false,
    });
    expect(parseUploadMetadata(undefined)).toEqual({ filename: null, filetype: null, sha256: null, private: false, dedup: false });
    expect(() => parseUploadMetadata({ sha256: 'abc' })).toThrow(expect.objectContaining({ code: 'INVALID_METADATA' }));
  });

  it('routes every non-GET verb under /v1/uploads to tus, GET to REST', () => {
    expect(isTusRequest('POST', '/v1/uploads')).toBe(true);
    expect(isTusRequest('PATCH', '/v1/uploads/upl_x?y=1')).toBe(true);
    expect(isTusRequest('OPTIONS', '/v1/uploads/')).toBe(true);
    expect(isTusRequest('GET', '/v1/uploads/upl_x')).toBe(false);
    expect(isTusRequest('POST', '/v1/uploadsX')).toBe(false);
    expect(isTusRequest('DELETE', '/v1/videos/vid_x')).toBe(false);
  });

  it('tus ids carry the uploads/ prefix; URLs and rows carry the bare upload id', () => {
    const id = newUploadId();
    expect(tusIdOf(id)).toBe(`uploads/${id}`);
    expect(uploadIdOfTusId(tusIdOf(id))).toBe(id);
  });

  it('the video id is derived from the upload id (one upload, one video)', () => {
    const id = newUploadId();
    const v = videoIdForUpload(id);
    expect(v).toMatch(ID_RE);
    expect(v.startsWith('vid_')).toBe(true);
    expect(videoIdForUpload(id)).toBe(v);
  });
});

describe('REST helpers', () => {
  it('cursor round trip; garbage is a validation error', () => {
    const c = encodeCursor('2026-11-23 11:00:00.123456+00', `vid_${'a'.repeat(20)}`);
    expect(decodeCursor(c)).toEqual({ createdAt: '2026-11-23 11:00:00.123456+00', videoId: `vid_${'a'.repeat(20)}` });
    expect(() => decodeCursor('garbage')).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => decodeCursor(Buffer.from('["x","vid_a"]').toString('base64url'))).toThrow(ApiError);
  });

  it('list query validation', () => {
    expect(listQuerySchema.parse({})).toEqual({ limit: 20 });
    expect(listQuerySchema.parse({ limit: '5', state: 'READY' })).toEqual({ limit: 5, state: 'READY' });
    expect(listQuerySchema.safeParse({ limit: '0' }).success).toBe(false);
    expect(listQuerySchema.safeParse({ limit: '101' }).success).toBe(false);
    expect(listQuerySchema.safeParse({ state: 'DONE' }).success).toBe(false);
  });

  it('views have the contract fields', () => {
    const now = new Date();
    const up = uploadView({
      upload_id: 'upl_x', status: 'FAILED', bytes_uploaded: '5', size: '10', filename: null, filetype: null,
      sha256_expected: null, sha256_actual: null, object_key: null, error_code: 'CHECKSUM_MISMATCH',
      error_message: 'bad', created_at: now, updated_at: now, video_id: null,
      owner_key_id: null, private: false, dedup: false, dedup_video_id: null,
    });
    expect(up).toMatchObject({ uploadId: 'upl_x', status: 'FAILED', bytesUploaded: 5, size: 10, videoId: null, error: { code: 'CHECKSUM_MISMATCH', message: 'bad' } });
    const cfg = loadConfig({ VORA_PLAYBACK_URL: 'http://cdn.example/' });
    const row = {
      video_id: 'vid_x', upload_id: 'upl_x', state: 'READY' as const, failure_code: null, failure_message: null,
      duration_sec: 3, source: { width: 1920 }, source_key: 's', workflow_id: 'w', created_at: now, updated_at: now, created_text: '',
      owner_key_id: null, private: false,
    };
    const v = videoView(cfg, row, []);
    expect(v).toMatchObject({ videoId: 'vid_x', uploadId: 'upl_x', state: 'READY', failure: null, durationSec: 3, source: { width: 1920 }, renditions: [] });
    expect(v.playbackUrl).toBe('http://cdn.example/hls/vid_x/master.m3u8');
    expect(videoView(cfg, { ...row, state: 'FAILED', failure_code: 'TRANSCODE_FAILED', failure_message: 'x' }, [])).toMatchObject({
      playbackUrl: null,
      thumbnailUrl: null,
      failure: { code: 'TRANSCODE_FAILED', message: 'x' },
    });
  });
});

describe('api options from env', () => {
  it('defaults: 20 GiB max, 24 h expiry, 8 MiB parts, postgres locker', () => {
    const o = apiOptionsFromEnv({});
    expect(o.maxUploadBytes).toBe(20 * 1024 ** 3);
    expect(o.uploadExpiryMs).toBe(24 * 3600_000);
    expect(o.partSizeBytes).toBe(8 * 1024 ** 2);
    expect(o.locker).toBe('postgres');
  });

  it('overrides and refuses nonsense', () => {
    expect(apiOptionsFromEnv({ VORA_MAX_UPLOAD_BYTES: '1000' }).maxUploadBytes).toBe(1000);
    expect(() => apiOptionsFromEnv({ VORA_MAX_UPLOAD_BYTES: 'lots' })).toThrow(/VORA_MAX_UPLOAD_BYTES/);
    expect(() => apiOptionsFromEnv({ VORA_UPLOAD_PART_MIB: '4' })).toThrow(/VORA_UPLOAD_PART_MIB/);
    expect(() => apiOptionsFromEnv({ VORA_UPLOAD_LOCKER: 'redis' })).toThrow(/VORA_UPLOAD_LOCKER/);
  });
});
