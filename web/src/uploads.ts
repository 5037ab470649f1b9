// Upload queue shared by the pages (module state, so uploads keep going while the user browses).
// tus-js-client with 16 MiB chunks (a multiple of the server's 8 MiB S3 parts); the sha256 is
// computed in a Web Worker first and sent as `sha256` metadata. tus-js-client keeps each upload's
// URL in localStorage under the file's fingerprint, so after a reload picking the same file again
// resumes from the server's offset (and skips hashing: the metadata was sent at creation).
import * as tus from 'tus-js-client';
import { authHeaders, describeError, getUpload, type Video } from './api';
import { live } from './live';

export const CHUNK_SIZE = 16 * 1024 * 1024;

export type ItemStatus = 'queued' | 'hashing' | 'uploading' | 'paused' | 'offline' | 'finishing' | 'done' | 'error';

export interface UploadItem {
  id: number;
  file: File;
  status: ItemStatus;
  hashProgress: number;
  sent: number;
  total: number;
  /** bytes/s over the last few seconds */
  speed: number;
  etaSec: number | null;
  error: string | null;
  errorCode: string | null;
  uploadId: string | null;
  videoId: string | null;
  video: Video | null;
  /** offset the server reported when the upload resumed (reload or reconnect) */
  resumedFrom: number | null;
  upload: tus.Upload | null;
}

const items: UploadItem[] = [];
const listeners = new Set<() => void>();
let nextId = 1;

export function uploadItems(): readonly UploadItem[] {
  return items;
}

export function onUploadsChange(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

let notifyQueued = false;
function changed() {
  if (notifyQueued) return;
  notifyQueued = true;
  requestAnimationFrame(() => {
    notifyQueued = false;
    for (const fn of listeners) fn();
  });
}

export function addFiles(files: Iterable<File>): void {
  for (const file of files) {
    const item: UploadItem = {
      id: nextId++,
      file,
      status: 'queued',
      hashProgress: 0,
      sent: 0,
      total: file.size,
      speed: 0,
      etaSec: null,
      error: null,
      errorCode: null,
      uploadId: null,
      videoId: null,
      video: null,
      resumedFrom: null,
      upload: null,
    };
    items.unshift(item);
    void startItem(item);
  }
  changed();
}

export function removeItem(item: UploadItem): void {
  if (item.upload && (item.status === 'uploading' || item.status === 'offline')) void item.upload.abort();
  const i = items.indexOf(item);
  if (i >= 0) items.splice(i, 1);
  changed();
}

export function pause(item: UploadItem): void {
  if (!item.upload || (item.status !== 'uploading' && item.status !== 'offline')) return;
  item.status = 'paused';
  item.speed = 0;
  item.etaSec = null;
  void item.upload.abort();
  changed();
}

export function resume(item: UploadItem): void {
  if (!item.upload || (item.status !== 'paused' && item.status !== 'error' && item.status !== 'offline')) return;
  if (item.status === 'error' && item.errorCode && !RETRYABLE.has(item.errorCode)) return;
  item.status = 'uploading';
  item.error = item.errorCode = null;
  item.upload.options.headers = authHeaders();
  item.upload.start();
  changed();
}

/** Codes after which starting again can help (network trouble, a key fixed since). */
const RETRYABLE = new Set(['NETWORK', 'UPLOAD_FAILED', 'UNAUTHORIZED', 'MISSING_API_KEY', 'INVALID_API_KEY', 'HTTP_401', 'HTTP_403', 'FORBIDDEN', 'CHECKSUM_MISMATCH']);
export const canRetry = (item: UploadItem) => item.status === 'error' && (!item.errorCode || RETRYABLE.has(item.errorCode));

function hashInWorker(item: UploadItem): Promise<string> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./sha256.worker.ts', import.meta.url), { type: 'module' });
    worker.onmessage = (ev: MessageEvent<{ progress?: number; hex?: string; error?: string }>) => {
      if (ev.data.progress !== undefined) {
        item.hashProgress = ev.data.progress;
        changed();
      } else if (ev.data.hex) {
        worker.terminate();
        resolve(ev.data.hex);
      } else {
        worker.terminate();
        reject(new Error(ev.data.error ?? 'hashing failed'));
      }
    };
    worker.onerror = (e) => {
      worker.terminate();
      reject(new Error(e.message || 'hashing failed'));
    };
    worker.postMessage({ file: item.file });
  });
}

function errorCodeOf(err: Error): { code: string; status: number } {
  const res = (err as tus.DetailedError).originalResponse;
  const status = res?.getStatus() ?? 0;
  if (!res || status === 0) return { code: 'NETWORK', status: 0 };
  let code = `HTTP_${status}`;
  try {
    code = JSON.parse(res.getBody() ?? '{}')?.error?.code ?? code;
  } catch {
    /* not JSON */
  }
  return { code, status };
}

// When the browser says it went offline, stop the running requests at once (an in-flight PATCH may
// otherwise hang until a timeout) and continue all of them from the server's offset once it is back.
window.addEventListener('offline', () => {
  for (const item of items) {
    if (item.status !== 'uploading' || !item.upload) continue;
    item.status = 'offline';
    item.speed = 0;
    item.etaSec = null;
    item.error = describeError('NETWORK', '');
    void item.upload.abort();
  }
  changed();
});
window.addEventListener('online', () => {
  setTimeout(() => {
    for (const item of items) {
      if (item.status !== 'offline' || !item.upload) continue;
      item.status = 'uploading';
      item.error = null;
      item.upload.options.headers = authHeaders();
      item.upload.start();
    }
    changed();
  }, 300);
});

function whenOnline(fn: () => void) {
  if (navigator.onLine) return void setTimeout(fn, 500);
  window.addEventListener('online', () => setTimeout(fn, 300), { once: true });
}

