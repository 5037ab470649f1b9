import { describe, expect, it } from 'vitest';
import { cachedStateLookup } from '../../src/gateway/state.ts';

describe('cachedStateLookup', () => {
  it('caches answers for the TTL and shares concurrent lookups', async () => {
    let now = 0;
    let calls = 0;
    const lookup = cachedStateLookup(
      async (id) => {
        calls++;
        await new Promise((r) => setTimeout(r, 5));
        return id === 'known' ? 'READY' : null;
      },
      { ttlMs: 1000, negativeTtlMs: 100, now: () => now },
    );
    const [a, b] = await Promise.all([lookup('known'), lookup('known')]);
    expect([a, b, calls]).toEqual(['READY', 'READY', 1]);
    now = 999;
    expect(await lookup('known')).toBe('READY');
    expect(calls).toBe(1);
    now = 1001;
    await lookup('known');
    expect(calls).toBe(2);
    expect(await lookup('unknown')).toBeNull();
    now += 50;
    await lookup('unknown');
    expect(calls).toBe(3);
    now += 100;
    await lookup('unknown');
    expect(calls).toBe(4);
  });
  it('does not cache failures and stays bounded', async () => {
    let fail = true;
    const lookup = cachedStateLookup(async (id) => {
      if (fail) throw new Error('pg down');
      return id;
    }, { maxEntries: 2 });
    await expect(lookup('a')).rejects.toThrow('pg down');
    fail = false;
    expect(await lookup('a')).toBe('a');
    await lookup('b');
    await lookup('c');
    expect(await lookup('c')).toBe('c');
  });
});
