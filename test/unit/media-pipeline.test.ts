import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { encodeChunk, planChunks, probe, splitSource } from '../../src/media/index.ts';
import { countFrames, decodeErrors, makeClip, psnr, tempDir } from '../fixtures/generate.ts';

const LOW = [{ name: '240p', height: 240, videoBitrate: 400_000 }];

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

describe('splitSource', () => {
  const cases = [
    { label: 'B-frames, regular GOPs', clip: { durationSec: 10, width: 640, height: 360, fps: 25, gop: 48 }, target: 4 },
    { label: 'VFR', clip: { durationSec: 10, width: 640, height: 360, fps: 30, gop: 45, vfr: true }, target: 3 },
    { label: 'sparse keyframes (mid-GOP starts)', clip: { durationSec: 10, width: 640, height: 360, fps: 25, gop: 1000 }, target: 3 },
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
