// `vora upload | videos | show | delete | events`: the platform from a terminal, over the HTTP API.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import * as tus from 'tus-js-client';
import { readApiKeyFile } from '../api/auth.ts';
import { loadConfig } from '../common/config.ts';
import { isFinalVideoState } from '../common/video-state.ts';
import { largeReadFileReader } from './file-source.ts';

export class CliError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

interface Global {
  api?: string;
  json?: boolean;
}

const apiBase = (g: Global) => (g.api ?? loadConfig().apiUrl).replace(/\/$/, '');

/** VORA_API_KEY, else the key the local stack's API wrote to `${dataDir}/api-key`. */
function authHeaders(): Record<string, string> {
  const key = process.env.VORA_API_KEY || readApiKeyFile(loadConfig().dataDir);
  return key ? { authorization: `Bearer ${key}` } : {};
}

async function call<T>(g: Global, method: string, p: string): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${apiBase(g)}${p}`, { method, headers: authHeaders() });
  } catch (err) {
    throw new CliError('API_UNREACHABLE', `cannot reach the API at ${apiBase(g)} (${(err as Error).cause ?? err}); is the stack up?`);
  }
  const text = await res.text();
  const body = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const e = body?.error ?? {};
    throw new CliError(e.code ?? `HTTP_${res.status}`, e.message ?? `${method} ${p} answered ${res.status}`);
  }
  return body as T;
}

const out = (v: unknown): void => {
  process.stdout.write(`${typeof v === 'string' ? v : JSON.stringify(v, null, 2)}\n`);
};

// The Node build exports FileUrlStorage at runtime, but the package's types omit it.
type UrlStorage = NonNullable<tus.UploadOptions['urlStorage']>;
const { FileUrlStorage } = tus as unknown as { FileUrlStorage: new (file: string) => UrlStorage };

async function sha256Of(file: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(fs.createReadStream(file), h);
  return h.digest('hex');
}

const fmtBytes = (n: number) => (n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`);

