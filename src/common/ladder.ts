// The default encoding ladder (docs/contract.md): 360p/720p/1080p H.264, never upscaled above the
// source's displayed height. Override with VORA_LADDER='[{"name":"480p","height":480,"videoBitrate":1400000}]'
// (read by loadWorkerConfig in config.ts).
import { z } from 'zod';

/**
 * A rung's name is a path segment of its objects (hls/{id}/{name}/...): the one rule for it, the
 * same as the native engine's (native/src/transcode.rs).
 */
export const RUNG_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export const RungSchema = z.object({
  name: z.string().regex(RUNG_NAME),
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

/** Rungs to produce for a source: those not above its displayed height, and always the lowest. */
export function rungsForSource(ladder: Rung[], sourceHeight: number): Rung[] {
  const sorted = [...ladder].sort((a, b) => a.height - b.height);
  const fit = sorted.filter((r) => r.height <= sourceHeight);
  return fit.length ? fit : sorted.slice(0, 1);
}
