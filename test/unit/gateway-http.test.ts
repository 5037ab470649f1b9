import { describe, expect, it } from 'vitest';
import {
  ERROR_STATUS,
  answerFor,
  cacheControlFor,
  contentTypeFor,
  errorBody,
  etagMatches,
  parseHlsPath,
  parseRange,
  statusLine,
} from '../../src/gateway/http.ts';

const VID = 'vid_abcdefghijklmnopqrst';

describe('parseHlsPath', () => {
  it('accepts one- and two-level object paths', () => {
    for (const rel of ['master.m3u8', '360p/index.m3u8', '360p/init.mp4', '360p/seg_00000.m4s', 'poster.jpg', 'a-b_c.d/e-f.ts']) {
      expect(parseHlsPath(`/hls/${VID}/${rel}`)).toEqual({ ok: true, videoId: VID, rel });
    }
  });
  it('rejects malformed video ids with BAD_VIDEO_ID', () => {
    for (const id of ['vid_short', 'vid_ABCDEFGHIJKLMNOPQRST', 'upl_abcdefghijklmnopqrst', 'vid_abcdefghijklmnopqrs1', '', '..']) {
      const r = parseHlsPath(`/hls/${id}/master.m3u8`);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.code).toBe('BAD_VIDEO_ID');
    }
  });
  it('rejects traversal, depth, odd characters and empty segments with NOT_FOUND', () => {
    for (const rel of ['', '..', '.', '../x', '360p/..', 'a/b/c.m4s', '360p//x', '360p/', 'x%2e%2e', 'a b', 'seg?.m4s', 'x\\y', '%2F']) {
      const r = parseHlsPath(`/hls/${VID}/${rel}`);
      expect(r, rel).toMatchObject({ ok: false, code: 'NOT_FOUND' });
    }
    expect(parseHlsPath(`/hls/${VID}`)).toMatchObject({ ok: false, code: 'NOT_FOUND' });
    expect(parseHlsPath('/other')).toMatchObject({ ok: false, code: 'NOT_FOUND' });
  });
});

describe('content types and cache control', () => {
  it('maps HLS extensions', () => {
    expect(contentTypeFor('master.m3u8')).toBe('application/vnd.apple.mpegurl');
    expect(contentTypeFor('360p/seg_00001.m4s')).toBe('video/iso.segment');
    expect(contentTypeFor('360p/init.mp4')).toBe('video/mp4');
    expect(contentTypeFor('360p/seg_1.ts')).toBe('video/mp2t');
    expect(contentTypeFor('subs/en.vtt')).toBe('text/vtt');
    expect(contentTypeFor('poster.JPG')).toBe('image/jpeg');
    expect(contentTypeFor('README')).toBe('application/octet-stream');
  });
  it('makes segments immutable and playlists short while partially ready', () => {
    expect(cacheControlFor('360p/seg_00000.m4s', 'PARTIALLY_READY')).toBe('public, max-age=31536000, immutable');
    expect(cacheControlFor('360p/init.mp4', 'READY')).toBe('public, max-age=31536000, immutable');
    expect(cacheControlFor('master.m3u8', 'READY')).toBe('public, max-age=3600');
    expect(cacheControlFor('master.m3u8', 'PARTIALLY_READY')).toBe('public, max-age=2');
    expect(cacheControlFor('360p/index.m3u8', 'PARTIALLY_READY')).toBe('public, max-age=2');
  });
});

describe('parseRange', () => {
  const size = 1000;
  it('parses the three single-range forms', () => {
    expect(parseRange('bytes=0-99', size)).toEqual({ kind: 'range', start: 0, end: 99 });
    expect(parseRange('bytes=900-', size)).toEqual({ kind: 'range', start: 900, end: 999 });
    expect(parseRange('bytes=-100', size)).toEqual({ kind: 'range', start: 900, end: 999 });
    expect(parseRange('bytes=-5000', size)).toEqual({ kind: 'range', start: 0, end: 999 });
    expect(parseRange('bytes=990-5000', size)).toEqual({ kind: 'range', start: 990, end: 999 });
    expect(parseRange('BYTES = 1 - 2', size)).toEqual({ kind: 'range', start: 1, end: 2 });
  });
  it('reports unsatisfiable ranges', () => {
    expect(parseRange('bytes=1000-', size)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=5000-6000', size)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-0', size)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=0-', 0)).toEqual({ kind: 'unsatisfiable' });
  });
  it('ignores absent, invalid and multi-range headers (whole object)', () => {
    for (const h of [undefined, '', 'bytes=', 'bytes=-', 'bytes=5-3', 'items=0-1', 'bytes=0-1,5-6', 'bytes=a-b']) {
      expect(parseRange(h, size), String(h)).toEqual({ kind: 'none' });
    }
  });
});

