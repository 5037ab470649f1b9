import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import {
  MediaError,
  masterPlaylistText,
  probe,
  transcodeToHls,
  writeMasterPlaylist,
  type MediaErrorCode,
} from '../../src/media/index.ts';
import {
  countFrames,
  decodeErrors,
  ffprobeJson,
  makeAudioOnly,
  makeClip,
  makeEmpty,
  makeRandomBytes,
  makeTruncated,
  missingPath,
  psnr,
  tempDir,
} from '../fixtures/generate.ts';

const LADDER = [
  { name: '360p', height: 360, videoBitrate: 800_000, maxrate: 856_000, bufsize: 1_200_000 },
  { name: '720p', height: 720, videoBitrate: 2_800_000, maxrate: 2_996_000, bufsize: 4_200_000 },
  { name: '1080p', height: 1080, videoBitrate: 5_000_000, maxrate: 5_350_000, bufsize: 7_500_000 },
];

async function codeOf(p: Promise<unknown>): Promise<MediaErrorCode | 'RESOLVED'> {
  try {
    await p;
    return 'RESOLVED';
  } catch (err) {
    expect(err).toBeInstanceOf(MediaError);
    expect((err as MediaError).message.length).toBeGreaterThan(0);
    return (err as MediaError).code;
  }
}

describe('probe', () => {
  it('reports the streams of an H.264 + AAC clip', async () => {
    const clip = makeClip({ durationSec: 3, width: 640, height: 360, fps: 25, audio: true, audioLanguage: 'eng' });
    const p = await probe(clip);
    expect(p.container).toContain('mp4');
    expect(p.durationSec).toBeCloseTo(3, 1);
    expect(p.sizeBytes).toBe(statSync(clip).size);
    expect(p.bitRate).toBeGreaterThan(0);
    expect(p.video).toMatchObject({
      index: 0,
      codec: 'h264',
      profile: 'High',
      width: 640,
      height: 360,
      displayWidth: 640,
      displayHeight: 360,
      rotation: 0,
      sar: '1:1',
      dar: '16:9',
      frameRate: 25,
      avgFrameRate: 25,
      variableFrameRate: false,
      pixelFormat: 'yuv420p',
      bitDepth: 8,
    });
    expect(p.video?.colorPrimaries).toBeNull();
    expect(p.audio).toEqual([
      { index: 1, codec: 'aac', channels: 2, channelLayout: 'stereo', sampleRate: 48000, language: 'eng' },
    ]);
    // -g 25 at 25 fps: one keyframe per second
    expect(p.keyframes).toEqual([0, 1, 2]);
  });

  it('applies display-matrix rotation to the display size', async () => {
    const p = await probe(makeClip({ durationSec: 1, width: 640, height: 360, rotate: 90 }));
    expect(p.video?.rotation).toBe(90);
    expect([p.video?.displayWidth, p.video?.displayHeight]).toEqual([360, 640]);
    expect([p.video?.width, p.video?.height]).toEqual([640, 360]);
  });

  it('returns video: null for audio-only media', async () => {
    const p = await probe(makeAudioOnly());
    expect(p.video).toBeNull();
    expect(p.audio).toHaveLength(1);
    expect(p.keyframes).toEqual([]);
  });

  it.each([
    { label: 'zero bytes', make: () => makeEmpty(), code: 'EMPTY_INPUT' },
    { label: 'random bytes', make: () => makeRandomBytes(), code: 'NOT_MEDIA' },
    { label: 'mp4 cut before its moov box', make: () => makeTruncated(makeClip({ durationSec: 2 }), 0.5), code: 'CORRUPT_INPUT' },
    { label: 'faststart mp4 with its media data cut', make: () => makeTruncated(makeClip({ durationSec: 4, faststart: true }), 0.4), code: 'CORRUPT_INPUT' },
    { label: 'missing file', make: () => missingPath(), code: 'IO_ERROR' },
  ] as const)('rejects $label with $code', async ({ make, code }) => {
    expect(await codeOf(probe(make()))).toBe(code);
  });
});

