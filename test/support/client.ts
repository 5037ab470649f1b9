// Helpers for integration tests: the stack's config from the harness, polling, and a tus upload.
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { inject } from 'vitest';
import * as tus from 'tus-js-client';
import { loadConfig, type VoraConfig } from '../../src/common/config.ts';

export function stackConfig(): VoraConfig {
  return loadConfig(inject('stackEnv'));
}

/** Polls fn until it returns a value (not undefined), or fails with the last value seen. */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let delay = 50; Date.now() < deadline; delay = Math.min(delay * 1.5, 1000)) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, delay));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

export async function getJson<T = any>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as T };
}

export function sha256File(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** The stack's API key (the harness reads it from the data dir after the stack is up). */
export function apiKey(): string {
  const key = inject('stackEnv').VORA_API_KEY;
  if (!key) throw new Error('stackEnv has no VORA_API_KEY (test/support/global-setup.ts reads it from the data dir)');
  return key;
}

/** `Authorization: Bearer <key>` for the API's write endpoints. */
export function authHeaders(key = apiKey()): Record<string, string> {
  return { Authorization: `Bearer ${key}` };
}

/** Uploads a file through TUS (with the stack's key unless headers say otherwise); resolves with the upload id. */
export function tusUpload(
  apiUrl: string,
  file: string,
  opts: { metadata?: Record<string, string>; chunkSize?: number; headers?: Record<string, string> } = {},
): Promise<string> {
  const data = fs.readFileSync(file);
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(data, {
      endpoint: `${apiUrl}/v1/uploads`,
      metadata: { filename: 'clip.mp4', filetype: 'video/mp4', ...opts.metadata },
      chunkSize: opts.chunkSize ?? 8 * 1024 * 1024,
      headers: opts.headers ?? authHeaders(),
      retryDelays: [0, 200, 500, 1000],
      onError: reject,
      onSuccess: () => resolve(upload.url!.split('/').pop()!),
    });
    upload.start();
  });
}

/** Stops, kills or starts one service of the harness's stack (and waits until it is done/ready). */
export async function controlService(name: string, op: 'stop' | 'start' | 'kill'): Promise<void> {
  const res = await fetch(`${inject('stackEnv').VORA_TEST_CONTROL_URL}/services/${name}/${op}`, { method: 'POST' });
  if (res.status !== 204) throw new Error(`${op} ${name}: ${res.status} ${await res.text()}`);
}
