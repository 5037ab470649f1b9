import { describe, expect, it } from 'vitest';
import { loadWorkerConfig } from '../../src/common/config.ts';
import { InjectedFault, injectFault, parseFaults } from '../../src/worker/faults.ts';

const loadFaults = (env: Record<string, string>) => parseFaults(loadWorkerConfig(env).faults);

describe('fault injection', () => {
  const spec = JSON.stringify([{ at: 'encode', rendition: '720p', chunk: 0, attempt: 1, action: 'throw' }]);

  it('is refused unless explicitly enabled, and never in production', () => {
    expect(loadFaults({})).toEqual([]);
    expect(() => loadFaults({ VORA_FAULTS: spec })).toThrow(/not enabled/);
    expect(() => loadFaults({ VORA_FAULTS: spec, VORA_FAULT_INJECTION: 'enabled', NODE_ENV: 'production' })).toThrow(/not enabled/);
  });

  it('fires only on the matching site and attempt', async () => {
    const faults = loadFaults({ VORA_FAULTS: spec, VORA_FAULT_INJECTION: 'enabled' });
    await expect(injectFault(faults, { at: 'encode', videoId: 'v', rendition: '720p', chunk: 0, attempt: 1 })).rejects.toBeInstanceOf(InjectedFault);
    await expect(injectFault(faults, { at: 'encode', videoId: 'v', rendition: '720p', chunk: 0, attempt: 2 })).resolves.toBeUndefined();
    await expect(injectFault(faults, { at: 'encode', videoId: 'v', rendition: '360p', chunk: 0, attempt: 1 })).resolves.toBeUndefined();
  });

  it('rejects malformed specs', () => {
    expect(() => loadFaults({ VORA_FAULTS: '[{"at":"encode","action":"explode"}]', VORA_FAULT_INJECTION: 'enabled' })).toThrow();
  });
});
