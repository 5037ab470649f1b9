// The default encoding ladder (CONTRACT.md): 360p/720p/1080p H.264, never upscaled above the
// source's displayed height. Override with VORA_LADDER='[{"name":"480p","height":480,"videoBitrate":1400000}]'.
import { z } from 'zod';

export const RungSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/),
  height: z.number().int().min(64).max(4320),
  videoBitrate: z.number().int().positive(),
  maxrate: z.number().int().positive().optional(),
  bufsize: z.number().int().positive().optional(),
});
export type Rung = z.infer<typeof RungSchema>;

export const DEFAULT_LADDER: Rung[] = [
  { name: '360p', height: 360, videoBitrate: 800_000, maxrate: 856_000, bufsize: 1_200_000 },
  { name: '720p', height: 720, videoBitrate: 2_800_000, maxrate: 2_996_000, bufsize: 4_200_000 },
  { name: '1080p', height: 1080, videoBitrate: 5_000_000, maxrate: 5_350_000, bufsize: 7_500_000 },
];

export function ladderFromEnv(env: Record<string, string | undefined> = process.env): Rung[] {
  if (!env.VORA_LADDER) return DEFAULT_LADDER;
  return z.array(RungSchema).min(1).parse(JSON.parse(env.VORA_LADDER));
}

/** Rungs to produce for a source: those not above its displayed height, and always the lowest. */
export function rungsForSource(ladder: Rung[], sourceHeight: number): Rung[] {
  const sorted = [...ladder].sort((a, b) => a.height - b.height);
  const fit = sorted.filter((r) => r.height <= sourceHeight);
  return fit.length ? fit : sorted.slice(0, 1);
}
