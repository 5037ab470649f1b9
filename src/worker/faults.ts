// Fault injection for tests: crash, kill or delay a chosen attempt of a chosen (rendition, chunk).
// Off unless VORA_FAULT_INJECTION=enabled is set explicitly, and refused when NODE_ENV=production
// (loadWorkerConfig in src/common/config.ts), so a stray VORA_FAULTS in a real deployment cannot fire.
import { z } from 'zod';

const FaultSchema = z.object({
  /** Where the fault fires. */
  at: z.enum(['prepare', 'encode', 'package', 'publish']),
  videoId: z.string().optional(),
  rendition: z.string().optional(),
  chunk: z.number().int().nonnegative().optional(),
  /** Temporal attempt number (1-based) the fault applies to; omitted = every attempt. */
  attempt: z.number().int().positive().optional(),
  /** throw: the activity fails (retryable); kill: SIGKILL this worker process; delay: sleep ms. */
  action: z.enum(['throw', 'kill', 'delay']),
  ms: z.number().int().nonnegative().optional(),
});
export type Fault = z.infer<typeof FaultSchema>;

export interface FaultSite {
  at: Fault['at'];
  videoId: string;
  rendition?: string;
  chunk?: number;
  attempt: number;
}

export class InjectedFault extends Error {
  readonly code = 'INJECTED_FAULT';
}

/** The faults of a VORA_FAULTS spec (loadWorkerConfig has checked that injection is enabled). */
export function parseFaults(spec: string | undefined): Fault[] {
  if (!spec) return [];
  return z.array(FaultSchema).parse(JSON.parse(spec));
}

const matches = (f: Fault, s: FaultSite) =>
  f.at === s.at &&
  (f.videoId === undefined || f.videoId === s.videoId) &&
  (f.rendition === undefined || f.rendition === s.rendition) &&
  (f.chunk === undefined || f.chunk === s.chunk) &&
  (f.attempt === undefined || f.attempt === s.attempt);

/** Fires the first fault matching this site, if any. */
export async function injectFault(faults: Fault[], site: FaultSite): Promise<void> {
  const f = faults.find((x) => matches(x, site));
  if (!f) return;
  const where = `${site.at} video=${site.videoId} rendition=${site.rendition ?? '-'} chunk=${site.chunk ?? '-'} attempt=${site.attempt}`;
  if (f.action === 'delay') await new Promise((r) => setTimeout(r, f.ms ?? 1000));
  else if (f.action === 'kill') process.kill(process.pid, 'SIGKILL');
  else throw new InjectedFault(`injected fault at ${where}`);
}
