// Chunked pipeline (probe + split + encodeChunk(all) + audio + package) against
// ffmpeg doing the same 3-rung fMP4 HLS ladder in ONE process, and against the
// naive chunked way (one ffmpeg process per (chunk, rendition)).
//
// Run: npx tsx bench/media-pipeline.ts [--full] [--preset veryfast] [--rounds N] [--chunk-sec S]
//                                      [--slots N] [--threads N] [--pin]
//   default: 1080p30, 10 s of moving, grainy footage, 1 round (a few minutes on 2 cores)
//   --full:  1080p30, 60 s (the issue's setting), 2 rounds (about 10 minutes on 2 cores)
// Timings are wall-clock on a shared machine: every figure is a ratio between runs made in the
// same round of this process (orders alternate between rounds; the median round is reported),
// never an absolute. Wall seconds in `wallSec` are medians over rounds.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import path from 'node:path';

import { DEFAULT_LADDER } from '../src/common/ladder.ts';
import {
  encodeAudio,
  encodeChunk,
  packageRendition,
  planChunks,
  probe,
  splitSource,
  writeMasterPlaylist,
  type Chunk,
} from '../src/media/index.ts';
import { makeClip, psnr, tempDir } from '../test/fixtures/generate.ts';
import { chunkTargetFor, DEFAULT_SETTINGS } from '../src/worker/activities/index.ts';
import { loadWorkerConfig } from '../src/common/config.ts';
import { CorePins, encodeLanes, threadsForChunk } from '../src/worker/encode-lanes.ts';

const full = process.argv.includes('--full');
const presetArg = process.argv.indexOf('--preset');
const preset = presetArg > 0 ? process.argv[presetArg + 1]! : 'veryfast';
const durationSec = full ? 60 : 10;
const roundsArg = process.argv.indexOf('--rounds');
const roundsN = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : full ? 2 : 1;
/** Seconds of CPU the hypervisor gave to others (steal, all CPUs) so far, from /proc/stat. */
const stealSec = (): number => {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
    return Number(f[8]) / 100;
  } catch {
    return NaN;
  }
};
const chunkArg = process.argv.indexOf('--chunk-sec');
// The worker's chunk length for this source (VORA_CHUNK_SEC, whole segments) unless --chunk-sec.
const targetSec = chunkArg > 0 ? Number(process.argv[chunkArg + 1]) : chunkTargetFor(durationSec, DEFAULT_SETTINGS);
const SEG = 4;
// Chunk encodes run as the worker runs them (src/worker/encode-lanes.ts): one single-threaded encode
// per core unless --slots / --threads say otherwise (--slots 1 --threads 0: one encode at a time,
// FFmpeg's own threads, the layout before encode lanes).
const flagOf = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const lanes = encodeLanes(availableParallelism(), loadWorkerConfig({
  VORA_WORKER_ENCODE_SLOTS: flagOf('slots'), VORA_ENCODE_THREADS: flagOf('threads'), VORA_ENCODE_PIN: process.argv.includes('--pin') ? '1' : undefined,
}).encode);
const pins = new CorePins(availableParallelism());
const FPS = 30;
const ladder = DEFAULT_LADDER;

/** CPU seconds spent by ffmpeg child processes (from -benchmark), summed. */
let childCpu = 0;
function ffmpeg(args: string[]): void {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-nostats', '-v', 'info', '-benchmark', '-y', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffmpeg ${args.join(' ')}: ${r.stderr.slice(-2000)}`);
  const m = /bench: utime=([\d.]+)s stime=([\d.]+)s/.exec(r.stderr);
  if (m) childCpu += Number(m[1]) + Number(m[2]);
}

/** Wall seconds and CPU seconds (this process, native threads included, plus ffmpeg children). */
async function measured(f: () => Promise<unknown> | unknown): Promise<{ wall: number; cpu: number }> {
  const [c0, k0, t0] = [process.cpuUsage(), childCpu, performance.now()];
  await f();
  const c = process.cpuUsage(c0);
  return { wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 + (childCpu - k0) };
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += e.isDirectory() ? dirBytes(p) : /\.(m4s|mp4)$/.test(e.name) ? statSync(p).size : 0;
  }
  return total;
}

async function timed<T>(f: () => Promise<T> | T): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await f();
  return [v, (performance.now() - t0) / 1000];
}

