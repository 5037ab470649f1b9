import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PORT_VARS, loadConfig, loadWorkerConfig } from '../../src/common/config.ts';
import { DEFAULT_LADDER, rungsForSource } from '../../src/common/ladder.ts';
import { packageRendition } from '../../src/media/index.ts';
import { freePort } from '../../src/stack/ports.ts';
import { configEnv, Stack, StackError } from '../../src/stack/supervisor.ts';

describe('config', () => {
  it('defaults to the contract endpoints on 127.0.0.1', () => {
    const cfg = loadConfig({});
    expect(cfg.apiUrl).toBe('http://127.0.0.1:8080');
    expect(cfg.playbackUrl).toBe('http://127.0.0.1:6081');
    expect(cfg.gatewayUrl).toBe('http://127.0.0.1:8081');
    expect(cfg.temporal.address).toBe('127.0.0.1:7233');
    expect(cfg.temporal.uiUrl).toBe('http://127.0.0.1:8233');
    expect(cfg.s3.endpoint).toBe('http://127.0.0.1:9000');
    expect(cfg.clickhouse.url).toBe('http://127.0.0.1:8123');
    expect(cfg.postgres.url).toBe('postgres://vora@127.0.0.1:5433/vora');
  });

  it('rejects a port that is not a number, naming the variable', () => {
    expect(() => loadConfig({ VORA_API_PORT: 'eighty' })).toThrow(/VORA_API_PORT/);
  });

  it("reads the worker's settings, leaving unset ones to the worker's defaults", () => {
    expect(loadWorkerConfig({})).toMatchObject({ processing: {}, encode: { pin: false }, metricsPort: 9464 });
    const w = loadWorkerConfig({ VORA_CHUNK_SEC: '6', VORA_X264_PRESET: 'fast', VORA_SEGMENT_SEC: '', VORA_WORKER_METRICS_PORT: '0' });
    expect(w.processing).toEqual({ chunkTargetSec: 6, preset: 'fast' });
    expect(w.metricsPort).toBe(0);
    expect(() => loadWorkerConfig({ VORA_CHUNK_CONCURRENCY: 'four' })).toThrow(/VORA_CHUNK_CONCURRENCY/);
    expect(() => loadWorkerConfig({ VORA_WORKER_METRICS_PORT: '70000' })).toThrow(/VORA_WORKER_METRICS_PORT/);
  });

  it('round-trips through configEnv, so child processes see the same stack', () => {
    const cfg = loadConfig({ VORA_API_PORT: '18080', VORA_DATA_DIR: '/tmp/x' });
    const again = loadConfig(configEnv(cfg, { minioUser: 'u', minioPassword: 'p' }));
    expect(again.ports).toEqual(cfg.ports);
    expect(again.dataDir).toBe(cfg.dataDir);
    expect(again.s3.accessKeyId).toBe('u');
  });
});

describe('ladder', () => {
  it('never upscales, but always keeps the lowest rung', () => {
    expect(rungsForSource(DEFAULT_LADDER, 1080).map((r) => r.name)).toEqual(['360p', '720p', '1080p']);
    expect(rungsForSource(DEFAULT_LADDER, 720).map((r) => r.name)).toEqual(['360p', '720p']);
    expect(rungsForSource(DEFAULT_LADDER, 240).map((r) => r.name)).toEqual(['360p']);
  });

  it('validates VORA_LADDER', async () => {
    const ladderOf = (json: string) => loadWorkerConfig({ VORA_LADDER: json }).ladder;
    expect(loadWorkerConfig({}).ladder).toEqual(DEFAULT_LADDER);
    expect(ladderOf('[{"name":"480p","height":480,"videoBitrate":1400000}]')[0]!.height).toBe(480);
    expect(() => ladderOf('[{"name":"../x","height":480,"videoBitrate":1}]')).toThrow(/VORA_LADDER/);
    expect(() => ladderOf('not json')).toThrow(/VORA_LADDER/);
    // One rung-name rule for the ladder, the media front and the native engine: 1 to 64 of [A-Za-z0-9_-].
    expect(ladderOf(`[{"name":"${'r'.repeat(64)}","height":480,"videoBitrate":1}]`)[0]!.name).toHaveLength(64);
    expect(() => ladderOf(`[{"name":"${'r'.repeat(65)}","height":480,"videoBitrate":1}]`)).toThrow(/VORA_LADDER/);
    // The media front applies the same rule (a 64-character name gets past it to the next check).
    const pkg = (rendition: string) => packageRendition({ rendition, chunkFiles: [], outDir: '/nonexistent', segmentDurationSec: 4 });
    await expect(pkg('r'.repeat(64))).rejects.toThrow(/chunkFiles is empty/);
    await expect(pkg('r'.repeat(65))).rejects.toThrow(/bad rendition name/);
  });
});

describe('supervisor', () => {
  let blocker: net.Server | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await new Promise((r) => (blocker ? blocker.close(r) : r(undefined)));
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('fails fast on a taken port, naming the service and the variable to change', async () => {
    const port = await freePort();
    blocker = net.createServer();
    await new Promise<void>((r) => blocker!.listen(port, '127.0.0.1', r));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vora-unit-'));
    const stack = new Stack({ VORA_DATA_DIR: dir, [PORT_VARS.postgres[0]]: String(port) }, { only: ['postgres'], log: () => {} });
    const err = await stack.start().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(StackError);
    expect((err as StackError).code).toBe('PORT_TAKEN');
    expect((err as Error).message).toMatch(new RegExp(`postgres: port 127.0.0.1:${port} .*VORA_PG_PORT`));
    // Nothing was started, so no data dir for the service was made.
    expect(fs.existsSync(path.join(dir, 'postgres'))).toBe(false);
  });

  it('keeps generated credentials across restarts of the stack', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vora-unit-'));
    const a = new Stack({ VORA_DATA_DIR: dir }, { log: () => {} });
    const b = new Stack({ VORA_DATA_DIR: dir }, { log: () => {} });
    expect(a.env.VORA_S3_SECRET_KEY).toBe(b.env.VORA_S3_SECRET_KEY);
    expect(a.env.VORA_S3_SECRET_KEY!.length).toBeGreaterThanOrEqual(24);
    expect(fs.statSync(path.join(dir, 'secrets.json')).mode & 0o077).toBe(0);
  });
});
