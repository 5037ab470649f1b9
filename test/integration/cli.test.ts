// The `vora` CLI as a user runs it: bin/vora as a child process with the harness stack's environment.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { REPO_ROOT } from '../../src/common/config.ts';
import { execFileSync } from 'node:child_process';
import { createPool } from '../../src/common/db.ts';
import { makeClip, makeEmpty, makeRandomBytes } from '../fixtures/generate.ts';
import { controlService, stackConfig } from '../support/client.ts';

const BIN = path.join(REPO_ROOT, 'bin', 'vora');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function vora(args: string[], timeoutMs = 300_000): Promise<Run> {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'vora-cli-cache-'));
  return new Promise((resolve) => {
    execFile(
      BIN,
      args,
      { env: { ...process.env, ...inject('stackEnv'), XDG_CACHE_HOME: cache, NO_COLOR: '1' }, timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        fs.rmSync(cache, { recursive: true, force: true });
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');

describe('vora CLI', () => {
  let videoId = '';

  it('uploads a clip and follows it to READY (--json)', async () => {
    const file = makeClip({ durationSec: 4, width: 640, height: 360, fps: 25, audio: true });
    const r = await vora(['upload', file, '--json']);
    expect(r.code, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
    const out = JSON.parse(r.stdout) as Array<{ file: string; uploadId: string; videoId: string; state: string; playbackUrl: string | null }>;
    expect(out).toHaveLength(1);
    expect(out[0]!.file).toBe(file);
    expect(out[0]!.uploadId).toMatch(/^upl_/);
    expect(out[0]!.videoId).toMatch(/^vid_/);
    expect(out[0]!.state).toBe('READY');
    expect(out[0]!.playbackUrl).toMatch(/\/hls\/vid_[a-z2-7]+\/master\.m3u8$/);
    videoId = out[0]!.videoId;
  });

  it('videos --json and show --json parse', async () => {
    expect(videoId).not.toBe('');
    const list = await vora(['videos', '--json', '--limit', '100']);
    expect(list.code, list.stderr).toBe(0);
    const body = JSON.parse(list.stdout) as { videos: Array<{ videoId: string; state: string }>; nextCursor: string | null };
    expect(body.videos.some((v) => v.videoId === videoId && v.state === 'READY')).toBe(true);
    expect(body).toHaveProperty('nextCursor');

    const show = await vora(['show', videoId, '--json']);
    expect(show.code, show.stderr).toBe(0);
    const v = JSON.parse(show.stdout) as { videoId: string; state: string; renditions: Array<{ name: string; state: string }> };
    expect(v.videoId).toBe(videoId);
    expect(v.state).toBe('READY');
    expect(v.renditions.length).toBeGreaterThanOrEqual(1);
    expect(v.renditions.every((r) => r.state === 'DONE')).toBe(true);

    // The human forms of the same commands.
    const human = await vora(['show', videoId]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`${videoId}  READY`);
  });

  it('a file of random bytes ends FAILED with its code and a non-zero exit', async () => {
    const file = makeRandomBytes(512 * 1024);
    const r = await vora(['upload', file]);
    expect(r.code).not.toBe(0);
    const m = /^(vid_[a-z2-7]+) FAILED ([A-Z][A-Z_]+): (.+)$/m.exec(r.stdout);
    expect(m, `stdout: ${r.stdout}\nstderr: ${r.stderr}`).not.toBeNull();
    const [, failedId, code] = m!;
    const show = await vora(['show', failedId!, '--json']);
    expect(show.code).toBe(0);
    const v = JSON.parse(show.stdout) as { state: string; failure: { code: string; message: string } | null };
    expect(v.state).toBe('FAILED');
    expect(v.failure?.code).toBe(code);
    expect(v.failure?.message).toBeTruthy();
  });

  it('the same failure with --json is still parseable, with the code', async () => {
    const file = makeRandomBytes(300 * 1024);
    const r = await vora(['upload', file, '--json']);
    expect(r.code).not.toBe(0);
    const out = JSON.parse(r.stdout) as Array<{ state: string; failure: { code: string } | null }>;
    expect(out[0]!.state).toBe('FAILED');
    expect(out[0]!.failure?.code).toMatch(/^[A-Z][A-Z_]+$/);
  });

  it('resumes an upload when the API is stopped half-way and started again', async () => {
    // ~170 MB of hard-to-compress video: a dozen 16 MiB PATCHes, so the stop lands mid-upload.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vora-cli-resume-'));
    const file = path.join(dir, `resume-${Date.now()}.mp4`);
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=25:duration=5,noise=alls=60:allf=t',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '10', '-pix_fmt', 'yuv420p', file]);
    const size = fs.statSync(file).size;
    expect(size).toBeGreaterThan(100 << 20);
    const pool = createPool(stackConfig(), 2);
    try {
      const running = vora(['upload', file, '--no-follow', '--json']);
      // Polled tightly: the window between the first stored part and the end is a second or two.
      let partial: { upload_id: string; bytes_uploaded: string } | undefined;
      for (const deadline = Date.now() + 120_000; !partial && Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
        const { rows } = await pool.query<{ upload_id: string; bytes_uploaded: string }>(
          `SELECT upload_id, bytes_uploaded FROM uploads WHERE filename = $1 AND bytes_uploaded > 0 AND bytes_uploaded < $2`,
          [path.basename(file), size],
        );
        partial = rows[0];
      }
      if (!partial) throw new Error('never saw the upload part-way');
      await controlService('api', 'stop');
      const { rows: atStop } = await pool.query<{ status: string }>('SELECT status FROM uploads WHERE upload_id = $1', [partial.upload_id]);
      expect(atStop[0]!.status).not.toBe('UPLOADED'); // the API went away mid-upload
      await controlService('api', 'start');
      const r = await running;
      expect(r.code, r.stderr).toBe(0);
      const [out] = JSON.parse(r.stdout) as Array<{ uploadId: string; videoId: string }>;
      // The same upload continued: one upload row for the file, finished, with every byte.
      const { rows } = await pool.query<{ upload_id: string; status: string; bytes_uploaded: string }>(
        `SELECT upload_id, status, bytes_uploaded FROM uploads WHERE filename = $1`, [path.basename(file)]);
      expect(rows).toHaveLength(1);
      expect(rows[0]!.upload_id).toBe(partial.upload_id);
      expect(out!.uploadId).toBe(partial.upload_id);
      expect(rows[0]).toMatchObject({ status: 'UPLOADED', bytes_uploaded: String(size) });
      expect(out!.videoId).toMatch(/^vid_/);
    } finally {
      await pool.end();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bench lists the benchmarks and rejects an unknown one in one line', async () => {
    const list = await vora(['bench']);
    expect(list.code).toBe(0);
    for (const name of ['media', 'upload', 'workflow', 'delivery']) expect(list.stdout).toMatch(new RegExp(`^${name} +bench/`, 'm'));
    const bad = await vora(['bench', 'nope']);
    expect(bad.code).toBe(1);
    expect(lines(bad.stderr)).toEqual([expect.stringContaining('UNKNOWN_BENCH')]);
  });

  it('an empty file gives one clear error line and a non-zero exit', async () => {
    const file = makeEmpty();
    const r = await vora(['upload', file]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/empty/i);
    expect(r.stderr).toContain(file);
  });
});
