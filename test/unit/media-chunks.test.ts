import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { MediaError, encodeChunk, planChunks, probe, type Chunk } from '../../src/media/index.ts';
import { countFrames, decodeErrors, makeClip, tempDir } from '../fixtures/generate.ts';

const RUNGS = [
  { name: '360p', height: 360, videoBitrate: 600_000 },
  { name: '720p', height: 720, videoBitrate: 2_000_000 },
  { name: '1080p', height: 1080, videoBitrate: 4_000_000 },
];

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function expectTiles(chunks: Chunk[], duration: number): void {
  expect(chunks[0]!.startSec).toBe(0);
  expect(chunks.at(-1)!.endSec).toBe(duration);
  chunks.forEach((c, i) => {
    expect(c.index).toBe(i);
    expect(c.name).toBe(`chunk_${String(i).padStart(5, '0')}`);
    if (i > 0) expect(c.startSec).toBe(chunks[i - 1]!.endSec);
  });
}

describe('planChunks', () => {
  it('cuts on keyframes near the target and tiles the source', async () => {
    const p = await probe(makeClip({ durationSec: 12, width: 320, height: 240, fps: 25, gop: 50 }));
    expect(p.keyframes).toEqual([0, 2, 4, 6, 8, 10]);
    const chunks = planChunks(p, 4);
    expectTiles(chunks, p.durationSec);
    expect(chunks.map((c) => [c.startSec, c.endSec, c.startsOnKeyframe])).toEqual([
      [0, 4, true],
      [4, 8, true],
      [8, 12, true],
    ]);
    // serializable as-is (Temporal payloads, checkpoints)
    expect(JSON.parse(JSON.stringify(chunks))).toEqual(chunks);
  });

  it('bounds chunks when keyframes are sparse', async () => {
    const p = await probe(makeClip({ durationSec: 8, width: 320, height: 240, fps: 25, gop: 1000 }));
    expect(p.keyframes).toEqual([0]);
    const chunks = planChunks(p, 2);
    expectTiles(chunks, p.durationSec);
    for (const c of chunks) expect(c.endSec - c.startSec).toBeLessThanOrEqual(3);
    expect(chunks.slice(1).every((c) => !c.startsOnKeyframe)).toBe(true);
  });
});

describe('encodeChunk', () => {
  it('encodes every chunk once per rung with no frame lost or duplicated, then skips valid checkpoints', async () => {
    const src = makeClip({ durationSec: 6, width: 1280, height: 720, fps: 25, gop: 50 });
    const p = await probe(src);
    const chunks = planChunks(p, 2);
    expect(chunks).toHaveLength(3);
    const outDir = tempDir('chunks-');

    const results = [];
    for (const chunk of chunks) results.push(await encodeChunk({ input: src, outDir, chunk, renditions: RUNGS, preset: 'ultrafast' }));

    for (const rung of ['360p', '720p']) {
      const outs = results.map((r) => r.renditions.find((x) => x.rendition === rung)!);
      expect(outs.every((o) => !o.skipped)).toBe(true);
      // frames tile: 6 s x 25 fps, each chunk exactly its own 50 frames
      expect(outs.map((o) => o.frames)).toEqual([50, 50, 50]);
      for (const o of outs) {
        const file = path.join(outDir, o.file);
        expect(o.file).toMatch(new RegExp(`^${rung}/chunk_\\d{5}\\.mp4$`));
        expect(countFrames(file)).toBe(o.frames);
        expect(decodeErrors(file)).toBe('');
        expect(o.bytes).toBe(statSync(file).size);
        expect(o.sha256).toBe(sha256(file));
        expect(o.durationSec).toBeCloseTo(2, 3);
        const record = JSON.parse(readFileSync(path.join(outDir, o.checkpoint), 'utf8'));
        expect(record).toMatchObject({ rendition: rung, bytes: o.bytes, sha256: o.sha256, frames: 50 });
      }
    }
    expect(results[0]!.renditions.map((r) => [r.rendition, r.width, r.height])).toEqual([
      ['360p', 640, 360],
      ['720p', 1280, 720],
    ]);

    // Re-run: everything is checkpointed, nothing is rewritten.
    const target = path.join(outDir, '720p', 'chunk_00001.mp4');
    const mtime = statSync(target).mtimeMs;
    const again = await encodeChunk({ input: src, outDir, chunk: chunks[1]!, renditions: RUNGS, preset: 'ultrafast' });
    expect(again.renditions.map((r) => r.skipped)).toEqual([true, true]);
    expect(statSync(target).mtimeMs).toBe(mtime);

    // A damaged output invalidates only its own checkpoint.
    appendFileSync(target, Buffer.from([0]));
    const repaired = await encodeChunk({ input: src, outDir, chunk: chunks[1]!, renditions: RUNGS, preset: 'ultrafast' });
    expect(repaired.renditions.map((r) => [r.rendition, r.skipped])).toEqual([
      ['360p', true],
      ['720p', false],
    ]);
    expect(sha256(target)).toBe(repaired.renditions[1]!.sha256);

    // Different settings do not reuse the checkpoint.
    const other = await encodeChunk({
      input: src, outDir, chunk: chunks[1]!, renditions: [{ ...RUNGS[0]!, videoBitrate: 300_000 }], preset: 'ultrafast',
    });
    expect(other.renditions.map((r) => r.skipped)).toEqual([false]);
  });

  it('encodes a mid-GOP chunk exactly (sparse keyframes)', async () => {
    const src = makeClip({ durationSec: 6, width: 320, height: 240, fps: 25, gop: 1000 });
    const chunks = planChunks(await probe(src), 2);
    const outDir = tempDir('chunks-sparse-');
    const frames = [];
    for (const chunk of chunks) {
      const r = await encodeChunk({ input: src, outDir, chunk, renditions: RUNGS.slice(0, 1), preset: 'ultrafast' });
      frames.push(r.renditions[0]!.frames);
      expect(countFrames(path.join(outDir, r.renditions[0]!.file))).toBe(r.renditions[0]!.frames);
    }
    expect(frames.reduce((a, b) => a + b, 0)).toBe(150);
  });

  it('rejects with ABORTED when the signal is already aborted', async () => {
    const src = makeClip({ durationSec: 2 });
    const chunk = planChunks(await probe(src), 10)[0]!;
    const err = await encodeChunk({ input: src, outDir: tempDir(), chunk, renditions: RUNGS, signal: AbortSignal.abort() }).catch((e) => e);
    expect(err).toBeInstanceOf(MediaError);
    expect(err.code).toBe('ABORTED');
  });
});

