import { describe, expect, it } from 'vitest';
import { ObjectCache, cacheableObject } from '../../src/gateway/object-cache.ts';

const obj = (n: number, fill = 1) => ({ body: Buffer.alloc(n, fill), etag: `"${n}-${fill}"` });

describe('ObjectCache', () => {
  it('keeps total bytes within maxBytes, evicting the least recently used', () => {
    const c = new ObjectCache({ maxBytes: 100, maxObjectBytes: 60 });
    c.set('a', obj(40));
    c.set('b', obj(40));
    expect(c.get('a')?.body.length).toBe(40); // a is now the most recent
    c.set('c', obj(40)); // 120 > 100: b (least recent) goes
    expect(c.has('a')).toBe(true);
    expect(c.has('b')).toBe(false);
    expect(c.has('c')).toBe(true);
    expect(c.stats()).toMatchObject({ entries: 2, bytes: 80, evicted: 1, hits: 1 });
  });

  it('never holds objects over maxObjectBytes, empty ones, or anything when disabled', () => {
    const c = new ObjectCache({ maxBytes: 1000, maxObjectBytes: 60 });
    c.set('big', obj(61));
    c.set('empty', obj(0));
    expect(c.stats().entries).toBe(0);
    expect(c.fits(60)).toBe(true);
    const off = new ObjectCache({ maxBytes: 0, maxObjectBytes: 60 });
    off.set('a', obj(10));
    expect(off.enabled).toBe(false);
    expect(off.has('a')).toBe(false);
  });

  it('replaces an entry without double counting and drops a prefix', () => {
    const c = new ObjectCache({ maxBytes: 1000, maxObjectBytes: 500 });
    c.set('hls/v1/a', obj(10));
    c.set('hls/v1/a', obj(20, 2));
    c.set('hls/v1/b', obj(30));
    c.set('hls/v2/a', obj(40));
    expect(c.stats().bytes).toBe(90);
    expect(c.get('hls/v1/a')?.etag).toBe('"20-2"');
    c.deletePrefix('hls/v1/');
    expect(c.stats()).toMatchObject({ entries: 1, bytes: 40 });
    expect(c.get('hls/v1/b')).toBeUndefined();
    expect(c.stats().misses).toBe(1);
  });
});

describe('cacheableObject', () => {
  it('holds segments in any servable state and everything else only once READY', () => {
    expect(cacheableObject('360p/seg_00001.m4s', 'PARTIALLY_READY')).toBe(true);
    expect(cacheableObject('360p/init.mp4', 'PARTIALLY_READY')).toBe(true);
    expect(cacheableObject('master.m3u8', 'PARTIALLY_READY')).toBe(false);
    expect(cacheableObject('360p/index.m3u8', 'PARTIALLY_READY')).toBe(false);
    expect(cacheableObject('poster.jpg', 'PARTIALLY_READY')).toBe(false);
    expect(cacheableObject('master.m3u8', 'READY')).toBe(true);
    expect(cacheableObject('storyboard.vtt', 'READY')).toBe(true);
  });
});
