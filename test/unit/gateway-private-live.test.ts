// Pure pieces of private playback, live pushes and pre-warming.
import { describe, expect, it } from 'vitest';
import { rewritePlaylist, routeOf } from '../../src/gateway/http.ts';
import { liveView } from '../../src/gateway/live.ts';
import { playlistUris } from '../../src/common/playback-cache.ts';
import { cachedStateLookup, toAccess } from '../../src/gateway/state.ts';

describe('rewritePlaylist', () => {
  it('adds the token to every URI line and URI attribute, keeping tags, comments and line ends', () => {
    const master = '#EXTM3U\r\n# a comment\r\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",URI="audio/index.m3u8"\r\n#EXT-X-STREAM-INF:BANDWIDTH=1\r\n360p/index.m3u8\r\n\r\n';
    expect(rewritePlaylist(master, 'T.x')).toBe(
      '#EXTM3U\r\n# a comment\r\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",URI="audio/index.m3u8?token=T.x"\r\n#EXT-X-STREAM-INF:BANDWIDTH=1\r\n360p/index.m3u8?token=T.x\r\n\r\n',
    );
    const media = '#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:4,\nseg_00000.m4s\n#EXTINF:4,\nseg_00001.m4s?v=2\n#EXT-X-ENDLIST\n';
    expect(rewritePlaylist(media, 'abc')).toBe('#EXTM3U\n#EXT-X-MAP:URI="init.mp4?token=abc"\n#EXTINF:4,\nseg_00000.m4s?token=abc\n#EXTINF:4,\nseg_00001.m4s?v=2&token=abc\n#EXT-X-ENDLIST\n');
    // Idempotent, and tokens are URL-encoded.
    expect(rewritePlaylist(rewritePlaylist(media, 'abc'), 'abc')).toBe(rewritePlaylist(media, 'abc'));
    expect(rewritePlaylist('a.m4s\n', 'a b')).toBe('a.m4s?token=a%20b\n');
  });

  it('labels routes with low cardinality', () => {
    expect(routeOf('/hls/vid_x/master.m3u8')).toBe('hls_playlist');
    expect(routeOf('/hls/vid_x/360p/seg_00001.m4s')).toBe('hls_segment');
    expect(routeOf('/hls/vid_x/poster.jpg')).toBe('hls_other');
    expect(routeOf('/v1/events')).toBe('events');
    expect(routeOf('/anything/else')).toBe('other');
  });
});

describe('liveView', () => {
  it('strips playback tokens from private videos only', () => {
    const base = { videoId: 'vid_x', playbackUrl: 'http://p/hls/vid_x/master.m3u8?token=1.abc', thumbnailUrl: 'http://p/hls/vid_x/poster.jpg?token=1.abc' };
    const priv = liveView({ ...base, private: true } as never);
    expect([priv.playbackUrl, priv.thumbnailUrl]).toEqual(['http://p/hls/vid_x/master.m3u8', 'http://p/hls/vid_x/poster.jpg']);
    const pub = liveView({ ...base, playbackUrl: 'http://p/m.m3u8', private: false } as never);
    expect(pub.playbackUrl).toBe('http://p/m.m3u8');
    expect(liveView({ ...base, playbackUrl: null, thumbnailUrl: null, private: true } as never).playbackUrl).toBeNull();
  });
});

describe('playlistUris', () => {
  it('finds variant, audio, map and segment URIs', () => {
    expect(playlistUris('#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,URI="a/i.m3u8"\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv/i.m3u8\n')).toEqual({ uris: ['v/i.m3u8'], attrUris: ['a/i.m3u8'] });
    expect(playlistUris('#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:4,\ns0.m4s\n#EXTINF:4,\ns1.m4s\n')).toEqual({ uris: ['s0.m4s', 's1.m4s'], attrUris: ['init.mp4'] });
  });
});

describe('state lookups', () => {
  it('normalise legacy string answers and drop invalidated entries, also a read in flight', async () => {
    expect(toAccess('READY')).toEqual({ state: 'READY', private: false });
    expect(toAccess(null)).toBeNull();
    let state = 'PROCESSING';
    let calls = 0;
    let release: () => void = () => {};
    const lookup = cachedStateLookup(async () => {
      calls++;
      const seen = state;
      await new Promise<void>((r) => (release = r));
      return seen;
    });
    const p = lookup('v');
    lookup.invalidate('v'); // a change notified while the old answer is being read
    state = 'READY';
    release();
    expect(await p).toBe('PROCESSING');
    const q = lookup('v'); // not cached: asks again
    release();
    expect(await q).toBe('READY');
    expect(calls).toBe(2);
    expect(await lookup('v')).toBe('READY');
    expect(calls).toBe(2);
  });
});