/** Uploads one file through TUS. Interrupted uploads resume from their offset on the next run. */
async function uploadOne(g: Global, file: string, showBar: boolean): Promise<string> {
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  if (!stat?.isFile()) throw new CliError('FILE_NOT_FOUND', `${file}: no such file`);
  if (stat.size === 0) throw new CliError('EMPTY_FILE', `${file}: the file is empty`);
  const sha256 = await sha256Of(file);
  // Remembers upload URLs by file fingerprint, so a second `vora upload` of the same file resumes.
  const storeDir = path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'vora');
  fs.mkdirSync(storeDir, { recursive: true });
  const bar = showBar
    ? new cliProgress.SingleBar(
        { format: `${path.basename(file)} [{bar}] {percentage}% | {done}/{size} | {speed}/s | ETA {eta_formatted}`, hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
    : null;
  bar?.start(stat.size, 0, { done: fmtBytes(0), size: fmtBytes(stat.size), speed: '-' });
  const t0 = Date.now();
  return new Promise<string>((resolve, reject) => {
    const upload = new tus.Upload(fs.createReadStream(file), {
      endpoint: `${apiBase(g)}/v1/uploads`,
      uploadSize: stat.size,
      chunkSize: 64 * 1024 * 1024, // a multiple of the server's 8 MiB part size; fewer PATCH round trips
      fileReader: largeReadFileReader(),
      metadata: { filename: path.basename(file), filetype: guessType(file), sha256 },
      headers: authHeaders(),
      urlStorage: new FileUrlStorage(path.join(storeDir, 'uploads.json')),
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      onProgress: (sent, total) => {
        const secs = Math.max((Date.now() - t0) / 1000, 0.001);
        bar?.update(sent, { done: fmtBytes(sent), size: fmtBytes(total), speed: fmtBytes(sent / secs) });
      },
      onError: (err) => {
        bar?.stop();
        const status = (err as tus.DetailedError).originalResponse?.getStatus();
        let code = 'UPLOAD_FAILED';
        try {
          code = JSON.parse((err as tus.DetailedError).originalResponse?.getBody() ?? '{}')?.error?.code ?? code;
        } catch {
          /* body was not JSON */
        }
        reject(new CliError(code, `${file}: upload failed${status ? ` (HTTP ${status})` : ''}: ${err.message.split('\n')[0]}`));
      },
      onSuccess: () => {
        bar?.stop();
        resolve(upload.url!.split('/').pop()!);
      },
    });
    upload
      .findPreviousUploads()
      .then((prev) => {
        if (prev[0]) upload.resumeFromPreviousUpload(prev[0]);
        upload.start();
      })
      .catch(reject);
  });
}

function guessType(file: string): string {
  const ext = path.extname(file).toLowerCase();
  return ({ '.mp4': 'video/mp4', '.mov': 'video/quicktime', '.mkv': 'video/x-matroska', '.webm': 'video/webm', '.ts': 'video/mp2t' } as Record<string, string>)[ext] ?? 'application/octet-stream';
}

interface VideoBody {
  videoId: string;
  state: string;
  failure: { code: string; message: string } | null;
  durationSec: number | null;
  renditions: Array<{ name: string; state: string; attempts: number; error: string | null }>;
  playbackUrl: string | null;
}

async function follow(g: Global, videoId: string, quiet: boolean): Promise<VideoBody> {
  let lastLine = '';
  for (;;) {
    const v = await call<VideoBody>(g, 'GET', `/v1/videos/${videoId}`);
    const line = `${v.state}${v.renditions.length ? `  ${v.renditions.map((r) => `${r.name}=${r.state}`).join(' ')}` : ''}`;
    if (!quiet && line !== lastLine) process.stderr.write(`  ${videoId}: ${line}\n`);
    lastLine = line;
    if (isFinalVideoState(v.state)) return v;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export async function upload(files: string[], opts: Global & { follow: boolean }): Promise<number> {
  const results: Array<{ file: string; uploadId: string; videoId: string | null; state?: string; playbackUrl?: string | null; failure?: unknown }> = [];
  let failed = 0;
  for (const file of files) {
    const uploadId = await uploadOne(opts, file, !opts.json && Boolean(process.stderr.isTTY));
    // The video exists once the server has verified and finished the upload.
    let up: { videoId: string | null; status: string; error: { code: string; message: string } | null };
    for (;;) {
      up = await call(opts, 'GET', `/v1/uploads/${uploadId}`);
      if (up.videoId || up.status === 'FAILED') break;
      await new Promise((r) => setTimeout(r, 300));
    }
    if (!up.videoId) throw new CliError(up.error?.code ?? 'UPLOAD_FAILED', `${file}: ${up.error?.message ?? 'upload failed'}`);
    if (!opts.json) process.stderr.write(`${file}: uploaded as ${uploadId}, video ${up.videoId}\n`);
    const r: (typeof results)[number] = { file, uploadId, videoId: up.videoId };
    if (opts.follow) {
      const v = await follow(opts, up.videoId, Boolean(opts.json));
      Object.assign(r, { state: v.state, playbackUrl: v.playbackUrl, failure: v.failure });
      if (v.state === 'FAILED') failed++;
      if (!opts.json) out(v.state === 'READY' ? `${up.videoId} READY ${v.playbackUrl}` : `${up.videoId} FAILED ${v.failure?.code}: ${v.failure?.message}`);
    } else if (!opts.json) {
      out(up.videoId);
    }
    results.push(r);
  }
  if (opts.json) out(results);
  return failed ? 1 : 0;
}

export async function videos(opts: Global & { state?: string; limit?: string; cursor?: string }): Promise<void> {
  const q = new URLSearchParams();
  if (opts.state) q.set('state', opts.state);
  if (opts.limit) q.set('limit', opts.limit);
  if (opts.cursor) q.set('cursor', opts.cursor);
  const body = await call<{ videos: VideoBody[]; nextCursor: string | null }>(opts, 'GET', `/v1/videos${q.size ? `?${q}` : ''}`);
  if (opts.json) return out(body);
  if (!body.videos.length) return out('no videos');
  for (const v of body.videos) out(`${v.videoId}  ${v.state.padEnd(15)} ${v.durationSec != null ? `${v.durationSec.toFixed(1)}s` : '-'}`);
  if (body.nextCursor) out(`more: vora videos --cursor ${body.nextCursor}`);
}

export async function show(id: string, opts: Global): Promise<void> {
  const v = await call<VideoBody>(opts, 'GET', `/v1/videos/${encodeURIComponent(id)}`);
  if (opts.json) return out(v);
  out(`${v.videoId}  ${v.state}${v.failure ? `  (${v.failure.code}: ${v.failure.message})` : ''}`);
  if (v.durationSec != null) out(`duration  ${v.durationSec.toFixed(2)}s`);
  for (const r of v.renditions) out(`  ${r.name.padEnd(6)} ${r.state.padEnd(10)} attempts ${r.attempts}${r.error ? `  ${r.error}` : ''}`);
  if (v.playbackUrl) out(`play      ${v.playbackUrl}`);
}

export async function remove(id: string, opts: Global): Promise<void> {
  await call(opts, 'DELETE', `/v1/videos/${encodeURIComponent(id)}`);
  if (opts.json) out({ videoId: id, deleted: true });
  else out(`${id} deleted`);
}

export async function events(id: string, opts: Global): Promise<void> {
  const a = await call<{ views: number; averageWatchTimeSec: number; dropOff: Array<{ segment: number; viewers: number }>; bitrateDistribution: Array<{ bandwidth: number; share: number }> }>(
    opts, 'GET', `/v1/videos/${encodeURIComponent(id)}/analytics`,
  );
  if (opts.json) return out(a);
  out(`views ${a.views}   average watch time ${a.averageWatchTimeSec.toFixed(1)}s`);
  if (a.dropOff.length) out(`drop-off  ${a.dropOff.map((d) => `#${d.segment}:${d.viewers}`).join(' ')}`);
  for (const b of a.bitrateDistribution) out(`  ${(b.bandwidth / 1000).toFixed(0).padStart(6)} kb/s  ${(b.share * 100).toFixed(1)}%`);
}