describe('transcodeToHls', () => {
  it('encodes an aligned 360p+720p ladder from a 720p source in one pass', async () => {
    const src = makeClip({ durationSec: 6, width: 1280, height: 720, fps: 25, audio: true });
    const outDir = tempDir('hls-');
    const events: Array<{ framesDone: number; framesTotal: number | null }> = [];
    const t0 = performance.now();
    const res = await transcodeToHls({
      input: src,
      outDir,
      renditions: LADDER,
      encoder: 'auto',
      onProgress: (p) => events.push(p),
    });
    const elapsedMs = performance.now() - t0;
    console.info(`transcode 6 s 1280x720 -> 360p+720p: ${elapsedMs.toFixed(0)} ms (${res.encoder})`);

    expect(res.master).toBe('master.m3u8');
    expect(['libx264', 'h264_nvenc']).toContain(res.encoder);
    expect(res.renditions.map((r) => [r.name, r.width, r.height])).toEqual([
      ['360p', 640, 360],
      ['720p', 1280, 720],
    ]);
    expect(existsSync(path.join(outDir, '1080p'))).toBe(false);
    expect(Math.abs(res.durationSec - 6)).toBeLessThan(0.1);

    // Playlists decode cleanly, through the master and per rung.
    expect(decodeErrors(path.join(outDir, 'master.m3u8'))).toBe('');
    for (const r of res.renditions) {
      expect(r.playlist).toBe(`${r.name}/index.m3u8`);
      expect(r.codecs).toMatch(/^avc1\.64[0-9a-f]{4},mp4a\.40\.2$/);
      expect(r.frameRate).toBe(25);
      expect(r.bandwidth).toBeGreaterThanOrEqual(r.averageBandwidth);
      expect(r.averageBandwidth).toBeGreaterThan(0);
      const total = r.segments.reduce((s, x) => s + x.durationSec, 0);
      expect(Math.abs(total - 6)).toBeLessThan(0.1);
      for (const s of r.segments) {
        expect(s.file).toMatch(/^seg_\d{5}\.m4s$/);
        expect(s.bytes).toBe(statSync(path.join(outDir, r.name, s.file)).size);
      }
      const pl = readFileSync(path.join(outDir, r.playlist), 'utf8');
      expect(pl).toContain('#EXT-X-PLAYLIST-TYPE:VOD');
      expect(pl).toContain('#EXT-X-MAP:URI="init.mp4"');
      expect(pl).toContain('#EXT-X-INDEPENDENT-SEGMENTS');
      expect(existsSync(path.join(outDir, r.name, 'init.mp4'))).toBe(true);
    }

    // Segments align: same count and durations on every rung (4 s grid -> 4 + 2).
    const [low, high] = res.renditions;
    expect(low!.segments.map((s) => s.durationSec)).toEqual([4, 2]);
    expect(high!.segments.map((s) => s.durationSec)).toEqual(low!.segments.map((s) => s.durationSec));

    // Output really is 8-bit yuv420p H.264 High + AAC-LC stereo 48 kHz at the rung size.
    const info = ffprobeJson(path.join(outDir, '720p', 'index.m3u8'));
    const v = info.streams.find((s) => s.codec_type === 'video')!;
    const a = info.streams.find((s) => s.codec_type === 'audio')!;
    expect([v.codec_name, v.profile, v.pix_fmt, v.width, v.height]).toEqual(['h264', 'High', 'yuv420p', 1280, 720]);
    expect([a.codec_name, a.profile, a.channels, a.sample_rate]).toEqual(['aac', 'LC', 2, '48000']);
    // Every source frame is there (the final sample must not be dropped by the muxer).
    expect(countFrames(path.join(outDir, '360p', 'index.m3u8'))).toBe(150);
    // Same picture as the source (catches pixel-format / geometry mix-ups that still decode).
    expect(psnr(path.join(outDir, '720p', 'index.m3u8'), src)).toBeGreaterThan(35);

    const master = readFileSync(path.join(outDir, 'master.m3u8'), 'utf8').split('\n');
    expect(master.slice(0, 3)).toEqual(['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-INDEPENDENT-SEGMENTS']);
    const inf = master.filter((l) => l.startsWith('#EXT-X-STREAM-INF:'));
    expect(inf).toHaveLength(2);
    expect(inf[0]).toBe(
      `#EXT-X-STREAM-INF:BANDWIDTH=${low!.bandwidth},AVERAGE-BANDWIDTH=${low!.averageBandwidth},RESOLUTION=640x360,CODECS="${low!.codecs}",FRAME-RATE=25.000`,
    );

    // Progress: monotonic, ends at the full frame count.
    expect(events.length).toBeGreaterThan(0);
    const done = events.map((e) => e.framesDone);
    expect([...done].sort((x, y) => x - y)).toEqual(done);
    expect(events.at(-1)!.framesDone).toBe(150);
  });

  it('produces only the lowest rung, clamped, for a small source without audio', async () => {
    const src = makeClip({ durationSec: 2, width: 320, height: 240, fps: 25 });
    const outDir = tempDir('hls-small-');
    const res = await transcodeToHls({ input: src, outDir, renditions: LADDER, segmentDurationSec: 1 });
    expect(res.renditions.map((r) => [r.name, r.width, r.height])).toEqual([['360p', 320, 240]]);
    expect(res.renditions[0]!.codecs).toMatch(/^avc1\.64[0-9a-f]{4}$/);
    expect(res.renditions[0]!.segments.map((s) => s.durationSec)).toEqual([1, 1]);
    expect(decodeErrors(path.join(outDir, 'master.m3u8'))).toBe('');
  });

  it('downmixes 5.1 44.1 kHz audio from an MKV/MPEG-4 Part 2 source to AAC-LC stereo 48 kHz', async () => {
    const src = makeClip({ durationSec: 2, width: 320, height: 240, codec: 'mpeg4', container: 'mkv', audio: { channels: 6, sampleRate: 44100 } });
    const p = await probe(src);
    expect([p.video?.codec, p.audio[0]?.channels, p.audio[0]?.sampleRate]).toEqual(['mpeg4', 6, 44100]);
    const outDir = tempDir('hls-51-');
    const res = await transcodeToHls({ input: src, outDir, renditions: LADDER, segmentDurationSec: 1 });
    const a = ffprobeJson(path.join(outDir, res.renditions[0]!.playlist)).streams.find((s) => s.codec_type === 'audio')!;
    expect([a.codec_name, a.profile, a.channels, a.sample_rate]).toEqual(['aac', 'LC', 2, '48000']);
    expect(decodeErrors(path.join(outDir, 'master.m3u8'))).toBe('');
    expect(Math.abs(res.durationSec - 2)).toBeLessThan(0.1);
  });

  it('keeps every frame of a VFR source and declares its maximum frame rate', async () => {
    const src = makeClip({ durationSec: 4, width: 320, height: 240, fps: 50, vfr: true });
    const p = await probe(src);
    expect(p.video?.variableFrameRate).toBe(true);
    const outDir = tempDir('hls-vfr-');
    const res = await transcodeToHls({ input: src, outDir, renditions: LADDER, segmentDurationSec: 1 });
    expect(countFrames(path.join(outDir, res.renditions[0]!.playlist))).toBe(countFrames(src));
    expect(res.renditions[0]!.frameRate).toBe(50);
    expect(Math.abs(res.durationSec - 4)).toBeLessThan(0.1);
  });

  it('applies rotation: a rotated landscape source becomes a portrait ladder', async () => {
    const src = makeClip({ durationSec: 1, width: 640, height: 360, rotate: 90 });
    const res = await transcodeToHls({ input: src, outDir: tempDir('hls-rot-'), renditions: LADDER.slice(0, 1) });
    // display is 360x640: the 360p rung is 360 high and 202 wide (even, aspect kept)
    expect(res.renditions.map((r) => [r.width, r.height])).toEqual([[202, 360]]);
  });

  it.each([
    { label: 'zero bytes', make: () => makeEmpty(), code: 'EMPTY_INPUT' },
    { label: 'random bytes', make: () => makeRandomBytes(), code: 'NOT_MEDIA' },
    { label: 'audio only', make: () => makeAudioOnly(), code: 'NO_VIDEO_STREAM' },
    { label: 'truncated mp4', make: () => makeTruncated(makeClip({ durationSec: 2 }), 0.5), code: 'CORRUPT_INPUT' },
    { label: 'missing file', make: () => missingPath(), code: 'IO_ERROR' },
  ] as const)('rejects $label with $code and leaves no output', async ({ make, code }) => {
    const outDir = tempDir('hls-bad-');
    expect(await codeOf(transcodeToHls({ input: make(), outDir, renditions: LADDER }))).toBe(code);
    expect(readdirSync(outDir)).toEqual([]);
  });

  it('aborts mid-encode with ABORTED within a second and removes partial output', async () => {
    const src = makeClip({ durationSec: 12, width: 1280, height: 720, fps: 25, audio: true });
    const outDir = tempDir('hls-abort-');
    const ac = new AbortController();
    let firstProgress!: () => void;
    const started = new Promise<void>((resolve) => (firstProgress = resolve));
    const job = transcodeToHls({
      input: src,
      outDir,
      renditions: LADDER,
      signal: ac.signal,
      onProgress: (p) => {
        if (p.framesDone > 0) firstProgress();
      },
    });
    await started;
    const t0 = performance.now();
    ac.abort();
    expect(await codeOf(job)).toBe('ABORTED');
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(readdirSync(outDir)).toEqual([]);
  });

  it('reports ENCODER_ERROR when h264_nvenc is forced but cannot open (no fallback)', async () => {
    const outDir = tempDir('hls-nvenc-');
    const job = transcodeToHls({ input: makeClip({ durationSec: 1 }), outDir, renditions: LADDER, encoder: 'h264_nvenc' });
    const outcome = await job.then(
      (r) => r.encoder,
      (e: MediaError) => e.code,
    );
    // On a machine with a usable NVENC the forced encoder is used; elsewhere it must fail cleanly.
    expect(['h264_nvenc', 'ENCODER_ERROR']).toContain(outcome);
    if (outcome === 'ENCODER_ERROR') expect(readdirSync(outDir)).toEqual([]);
  });

  it('rejects immediately when the signal is already aborted', async () => {
    const outDir = tempDir('hls-pre-');
    const code = await codeOf(
      transcodeToHls({ input: makeClip(), outDir, renditions: LADDER, signal: AbortSignal.abort() }),
    );
    expect(code).toBe('ABORTED');
    expect(readdirSync(outDir)).toEqual([]);
  });

  it('validates options before touching the filesystem', async () => {
    await expect(transcodeToHls({ input: makeClip(), outDir: tempDir(), renditions: [] })).rejects.toThrow(TypeError);
    await expect(
      transcodeToHls({ input: makeClip(), outDir: tempDir(), renditions: [{ name: '../x', height: 360, videoBitrate: 1e6 }] }),
    ).rejects.toThrow(TypeError);
  });
});

