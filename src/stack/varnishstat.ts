// Reads Varnish's counters (varnishstat -j) for `vora status` and the delivery benchmarks: cache hit
// ratio and the bytes Varnish fetched from the origin.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CacheCounters {
  hits: number;
  misses: number;
  hitRatio: number | null;
  /** Requests Varnish sent to the gateway (misses, passes, background fetches). */
  backendRequests: number;
  /** Body bytes fetched from the gateway. */
  originBodyBytes: number;
  /** Body bytes sent to clients. */
  clientBodyBytes: number;
}

type Counters = Record<string, { value: number }>;

export function parseVarnishstat(json: string): CacheCounters {
  const doc = JSON.parse(json) as { counters?: Counters } & Counters;
  const c: Counters = doc.counters ?? doc; // Varnish >= 6.5 nests counters under "counters"
  const v = (name: string) => c[name]?.value ?? 0;
  const sum = (suffix: string) => Object.entries(c).filter(([k]) => k.startsWith('VBE.') && k.endsWith(suffix)).reduce((a, [, x]) => a + x.value, 0);
  const hits = v('MAIN.cache_hit');
  const misses = v('MAIN.cache_miss');
  return {
    hits,
    misses,
    hitRatio: hits + misses ? hits / (hits + misses) : null,
    backendRequests: v('MAIN.backend_req'),
    originBodyBytes: sum('.beresp_bodybytes'),
    clientBodyBytes: v('MAIN.s_resp_bodybytes'),
  };
}

export async function readCacheCounters(dataDir: string): Promise<CacheCounters> {
  const { stdout } = await run('varnishstat', ['-n', path.join(dataDir, 'varnish', 'work'), '-j', '-t', '2'], { maxBuffer: 16 << 20 });
  return parseVarnishstat(stdout);
}