const x264Common = (g: number): string[] => [
  '-c:v', 'libx264', '-preset', preset, '-profile:v', 'high', '-bf', '3', '-g', String(g), '-keyint_min', String(g),
  '-sc_threshold', '0', '-flags', '+cgop', '-force_key_frames', `expr:gte(t,n_forced*${SEG})`,
];
const rate = (i: number, r: (typeof ladder)[number]): string[] => [
  `-b:v:${i}`, String(r.videoBitrate), `-maxrate:v:${i}`, String(r.maxrate ?? Math.round(r.videoBitrate * 1.1)),
  `-bufsize:v:${i}`, String(r.bufsize ?? (r.maxrate ?? r.videoBitrate) * 2),
];

const t0 = performance.now();
const src = makeClip({ durationSec, width: 1920, height: 1080, fps: FPS, gop: 2 * FPS, audio: true, motion: true });
const genSec = (performance.now() - t0) / 1000;
const gop = 2 * SEG * FPS;
const inputs = {
  source: `1920x1080@${FPS} ${durationSec}s, moving + grain, H.264 ${(statSync(src).size * 8 / durationSec / 1e6).toFixed(1)} Mbps, stereo AAC`,
  ladder: ladder.map((r) => `${r.name}@${r.videoBitrate / 1000}k`).join(' '),
  preset,
  segmentSec: SEG,
  chunkTargetSec: targetSec,
  encodeSlots: lanes.slots,
  threadsPerEncode: lanes.threads,
  threadsPerTailEncode: lanes.tailThreads,
  pinnedSingleThreadEncodes: lanes.pin,
  cores: availableParallelism(),
  loadAvg1mAtStart: Number(loadavg()[0]!.toFixed(2)),
  fixtureGenSec: Number(genSec.toFixed(1)),
};
console.log(JSON.stringify({ inputs }));

// 1. Chunked pipeline, every step as the worker runs it: probe, split, the chunk encodes in
//    encode lanes with the audio encode beside them, packaging, master playlist.
const steps: Record<string, number> = {};
const runChunked = (root: string) => measured(async () => {
  const [p, tp] = await timed(() => probe(src));
  steps.probe = tp;
  const chunks = planChunks(p, targetSec);
  const [files, ts] = await timed(() => splitSource({ input: src, chunks, outDir: path.join(root, 'split') }));
  steps.split = ts;
  const encDir = path.join(root, 'chunks');
  const hls = path.join(root, 'hls');
  // As the worker runs them: chunk encodes in its encode lanes, taking the next chunk as one ends,
  // and the audio encode beside them (its own activity in the worker's spare slot).
  const [[encoded, te], [audio, ta]] = await Promise.all([
    timed(async () => {
      const out: Awaited<ReturnType<typeof encodeChunk>>[] = [];
      let next = 0;
      const lane = async () => {
        for (let i = next++; i < chunks.length; i = next++) {
          const threads = threadsForChunk(lanes, i, chunks.length);
          out[i] = await pins.with(lanes.pin && threads === 1, (cpu) =>
            encodeChunk({ input: path.join(root, 'split', files[i]!.file), outDir: encDir, chunk: chunks[i]!, renditions: ladder, preset, segmentDurationSec: SEG, encoder: 'libx264', threads, cpu }),
          );
        }
      };
      await Promise.all(Array.from({ length: lanes.slots }, lane));
      return out;
    }),
    timed(() => encodeAudio({ input: src, outDir: hls, segmentDurationSec: SEG })),
  ]);
  steps.encodeChunks = te;
  steps.audioBesideChunks = ta;
  const [rends, tk] = await timed(async () => {
    const out = [];
    for (const r of ladder) {
      const chunkFiles = encoded.map((e) => path.join(encDir, e.renditions.find((x) => x.rendition === r.name)!.file));
      out.push(await packageRendition({ rendition: r.name, chunkFiles, outDir: path.join(hls, r.name), segmentDurationSec: SEG }));
    }
    return out;
  });
  steps.package = tk;
  await writeMasterPlaylist(hls, rends, audio);
  steps.chunks = chunks.length;
});
const chunkPlan: Chunk[] = planChunks(await probe(src), targetSec);