describe('etagMatches', () => {
  it('compares weakly and handles lists and *', () => {
    expect(etagMatches('"abc"', '"abc"')).toBe(true);
    expect(etagMatches('W/"abc"', '"abc"')).toBe(true);
    expect(etagMatches('"x", "abc"', '"abc"')).toBe(true);
    expect(etagMatches('*', '"abc"')).toBe(true);
    expect(etagMatches('"x"', '"abc"')).toBe(false);
    expect(etagMatches(undefined, '"abc"')).toBe(false);
    expect(etagMatches('', '"abc"')).toBe(false);
  });
});

describe('errors', () => {
  it('has one status per code and the platform body shape', () => {
    expect(ERROR_STATUS.BAD_VIDEO_ID).toBe(400);
    expect(ERROR_STATUS.VIDEO_NOT_FOUND).toBe(404);
    expect(ERROR_STATUS.RANGE_NOT_SATISFIABLE).toBe(416);
    for (const code of Object.keys(ERROR_STATUS)) expect(code).toMatch(/^[A-Z][A-Z_]*$/);
    expect(JSON.parse(errorBody('INVALID_EVENTS', 'bad'))).toEqual({ error: { code: 'INVALID_EVENTS', message: 'bad' } });
    expect(statusLine(206)).toBe('206 Partial Content');
  });
});

describe('answerFor (cached and origin bodies alike)', () => {
  const o = { etag: '"e1"', lastModified: new Date('2030-01-01T00:00:00Z') };
  const q = (h: Partial<Record<'ifNoneMatch' | 'ifModifiedSince' | 'range' | 'ifRange', string>>) => ({ ifNoneMatch: '', ifModifiedSince: '', range: '', ifRange: '', ...h });
  it('answers 304 on a matching If-None-Match, else on If-Modified-Since, before any Range', () => {
    expect(answerFor(q({ ifNoneMatch: 'W/"e1"', range: 'bytes=0-1' }), o, 10, false)).toEqual({ kind: 'not_modified' });
    expect(answerFor(q({ ifModifiedSince: 'Tue, 01 Jan 2030 00:00:00 GMT', range: 'bytes=0-1' }), o, 10, false)).toEqual({ kind: 'not_modified' });
    // If-None-Match that does not match wins over a matching If-Modified-Since (RFC 9110 §13.1.3).
    expect(answerFor(q({ ifNoneMatch: '"other"', ifModifiedSince: 'Tue, 01 Jan 2030 00:00:00 GMT' }), o, 10, false)).toEqual({ kind: 'none' });
    expect(answerFor(q({ ifModifiedSince: 'Mon, 31 Dec 2029 00:00:00 GMT' }), o, 10, false)).toEqual({ kind: 'none' });
    expect(answerFor(q({ ifModifiedSince: 'not a date' }), o, 10, false)).toEqual({ kind: 'none' });
  });
  it('honours a Range unless HEAD or an If-Range for another version', () => {
    expect(answerFor(q({ range: 'bytes=2-4' }), o, 10, false)).toEqual({ kind: 'range', start: 2, end: 4 });
    expect(answerFor(q({ range: 'bytes=2-4', ifRange: '"e1"' }), o, 10, false)).toEqual({ kind: 'range', start: 2, end: 4 });
    expect(answerFor(q({ range: 'bytes=2-4', ifRange: '"e0"' }), o, 10, false)).toEqual({ kind: 'none' });
    expect(answerFor(q({ range: 'bytes=2-4' }), o, 10, true)).toEqual({ kind: 'none' });
    expect(answerFor(q({ range: 'bytes=20-' }), o, 10, false)).toEqual({ kind: 'unsatisfiable' });
  });
});