async function startItem(item: UploadItem): Promise<void> {
  const samples: Array<[number, number]> = [];
  const upload = new tus.Upload(item.file, {
    endpoint: '/v1/uploads',
    chunkSize: CHUNK_SIZE,
    metadata: { filename: item.file.name, filetype: item.file.type || 'application/octet-stream' },
    headers: authHeaders(),
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    retryDelays: [0, 1000, 2000, 4000, 8000, 15000],
    // Retry server trouble and dropped connections while online; offline, onError waits for 'online'.
    onShouldRetry: (err) => {
      const { status } = errorCodeOf(err);
      if (!navigator.onLine) return false;
      return status === 0 || status >= 500 || status === 409 || status === 423;
    },
    onAfterResponse: (req, res) => {
      const method = req.getMethod();
      if (method === 'HEAD' && res.getStatus() < 300) {
        const off = Number(res.getHeader('Upload-Offset'));
        if (Number.isFinite(off)) {
          item.resumedFrom = off;
          changed();
        }
      }
      if (method === 'POST' && res.getStatus() < 300) {
        const loc = res.getHeader('Location');
        if (loc) item.uploadId = loc.split('/').pop() ?? null;
      }
      const vid = res.getHeader('Vora-Video-Id');
      if (vid) item.videoId = vid;
    },
    onProgress: (sent, total) => {
      const now = performance.now();
      samples.push([now, sent]);
      while (samples.length > 2 && now - samples[0]![0] > 4000) samples.shift();
      const [t0, s0] = samples[0]!;
      item.speed = now - t0 > 250 ? ((sent - s0) * 1000) / (now - t0) : item.speed;
      item.etaSec = item.speed > 0 ? (total - sent) / item.speed : null;
      item.sent = sent;
      item.total = total;
      if (item.status === 'offline') item.status = 'uploading';
      changed();
    },
    onError: (err) => {
      if (item.status === 'paused') return;
      const { code } = errorCodeOf(err);
      samples.length = 0;
      if (code === 'NETWORK') {
        // Offline or the server went away: keep the upload and start again when the network is back
        // (tus asks the server for its offset with HEAD and continues from there).
        item.status = 'offline';
        item.speed = 0;
        item.etaSec = null;
        item.error = describeError('NETWORK', '');
        changed();
        whenOnline(() => {
          if (item.status !== 'offline') return;
          item.status = 'uploading';
          item.error = null;
          upload.start();
          changed();
        });
        return;
      }
      item.status = 'error';
      item.errorCode = code;
      item.error = describeError(code, err.message.split('\n')[0] ?? '');
      changed();
    },
    onSuccess: () => {
      item.status = 'finishing';
      item.sent = item.total;
      item.speed = 0;
      item.etaSec = 0;
      item.uploadId ??= upload.url?.split('/').pop() ?? null;
      changed();
      void afterUpload(item);
    },
  });
  item.upload = upload;
  try {
    const previous = await upload.findPreviousUploads();
    if (previous[0]) {
      // Same file (fingerprint) as an unfinished upload: resume it; its sha256 is already on the server.
      upload.resumeFromPreviousUpload(previous[0]);
      item.uploadId = previous[0].uploadUrl?.split('/').pop() ?? null;
    } else if (item.file.size > 0) {
      item.status = 'hashing';
      changed();
      upload.options.metadata = { ...upload.options.metadata, sha256: await hashInWorker(item) };
    }
  } catch (err) {
    item.status = 'error';
    item.error = `Could not read the file: ${(err as Error).message}`;
    changed();
    return;
  }
  if ((item.status as ItemStatus) === 'paused') return; // paused while hashing
  item.status = 'uploading';
  changed();
  upload.start();
}

async function afterUpload(item: UploadItem): Promise<void> {
  // The finish response carries Vora-Video-Id; otherwise ask the upload resource.
  for (let i = 0; !item.videoId && item.uploadId && i < 120; i++) {
    try {
      const u = await getUpload(item.uploadId);
      if (u.videoId) item.videoId = u.videoId;
      else if (u.status === 'FAILED' && u.error) {
        item.status = 'error';
        item.errorCode = u.error.code;
        item.error = describeError(u.error.code, u.error.message);
        changed();
        return;
      }
    } catch {
      /* retry */
    }
    if (!item.videoId) await new Promise((r) => setTimeout(r, 500));
  }
  item.status = 'done';
  changed();
  if (item.videoId) {
    const unsubscribe = live.subscribe(item.videoId, (v) => {
      item.video = v;
      changed();
      if (v.state === 'READY' || v.state === 'FAILED') unsubscribe();
    });
  }
}

export interface StoredUpload {
  key: string;
  filename: string;
  size: number | null;
  uploadId: string | null;
  createdAt: string;
}

/** Unfinished uploads tus-js-client remembered in localStorage (from earlier visits). */
export async function storedUploads(): Promise<StoredUpload[]> {
  const storage = tus.defaultOptions.urlStorage;
  if (!storage) return [];
  const all = await storage.findAllUploads();
  const active = new Set(items.filter((i) => i.status !== 'done').map((i) => i.uploadId));
  return all
    .filter((u) => u.uploadUrl && !active.has(u.uploadUrl.split('/').pop() ?? null))
    .map((u) => ({
      key: u.urlStorageKey,
      filename: u.metadata?.filename ?? 'unnamed file',
      size: u.size,
      uploadId: u.uploadUrl?.split('/').pop() ?? null,
      createdAt: u.creationTime,
    }));
}

export async function forgetStored(key: string): Promise<void> {
  await tus.defaultOptions.urlStorage?.removeUpload(key);
}
