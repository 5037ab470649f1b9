// Issue 3: the chunked pipeline over inputs other than H.264 MP4. Each source is
// generated with the ffmpeg CLI, probed, then run through split -> encodeChunk ->
// packageRendition -> encodeAudio -> master, and the HLS output is checked.
// Bad inputs (EMPTY_INPUT, NOT_MEDIA, CORRUPT_INPUT, NO_VIDEO_STREAM) are covered in media.test.ts.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { probe, type ProbeResult, type RenditionSpec } from '../../src/media/index.ts';
import { countFrames, ffprobeJson, makeClip, type ClipOptions } from '../fixtures/generate.ts';
import { ffmpegErrors, parseMaster, parseMediaPlaylist, runChunkedPipeline } from '../fixtures/hls.ts';

// superfast: the fastest x264 preset that keeps High-profile tools (ultrafast drops CABAC and 8x8, so Main).
const PRESET = 'superfast';

const SMALL: RenditionSpec[] = [
  { name: '180p', height: 180, videoBitrate: 300_000 },
  { name: '360p', height: 360, videoBitrate: 800_000 },
];

interface Case {
  label: string;
  clip: ClipOptions;
  probe: { codec: string; pixelFormat: string; bitDepth: number; width: number; height: number; fieldOrder?: string };
  ladder: RenditionSpec[];
  chunkSec: number;
  segSec: number;
}

const cases: Case[] = [
  {
    label: 'HEVC 10-bit MP4 (libx265, yuv420p10le)',
    clip: { codec: 'libx265', pixFmt: 'yuv420p10le', container: 'mp4', durationSec: 3, width: 640, height: 360, audio: true },
    probe: { codec: 'hevc', pixelFormat: 'yuv420p10le', bitDepth: 10, width: 640, height: 360 },
    ladder: SMALL,
    chunkSec: 2,
    segSec: 1,
  },
  {
    label: 'VP9 + Opus WebM',
    clip: { codec: 'libvpx-vp9', container: 'webm', audioCodec: 'libopus', durationSec: 3, width: 640, height: 360, audio: true },
    probe: { codec: 'vp9', pixelFormat: 'yuv420p', bitDepth: 8, width: 640, height: 360 },
    ladder: SMALL,
    chunkSec: 2,
    segSec: 1,
  },
  {
    label: 'ProRes 4:2:2 10-bit MOV, odd size 721x405, PCM audio',
    clip: { codec: 'prores_ks', pixFmt: 'yuv422p10le', container: 'mov', audioCodec: 'pcm_s16le', durationSec: 2, width: 721, height: 405, audio: true },
    probe: { codec: 'prores', pixelFormat: 'yuv422p10le', bitDepth: 10, width: 721, height: 405 },
    ladder: SMALL,
    chunkSec: 1,
    segSec: 1,
  },
  {
    label: 'interlaced MPEG-2 (TFF) in MPEG-TS, MP2 audio',
    clip: { codec: 'mpeg2video', interlaced: true, container: 'ts', audioCodec: 'mp2', durationSec: 3, width: 720, height: 576, audio: true, gop: 12 },
    probe: { codec: 'mpeg2video', pixelFormat: 'yuv420p', bitDepth: 8, width: 720, height: 576, fieldOrder: 'tt' },
    // A full-height rung keeps any combing visible to idet.
    ladder: [...SMALL, { name: '576p', height: 576, videoBitrate: 3_000_000 }],
    chunkSec: 2,
    segSec: 1,
  },
  {
    label: 'tiny 0.5 s clip',
    clip: { durationSec: 0.5, width: 640, height: 360, audio: true },
    probe: { codec: 'h264', pixelFormat: 'yuv420p', bitDepth: 8, width: 640, height: 360 },
    ladder: SMALL,
    chunkSec: 4,
    segSec: 4,
  },
  {
    label: '4K 3840x2160 2 s',
    clip: { durationSec: 2, width: 3840, height: 2160, audio: true, preset: 'ultrafast' },
    probe: { codec: 'h264', pixelFormat: 'yuv420p', bitDepth: 8, width: 3840, height: 2160 },
    ladder: [
      { name: '360p', height: 360, videoBitrate: 800_000 },
      { name: '1080p', height: 1080, videoBitrate: 4_000_000 },
    ],
    chunkSec: 1,
    segSec: 1,
  },
];

