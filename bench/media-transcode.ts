// Transcode throughput of the native ladder on lavfi fixtures.
// Run: npx tsx bench/media-transcode.ts [durationSec=10] [height=1080]
import { rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';

import { DEFAULT_LADDER } from '../src/common/ladder.ts';
import { probe, transcodeToHls } from '../src/media/index.ts';
import { makeClip, tempDir } from '../test/fixtures/generate.ts';

const durationSec = Number(process.argv[2] ?? 10);
const height = Number(process.argv[3] ?? 1080);
const width = Math.round((height * 16) / 9 / 2) * 2;

const src = makeClip({ durationSec, width, height, fps: 30, audio: true, gop: 60 });
const p = await probe(src);
for (const preset of ['veryfast', 'ultrafast']) {
  const outDir = tempDir('bench-');
  const t0 = performance.now();
  const res = await transcodeToHls({ input: src, outDir, renditions: DEFAULT_LADDER, preset });
  const secs = (performance.now() - t0) / 1000;
  const frames = Math.round(p.durationSec * (p.video?.avgFrameRate ?? 30));
  console.log(
    JSON.stringify({
      source: `${width}x${height}@30 ${durationSec}s`,
      cores: availableParallelism(),
      preset,
      encoder: res.encoder,
      rungs: res.renditions.map((r) => `${r.name}:${Math.round(r.averageBandwidth / 1000)}k`),
      wallSec: Number(secs.toFixed(2)),
      realtimeX: Number((p.durationSec / secs).toFixed(2)),
      sourceFps: Number((frames / secs).toFixed(1)),
    }),
  );
  rmSync(outDir, { recursive: true, force: true });
}