// 2. One ffmpeg process: split filter, three libx264 encoders, one AAC, fMP4 HLS.
const runSingle = (single: string) => measured(() =>
  ffmpeg([
    '-i', src,
    '-filter_complex', `[0:v]split=${ladder.length}${ladder.map((_, i) => `[s${i}]`).join('')};${ladder.map((r, i) => `[s${i}]scale=-2:${r.height}[v${i}]`).join(';')}`,
    ...ladder.flatMap((_, i) => ['-map', `[v${i}]`]), '-map', '0:a:0',
    ...x264Common(gop), ...ladder.flatMap((r, i) => rate(i, r)),
    '-c:a', 'aac', '-b:a', '128k', '-ac', '2', '-ar', '48000',
    '-f', 'hls', '-hls_time', String(SEG), '-hls_playlist_type', 'vod', '-hls_segment_type', 'fmp4', '-hls_flags', 'independent_segments',
    '-master_pl_name', 'master.m3u8', '-var_stream_map', `${ladder.map((_, i) => `v:${i},agroup:aud`).join(' ')} a:0,agroup:aud`,
    '-hls_segment_filename', path.join(single, '%v', 'seg_%05d.m4s'), path.join(single, '%v', 'index.m3u8'),
  ]),
);

// 3. Naive: one ffmpeg process per (chunk, rendition), plus one for the audio (no packaging).
const runNaive = (naive: string) => measured(() => {
  for (const c of chunkPlan) {
    for (const [i, r] of ladder.entries()) {
      ffmpeg([
        '-ss', String(c.startSec), '-t', String(c.endSec - c.startSec), '-i', src, '-an', '-vf', `scale=-2:${r.height}`,
        ...x264Common(gop), ...rate(0, r), path.join(naive, `${c.name}_${i}.mp4`),
      ]);
    }
  }
  ffmpeg(['-i', src, '-vn', '-c:a', 'aac', '-b:a', '128k', '-ac', '2', '-ar', '48000', '-f', 'hls', '-hls_time', String(SEG), '-hls_segment_type', 'fmp4', '-hls_segment_filename', path.join(naive, 'a_%05d.m4s'), path.join(naive, 'audio.m3u8')]);
});

// This host's speed drifts by tens of percent over minutes (a shared VM), so the three run in
// rounds with the order reversed every other round (C S N, N S C, ...), and each round gives its
// own ratios; the median round is reported. Each round writes fresh output directories.
type M = { wall: number; cpu: number };
const rounds: { chunked: M; single: M; naive: M; stealSec: number }[] = [];
let root = '';
let single = '';
for (let r = 0; r < roundsN; r++) {
  const dirs = { chunked: tempDir('bench-chunked-'), single: tempDir('bench-ffmpeg-'), naive: tempDir('bench-naive-') };
  const order = r % 2 === 0 ? (['chunked', 'single', 'naive'] as const) : (['naive', 'single', 'chunked'] as const);
  const got: Partial<Record<'chunked' | 'single' | 'naive', M>> = {};
  const steal0 = stealSec();
  for (const which of order) {
    got[which] = which === 'chunked' ? await runChunked(dirs.chunked) : which === 'single' ? await runSingle(dirs.single) : await runNaive(dirs.naive);
  }
  rounds.push({ chunked: got.chunked!, single: got.single!, naive: got.naive!, stealSec: Number((stealSec() - steal0).toFixed(1)) });
  console.log(JSON.stringify({ round: r + 1, order, wallSec: Object.fromEntries(order.map((k) => [k, Number(got[k]!.wall.toFixed(2))])), chunkedOverSingle: Number((got.chunked!.wall / got.single!.wall).toFixed(3)), chunkedOverNaive: Number((got.chunked!.wall / got.naive!.wall).toFixed(3)), stealSec: rounds.at(-1)!.stealSec }));
  [root, single] = [dirs.chunked, dirs.single];
}
const medianOf = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};
const mid = (k: 'chunked' | 'single' | 'naive', f: 'wall' | 'cpu') => medianOf(rounds.map((x) => x[k][f]));
const chunkedM = { wall: mid('chunked', 'wall'), cpu: mid('chunked', 'cpu') };
const singleM = { wall: mid('single', 'wall'), cpu: mid('single', 'cpu') };
const naiveM = { wall: mid('naive', 'wall'), cpu: mid('naive', 'cpu') };

// 4. Scaling: two worker threads, each pinned to a core of its own, running a chunk encode each
//    (one rung, threads=1) vs one pinned thread running both, one after the other.
const scaleDir = tempDir('bench-scale-');
const one = (c: Chunk, sub: string, cpu: number | undefined) =>
  encodeChunk({ input: src, outDir: path.join(scaleDir, sub), chunk: c, renditions: [ladder[1]!], preset, threads: 1, encoder: 'libx264', cpu });