/** idet's multi-frame verdicts over a file: interlaced (TFF + BFF) and progressive frame counts. */
function idet(file: string): { interlaced: number; progressive: number } {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-i', file, '-map', '0:v:0', '-vf', 'idet', '-f', 'null', '-'], { encoding: 'utf8' });
  const m = /Multi frame detection: TFF:\s*(\d+) BFF:\s*(\d+) Progressive:\s*(\d+)/.exec(r.stderr);
  if (!m) throw new Error(`no idet summary: ${r.stderr.slice(-500)}`);
  return { interlaced: Number(m[1]) + Number(m[2]), progressive: Number(m[3]) };
}

function frameRate(p: ProbeResult): number {
  return p.video!.avgFrameRate;
}

describe('chunked pipeline over varied inputs (issue 3)', () => {
  for (const tc of cases) {
    it(tc.label, async () => {
      const src = makeClip(tc.clip);
      const p = await probe(src);
      const v = p.video!;
      expect(v).not.toBeNull();
      expect(v.codec).toBe(tc.probe.codec);
      expect(v.pixelFormat).toBe(tc.probe.pixelFormat);
      expect(v.bitDepth).toBe(tc.probe.bitDepth);
      expect([v.width, v.height]).toEqual([tc.probe.width, tc.probe.height]);
      if (tc.probe.fieldOrder) expect(v.fieldOrder).toBe(tc.probe.fieldOrder);
      expect(p.audio.length).toBe(1);

      const out = await runChunkedPipeline(src, tc.chunkSec, { ladder: tc.ladder, segmentDurationSec: tc.segSec, preset: PRESET });
      const master = path.join(out.root, 'master.m3u8');
      expect(ffmpegErrors(master)).toBe('');
      const { variants } = parseMaster(master);
      expect(variants.map((x) => x.uri)).toEqual(tc.ladder.map((r) => `${r.name}/index.m3u8`));
      expect(out.audio).not.toBeNull();

      const fps = frameRate(p);
      const frames = countFrames(src);
      const pls = out.renditions.map((r) => parseMediaPlaylist(path.join(out.root, r.playlist)));
      // Aligned: same segment count and durations in every rendition.
      for (const pl of pls.slice(1)) expect(pl.segments.map((x) => x.dur)).toEqual(pls[0]!.segments.map((x) => x.dur));
      for (const r of out.renditions) {
        const total = r.segments.reduce((a, x) => a + x.durationSec, 0);
        expect(Math.abs(total - frames / fps), `${r.name} total ${total}`).toBeLessThanOrEqual(1 / fps + 1e-6);
        expect(Math.abs(total - p.durationSec), `${r.name} total ${total} vs ${p.durationSec}`).toBeLessThanOrEqual(1 / fps + 1e-6);
        const s = ffprobeJson(path.join(out.root, r.playlist)).streams.find((x) => x.codec_type === 'video')!;
        expect(s.codec_name).toBe('h264');
        expect(s.profile).toBe('High');
        expect(s.pix_fmt).toBe('yuv420p');
        expect(s.bits_per_raw_sample).toBe('8');
        const [w, h] = [Number(s.width), Number(s.height)];
        expect(w % 2, `${r.name} width ${w}`).toBe(0);
        expect(h % 2, `${r.name} height ${h}`).toBe(0);
        expect(w).toBeLessThanOrEqual(v.displayWidth);
        expect(h).toBeLessThanOrEqual(v.displayHeight);
        expect(s.field_order ?? 'progressive').toBe('progressive');
        expect(countFrames(path.join(out.root, r.playlist))).toBe(frames);
      }
      if (tc.probe.fieldOrder) {
        const top = path.join(out.root, tc.ladder.at(-1)!.name, 'index.m3u8');
        // Deinterlaced, not just flagged progressive: the woven source combs in every frame
        // (idet: 75/75 interlaced before the engine ran bwdif), the output in almost none.
        expect(idet(src).interlaced).toBeGreaterThan(frames * 0.9);
        const d = idet(top);
        expect(d.interlaced, JSON.stringify(d)).toBeLessThan(frames * 0.1);
        expect(d.progressive).toBeGreaterThan(frames * 0.9);
      }
    });
  }
});
