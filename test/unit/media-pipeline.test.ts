import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import {
  encodeAudio,
  encodeChunk,
  masterPlaylistText,
  MediaError,
  packageRendition,
  planChunks,
  probe,
  splitSource,
  thumbnails,
  writeMasterPlaylist,
} from '../../src/media/index.ts';
import { countFrames, decodeErrors, ffprobeJson, makeClip, psnr, tempDir } from '../fixtures/generate.ts';
import { ffmpegErrors, parseMaster, parseMediaPlaylist, runChunkedPipeline, type PipelineOut } from '../fixtures/hls.ts';

const LOW = [{ name: '240p', height: 240, videoBitrate: 400_000 }];
const LADDER = [
  { name: '360p', height: 360, videoBitrate: 600_000 },
  { name: '720p', height: 720, videoBitrate: 2_000_000 },
];
const SEG = 4;

describe('splitSource', () => {
  const cases = [
    { label: 'B-frames, regular GOPs', clip: { durationSec: 10, width: 640, height: 360, fps: 25, gop: 48 }, target: 4 },
    { label: 'VFR', clip: { durationSec: 10, width: 640, height: 360, fps: 30, gop: 45, vfr: true }, target: 3 },
    { label: 'sparse keyframes (mid-GOP starts)', clip: { durationSec: 10, width: 640, height: 360, fps: 25, gop: 1000 }, target: 3 },
    { label: 'open GOP (leading B-frames reference the previous GOP)', clip: { durationSec: 10, width: 640, height: 360, fps: 25, gop: 48, openGop: true }, target: 4 },
    { label: 'MKV source with B-frames', clip: { durationSec: 8, width: 640, height: 360, fps: 25, gop: 37, container: 'mkv' as const }, target: 3 },
  ];
  for (const tc of cases) {
    it(`chunk files encode to exactly the frames of the whole source: ${tc.label}`, async () => {
      const src = makeClip(tc.clip);
      const p = await probe(src);
      const chunks = planChunks(p, tc.target);
      expect(chunks.length).toBeGreaterThan(1);
      const splitDir = tempDir('split-');
      const files = await splitSource({ input: src, chunks, outDir: splitDir });
      expect(files.map((f) => f.name)).toEqual(chunks.map((c) => c.name));
      const direct = tempDir('direct-');
      const fromSplit = tempDir('fromsplit-');
      let total = 0;
      for (const [i, chunk] of chunks.entries()) {
        const f = files[i]!;
        expect(f.file).toBe(`${chunk.name}.mp4`);
        expect(decodeErrors(path.join(splitDir, f.file))).toBe('');
        const a = await encodeChunk({ input: src, outDir: direct, chunk, renditions: LOW, preset: 'ultrafast', threads: 1 });
        const b = await encodeChunk({ input: path.join(splitDir, f.file), outDir: fromSplit, chunk, renditions: LOW, preset: 'ultrafast', threads: 1 });
        const [ra, rb] = [a.renditions[0]!, b.renditions[0]!];
        expect(rb.frames).toBe(ra.frames);
        expect(rb.durationSec).toBe(ra.durationSec);
        expect(countFrames(path.join(fromSplit, rb.file))).toBe(ra.frames);
        // Same decoded pictures, same timestamps, same settings: the encodes match.
        if (rb.sha256 !== ra.sha256) expect(psnr(path.join(fromSplit, rb.file), path.join(direct, ra.file))).toBe(Infinity);
        total += ra.frames;
      }
      expect(total).toBe(countFrames(src));
    });
  }
});

// ---------------------------------------------------------------------------
// Strict RFC 8216 checks for what the chunked pipeline writes.

async function pipeline(src: string, target: number): Promise<PipelineOut> {
  return runChunkedPipeline(src, target, { ladder: LADDER, segmentDurationSec: SEG });
}

