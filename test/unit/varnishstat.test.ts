import { describe, expect, it } from 'vitest';
import { parseVarnishstat } from '../../src/stack/varnishstat.ts';

describe('varnishstat parsing', () => {
  it('reads hit ratio and origin bytes from the nested (7.x) layout', () => {
    const json = JSON.stringify({
      version: 1,
      timestamp: '2026-11-23T00:00:00',
      counters: {
        'MAIN.cache_hit': { value: 99 },
        'MAIN.cache_miss': { value: 1 },
        'MAIN.backend_req': { value: 3 },
        'MAIN.s_resp_bodybytes': { value: 5000 },
        'VBE.boot.gateway.beresp_bodybytes': { value: 700 },
        'VBE.boot.other.beresp_bodybytes': { value: 300 },
      },
    });
    expect(parseVarnishstat(json)).toEqual({ hits: 99, misses: 1, hitRatio: 0.99, backendRequests: 3, originBodyBytes: 1000, clientBodyBytes: 5000 });
  });

  it('has no ratio before any lookup', () => {
    expect(parseVarnishstat('{"counters":{}}').hitRatio).toBeNull();
  });
});