const [c0, c1] = [chunkPlan[0]!, chunkPlan[1] ?? chunkPlan[0]!];
// A trial lasts seconds, so a passing neighbour moves it by several percent: three trials, the
// median ratio (and its trial's timings) reported, every trial printed.
const scaleTrials: { seq: M; par: M }[] = [];
for (let t = 0; t < 3; t++) {
  const seq = await measured(async () => {
    await one(c0, `seq${t}`, 0);
    await one(c1, `seq${t}`, 0);
  });
  const par = await measured(() => Promise.all([one(c0, `par${t}`, 0), one(c1, `par${t}`, 1)]));
  scaleTrials.push({ seq, par });
  console.log(JSON.stringify({ scalingTrial: t + 1, oneAfterOtherSec: Number(seq.wall.toFixed(2)), twoInParallelSec: Number(par.wall.toFixed(2)), ratio: Number((seq.wall / par.wall).toFixed(3)) }));
}
const { seq: seqM, par: parM } = [...scaleTrials].sort((a, b) => a.seq.wall / a.par.wall - b.seq.wall / b.par.wall)[1]!;
const [chunkedSec, singleSec, naiveSec, seqSec, parSec] = [chunkedM, singleM, naiveM, seqM, parM].map((m) => m.wall) as [number, number, number, number, number];

// Quality and size of each rung: chunked vs the single ffmpeg command, PSNR against the source.
const quality = ladder.map((r, i) => {
  const w = Math.round((r.height * 16) / 9 / 2) * 2;
  const mine = path.join(root, 'hls', r.name, 'index.m3u8');
  const theirs = path.join(single, String(i), 'index.m3u8');
  const opts = { alignStart: true, scaleTo: [w, r.height] as [number, number] };
  return {
    rung: r.name,
    chunkedBytes: dirBytes(path.join(root, 'hls', r.name)),
    ffmpegBytes: dirBytes(path.join(single, String(i))),
    chunkedPsnr: Number(psnr(mine, src, opts).toFixed(2)),
    ffmpegPsnr: Number(psnr(theirs, src, opts).toFixed(2)),
  };
});
const sum = (k: 'chunkedBytes' | 'ffmpegBytes'): number => quality.reduce((a, q) => a + q[k], 0);
console.log(
  JSON.stringify(
    {
      wallSec: {
        chunked: Number(chunkedSec.toFixed(2)),
        ffmpegSingle: Number(singleSec.toFixed(2)),
        ffmpegNaivePerChunkRendition: Number(naiveSec.toFixed(2)),
        chunkedSteps: Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, Number(v.toFixed(2))])),
      },
      cpuSec: {
        chunked: Number(chunkedM.cpu.toFixed(1)),
        ffmpegSingle: Number(singleM.cpu.toFixed(1)),
        ffmpegNaivePerChunkRendition: Number(naiveM.cpu.toFixed(1)),
      },
      loadAvg1mAtEnd: Number(loadavg()[0]!.toFixed(2)),
      ratios: {
        // CPU-second ratios are what the wall ratios would be on an idle machine of the same cores, roughly.
        // Each the median over rounds of that round's own ratio.
        cpuChunkedOverFfmpegSingle: Number(medianOf(rounds.map((x) => x.chunked.cpu / x.single.cpu)).toFixed(3)),
        cpuChunkedOverFfmpegNaive: Number(medianOf(rounds.map((x) => x.chunked.cpu / x.naive.cpu)).toFixed(3)),
        chunkedOverFfmpegSingle: Number(medianOf(rounds.map((x) => x.chunked.wall / x.single.wall)).toFixed(3)),
        chunkedOverFfmpegNaive: Number(medianOf(rounds.map((x) => x.chunked.wall / x.naive.wall)).toFixed(3)),
        videoBytesChunkedOverFfmpeg: Number((sum('chunkedBytes') / sum('ffmpegBytes')).toFixed(3)),
        scalingTwoParallelThreads1: Number((seqSec / parSec).toFixed(2)),
      },
      scaling: {
        oneAfterOtherSec: Number(seqSec.toFixed(2)),
        twoInParallelSec: Number(parSec.toFixed(2)),
        cpuSec: { oneAfterOther: Number(seqM.cpu.toFixed(1)), twoInParallel: Number(parM.cpu.toFixed(1)) },
      },
      quality,
    },
    null,
    2,
  ),
);