async function checkPipeline(src: string, out: PipelineOut, withAudio: boolean): Promise<void> {
  const p = await probe(src);
  const fps = p.video!.avgFrameRate;
  const frames = countFrames(src);
  const master = path.join(out.root, 'master.m3u8');
  const { media, variants } = parseMaster(master);
  expect(variants.map((v) => v.uri)).toEqual(['360p/index.m3u8', '720p/index.m3u8']);
  if (withAudio) {
    expect(media).toEqual([expect.objectContaining({ TYPE: 'AUDIO', 'GROUP-ID': 'aud', URI: 'audio/index.m3u8', DEFAULT: 'YES' })]);
    for (const v of variants) {
      expect(v.AUDIO).toBe('aud');
      expect(v.CODECS).toMatch(/^avc1\.[0-9a-f]{6},mp4a\.40\.2$/);
    }
  } else {
    expect(media).toEqual([]);
    for (const v of variants) expect(v.CODECS).toMatch(/^avc1\.[0-9a-f]{6}$/);
  }
  expect(ffmpegErrors(master)).toBe('');

  const pls = out.renditions.map((r) => parseMediaPlaylist(path.join(out.root, r.playlist)));
  // Aligned: same count and the same durations in every rendition.
  for (const pl of pls.slice(1)) expect(pl.segments.map((x) => x.dur)).toEqual(pls[0]!.segments.map((x) => x.dur));
  for (const [i, r] of out.renditions.entries()) {
    expect(r.segments.map((x) => x.durationSec)).toEqual(pls[i]!.segments.map((x) => x.dur));
    const total = r.segments.reduce((a, x) => a + x.durationSec, 0);
    expect(Math.abs(total - frames / fps)).toBeLessThanOrEqual(1 / fps + 1e-6);
    expect(countFrames(path.join(out.root, r.playlist))).toBe(frames);
    for (const seg of r.segments) expect(seg.durationSec).toBeLessThanOrEqual(SEG + 1 / fps + 1e-6);
    expect(r.bandwidth).toBeGreaterThanOrEqual(r.averageBandwidth);
  }
  // Every rendition's frames are the source's, in place: PSNR of the top rung against the source.
  expect(psnr(path.join(out.root, '720p/index.m3u8'), src, { alignStart: true })).toBeGreaterThan(30);

  const streams = ffprobeJson(master).streams;
  const starts = (type: string): number[] => streams.filter((s) => s.codec_type === type).map((s) => Number(s.start_time));
  if (withAudio) {
    const a = out.audio!;
    const pl = parseMediaPlaylist(path.join(out.root, a.playlist));
    expect(pl.segments.map((x) => x.dur)).toEqual(a.segments.map((x) => x.durationSec));
    const srcAudio = ffprobeJson(src).streams.find((s) => s.codec_type === 'audio')!;
    expect(Math.abs(a.durationSec - Number(srcAudio.duration))).toBeLessThanOrEqual(1024 / 48000);
    expect(Math.abs(a.durationSec - p.durationSec)).toBeLessThanOrEqual(1024 / 48000);
    expect(a.codecs).toBe('mp4a.40.2');
    const [v0, a0] = [Math.min(...starts('video')), Math.min(...starts('audio'))];
    expect(Math.abs(v0 - a0)).toBeLessThan(0.05);
  } else {
    expect(out.audio).toBeNull();
    expect(starts('audio')).toEqual([]);
  }
}