describe('encodeChunk threads', () => {
  // threads 1: decode and every rung on the calling native thread. threads 2: each rung scales and
  // encodes on its own thread (libx264 still single-threaded), fed references to the same decoded
  // frames. Same frames, same order, same single-threaded encoders: the files must be identical.
  it('gives byte-identical rungs whether the rungs share one thread or run on their own', async () => {
    const src = makeClip({ durationSec: 4, width: 1280, height: 720, fps: 30, gop: 60 });
    const chunk = planChunks(await probe(src), 10)[0]!;
    const run = async (threads: number) => {
      const outDir = tempDir(`chunks-t${threads}-`);
      const r = await encodeChunk({ input: src, outDir, chunk, renditions: RUNGS.slice(0, 2), preset: 'ultrafast', threads });
      return Object.fromEntries(r.renditions.map((x) => [x.rendition, { sha: sha256(path.join(outDir, x.file)), frames: x.frames }]));
    };
    const serial = await run(1);
    expect(serial['360p']!.frames).toBe(120);
    expect(await run(2)).toEqual(serial);
  });

  it('stops within a second of an abort mid-encode and leaves no file behind (rung threads)', async () => {
    const src = makeClip({ durationSec: 20, width: 1280, height: 720, fps: 30, gop: 60 });
    const chunk = planChunks(await probe(src), 30)[0]!;
    const outDir = tempDir('chunks-abort-');
    const ac = new AbortController();
    const started = encodeChunk({ input: src, outDir, chunk, renditions: RUNGS.slice(0, 2), preset: 'veryfast', threads: 2, signal: ac.signal });
    await new Promise((r) => setTimeout(r, 500));
    const t0 = performance.now();
    ac.abort();
    const err = await started.catch((e) => e);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(err).toBeInstanceOf(MediaError);
    expect(err.code).toBe('ABORTED');
    const left = execFileSync('find', [outDir, '-type', 'f'], { encoding: 'utf8' }).trim();
    expect(left).toBe('');
  });
});

describe('encodeChunk memory', () => {
  // Peak RSS of a whole-source encode in a child process, for a short and a 4x longer source: a
  // frame kept per input frame (as a buffersink without unref did: 3.4 GB for 20 s of 1080p) makes
  // the longer one ~400 MB bigger here; a bounded pipeline keeps them within a few tens of MB.
  it('keeps memory flat as the source gets longer', () => {
    const peakMiB = (durationSec: number) => {
      const src = makeClip({ durationSec, width: 1280, height: 720, fps: 30, gop: 60 });
      const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../fixtures/encode-rss.ts', import.meta.url)), src, tempDir('rss-')], { encoding: 'utf8' });
      return (JSON.parse(out.trim().split('\n').at(-1)!) as { maxRssKiB: number }).maxRssKiB / 1024;
    };
    const short = peakMiB(2);
    const long = peakMiB(8);
    expect(long - short, `peak RSS ${short.toFixed(0)} MiB for 2 s, ${long.toFixed(0)} MiB for 8 s`).toBeLessThan(100);
  }, 120_000);
});