describe('master playlist helper', () => {
  it('writes a master for a subset of finished renditions (PARTIALLY_READY)', async () => {
    const outDir = tempDir('master-');
    const rung = (name: string, h: number, bw: number) => ({
      name,
      width: Math.round((h * 16) / 9 / 2) * 2,
      height: h,
      bandwidth: bw,
      averageBandwidth: Math.round(bw * 0.9),
      codecs: 'avc1.64001f,mp4a.40.2',
      frameRate: 29.97,
      playlist: `${name}/index.m3u8`,
      segments: [{ file: 'seg_00000.m4s', durationSec: 4, bytes: 1000 }],
    });
    const name = await writeMasterPlaylist(outDir, [rung('720p', 720, 3_000_000), rung('360p', 360, 900_000)]);
    const text = readFileSync(path.join(outDir, name), 'utf8');
    expect(text).toBe(masterPlaylistText([rung('360p', 360, 900_000), rung('720p', 720, 3_000_000)]));
    expect(text.split('\n').filter((l) => l.endsWith('index.m3u8'))).toEqual(['360p/index.m3u8', '720p/index.m3u8']);
    expect(text).toContain('RESOLUTION=640x360,CODECS="avc1.64001f,mp4a.40.2",FRAME-RATE=29.970');
    expect(readdirSync(outDir)).toEqual(['master.m3u8']);
  });
});