describe('chunked pipeline: split -> encodeChunk -> packageRendition -> encodeAudio -> master', () => {
  it('1280x720 20 s with B-frames and audio', async () => {
    const src = makeClip({ durationSec: 20, width: 1280, height: 720, fps: 25, gop: 50, audio: true });
    const out = await pipeline(src, 8);
    expect(out.chunks).toBeGreaterThan(1);
    await checkPipeline(src, out, true);
    // PARTIALLY_READY: a master listing only the rungs finished so far.
    await writeMasterPlaylist(out.root, out.renditions.slice(0, 1), out.audio);
    expect(parseMaster(path.join(out.root, 'master.m3u8')).variants.map((v) => v.uri)).toEqual(['360p/index.m3u8']);
    expect(ffmpegErrors(path.join(out.root, 'master.m3u8'))).toBe('');
  });

  it('sparse keyframes (chunks start mid-GOP)', async () => {
    const src = makeClip({ durationSec: 12, width: 1280, height: 720, fps: 25, gop: 1000, audio: true });
    expect((await probe(src)).keyframes).toEqual([0]);
    const out = await pipeline(src, 4);
    expect(out.chunks).toBe(3);
    await checkPipeline(src, out, true);
  });

  it('no audio: null audio, master without an audio group (old signature)', async () => {
    const src = makeClip({ durationSec: 8, width: 1280, height: 720, fps: 30, gop: 60 });
    const out = await pipeline(src, 4);
    await checkPipeline(src, out, false);
    await writeMasterPlaylist(out.root, out.renditions);
    expect(readFileSync(path.join(out.root, 'master.m3u8'), 'utf8')).not.toContain('AUDIO');
  });

  it('rejects chunks with different SPS/PPS (different settings) with ENCODER_ERROR', async () => {
    const src = makeClip({ durationSec: 4, width: 640, height: 360, fps: 25, gop: 50 });
    const chunks = planChunks(await probe(src), 2);
    const dir = tempDir('mixed-');
    const a = await encodeChunk({ input: src, outDir: dir, chunk: chunks[0]!, renditions: LOW, preset: 'ultrafast' });
    const b = await encodeChunk({ input: src, outDir: path.join(dir, 'b'), chunk: chunks[1]!, renditions: LOW, preset: 'medium' });
    const err = await packageRendition({
      rendition: '240p',
      chunkFiles: [path.join(dir, a.renditions[0]!.file), path.join(dir, 'b', b.renditions[0]!.file)],
      outDir: path.join(dir, 'hls', '240p'),
      segmentDurationSec: 4,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(MediaError);
    expect(err.code).toBe('ENCODER_ERROR');
  });

  it('packages chunk files moved without their checkpoint records (VFR, exact chunk starts from the file tag)', async () => {
    const src = makeClip({ durationSec: 8, width: 640, height: 360, fps: 30, gop: 45, vfr: true });
    const p = await probe(src);
    const chunks = planChunks(p, 3);
    expect(chunks.length).toBeGreaterThan(1);
    const dir = tempDir('moved-');
    const moved = path.join(dir, 'moved');
    mkdirSync(moved);
    const files: string[] = [];
    for (const chunk of chunks) {
      const r = await encodeChunk({ input: src, outDir: dir, chunk, renditions: LOW, preset: 'ultrafast' });
      const f = path.join(moved, `${chunk.name}.mp4`);
      copyFileSync(path.join(dir, r.renditions[0]!.file), f);
      files.push(f);
    }
    const withRecords = await packageRendition({ rendition: '240p', chunkFiles: chunks.map((c) => path.join(dir, '240p', `${c.name}.mp4`)), outDir: path.join(dir, 'a', '240p'), segmentDurationSec: 4 });
    const bare = await packageRendition({ rendition: '240p', chunkFiles: files, outDir: path.join(dir, 'b', '240p'), segmentDurationSec: 4 });
    expect(bare.segments.map((x) => x.durationSec)).toEqual(withRecords.segments.map((x) => x.durationSec));
    parseMediaPlaylist(path.join(dir, 'b', '240p', 'index.m3u8'));
    expect(countFrames(path.join(dir, 'b', '240p', 'index.m3u8'))).toBe(countFrames(src));
    const total = bare.segments.reduce((a, x) => a + x.durationSec, 0);
    expect(Math.abs(total - p.durationSec)).toBeLessThanOrEqual(1 / 15 + 1e-6);
  });

  it('splitSource rejects with ABORTED when the signal is already aborted', async () => {
    const src = makeClip({ durationSec: 2 });
    const chunks = planChunks(await probe(src), 10);
    const err = await splitSource({ input: src, chunks, outDir: tempDir(), signal: AbortSignal.abort() }).catch((e) => e);
    expect(err.code).toBe('ABORTED');
  });
});

describe('encodeAudio', () => {
  it('5.1 + a second language: stereo downmix, alternates in the master group', async () => {
    const video = makeClip({ durationSec: 4, width: 640, height: 360, audio: { channels: 6, sampleRate: 44100 }, audioLanguage: 'eng' });
    const src = path.join(tempDir('twolang-'), 'two.mp4');
    execFileSync('ffmpeg', [
      '-v', 'error', '-y', '-i', video, '-f', 'lavfi', '-i', 'sine=frequency=880:sample_rate=48000:duration=4',
      '-map', '0', '-map', '1:a', '-c:v', 'copy', '-c:a:0', 'copy', '-c:a:1', 'aac', '-metadata:s:a:1', 'language=fra', src,
    ]);
    const outDir = tempDir('twolang-out-');
    const a = (await encodeAudio({ input: src, outDir, segmentDurationSec: 2 }))!;
    expect(a).toMatchObject({ name: 'en', language: 'en', channels: 2, sourceChannels: 6, playlist: 'audio/index.m3u8', codecs: 'mp4a.40.2' });
    expect(a.alternates).toHaveLength(1);
    expect(a.alternates[0]).toMatchObject({ name: 'fr', language: 'fr', channels: 2, playlist: 'audio_1/index.m3u8', alternates: [] });
    for (const t of [a, a.alternates[0]!]) {
      parseMediaPlaylist(path.join(outDir, t.playlist));
      expect(Math.abs(t.durationSec - 4)).toBeLessThanOrEqual(1024 / 48000);
      const s = ffprobeJson(path.join(outDir, t.playlist)).streams.find((x) => x.codec_type === 'audio')!;
      expect([s.channels, s.sample_rate]).toEqual([2, '48000']);
    }
    const master = masterPlaylistText([], a).split('\n').filter((l) => l.startsWith('#EXT-X-MEDIA'));
    expect(master).toEqual([
      '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/index.m3u8"',
      '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="fr",LANGUAGE="fr",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2",URI="audio_1/index.m3u8"',
    ]);
  });
});

describe('thumbnails', () => {
  it('poster at display aspect with rotation, storyboard sprite + WebVTT', async () => {
    const src = makeClip({ durationSec: 7, width: 640, height: 360, rotate: 90 });
    const outDir = tempDir('thumbs-');
    const r = await thumbnails({ input: src, outDir, posterAtSec: 1, storyboard: { intervalSec: 2, columns: 3, tileWidth: 100 } });
    expect(r).toMatchObject({ poster: 'poster.jpg', posterWidth: 360, posterHeight: 640 });
    const dims = (f: string): [number, number] => {
      const s = ffprobeJson(path.join(outDir, f)).streams[0]!;
      return [Number(s.width), Number(s.height)];
    };
    expect(dims('poster.jpg')).toEqual([360, 640]);
    expect(r.storyboard).toMatchObject({ image: 'storyboard.jpg', vtt: 'storyboard.vtt', tiles: 4, tileWidth: 100, tileHeight: 178, columns: 3 });
    expect(dims('storyboard.jpg')).toEqual([300, 356]);
    const vtt = readFileSync(path.join(outDir, 'storyboard.vtt'), 'utf8');
    expect(vtt.startsWith('WEBVTT\n\n')).toBe(true);
    const cues = [...vtt.matchAll(/(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\nstoryboard\.jpg#xywh=(\d+),(\d+),(\d+),(\d+)/g)];
    expect(cues.map((m) => m.slice(1).join(' '))).toEqual([
      '00:00:00.000 00:00:02.000 0 0 100 178',
      '00:00:02.000 00:00:04.000 100 0 100 178',
      '00:00:04.000 00:00:06.000 200 0 100 178',
      '00:00:06.000 00:00:07.000 0 178 100 178',
    ]);
    expect(decodeErrors(path.join(outDir, 'storyboard.jpg'))).toBe('');
  });

  it('poster only, default time', async () => {
    const src = makeClip({ durationSec: 3, width: 640, height: 360 });
    const outDir = tempDir('thumbs-');
    const r = await thumbnails({ input: src, outDir });
    expect(r.storyboard).toBeNull();
    expect(existsSync(path.join(outDir, 'poster.jpg'))).toBe(true);
    expect(existsSync(path.join(outDir, 'storyboard.jpg'))).toBe(false);
  });
});
