// The API from the browser: same origin as the page. The API key comes from the URL fragment
// (`#key=...`, printed by `vora up`), is kept in localStorage, and is sent on writes.
import { FINAL_VIDEO_STATES, PLAYABLE_STATES } from '../../src/common/video-state';

export interface AppConfig {
  playbackUrl: string;
  gatewayWsUrl: string;
  temporalUiUrl: string;
}

export interface Rendition {
  name: string;
  state: string;
  width: number | null;
  height: number | null;
  bandwidth: number | null;
  attempts: number;
  error: string | null;
}

export interface Video {
  videoId: string;
  uploadId: string;
  state: string;
  failure: { code: string; message: string } | null;
  durationSec: number | null;
  source: Record<string, unknown> | null;
  renditions: Rendition[];
  playbackUrl: string | null;
  thumbnailUrl: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface Analytics {
  views: number;
  averageWatchTimeSec: number;
  dropOff: Array<{ segment: number; viewers: number }>;
  bitrateDistribution: Array<{ bandwidth: number; share: number }>;
}

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

const KEY_STORAGE = 'vora.apiKey';

/** Reads `#key=...` from the URL once, stores it, and removes it from the address bar. */
export function captureKeyFromUrl(): void {
  const m = /(?:^#|&)key=([^&]+)/.exec(location.hash);
  if (!m) return;
  setApiKey(decodeURIComponent(m[1]!));
  const rest = location.hash.replace(/(^#|&)key=[^&]+/, '$1').replace(/^#&?$/, '');
  history.replaceState(history.state, '', location.pathname + location.search + rest);
}

export function getApiKey(): string | null {
  try {
    return localStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

export function setApiKey(key: string | null): void {
  if (key) localStorage.setItem(KEY_STORAGE, key.trim());
  else localStorage.removeItem(KEY_STORAGE);
  window.dispatchEvent(new Event('vora:key'));
}

export function authHeaders(): Record<string, string> {
  const k = getApiKey();
  return k ? { Authorization: `Bearer ${k}` } : {};
}

/** One line for a user, from an error code the server sent. */
export function describeError(code: string, message: string): string {
  switch (code) {
    case 'UNAUTHORIZED':
    case 'MISSING_API_KEY':
    case 'INVALID_API_KEY':
    case 'HTTP_401':
    case 'HTTP_403':
    case 'FORBIDDEN':
      return getApiKey()
        ? 'The API key was rejected. Open the link that `vora up` printed (…/#key=…) or set a valid key with the "API key set" button at the top.'
        : 'An API key is needed for this. Open the link that `vora up` printed (…/#key=…) or set the key with the "No API key" button at the top.';
    case 'EMPTY_UPLOAD':
      return 'The file is empty.';
    case 'UPLOAD_TOO_LARGE':
      return `The file is too large for this server. ${message}`;
    case 'CHECKSUM_MISMATCH':
      return 'The file arrived damaged (its sha256 did not match); try again.';
    case 'UPLOAD_GONE':
      return 'The unfinished upload expired on the server; start it again.';
    case 'NETWORK':
      return 'Cannot reach the server. Check the connection; uploads resume when it is back.';
    default:
      return message ? `${message} (${code})` : code;
  }
}

export async function api<T>(method: string, path: string): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, { method, headers: method === 'GET' ? {} : authHeaders() });
  } catch {
    throw new ApiError('NETWORK', 'cannot reach the API', 0);
  }
  const text = await res.text();
  let body: any = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const code = body?.error?.code ?? `HTTP_${res.status}`;
    throw new ApiError(code, body?.error?.message ?? `${method} ${path} answered ${res.status}`, res.status);
  }
  return body as T;
}

let configPromise: Promise<AppConfig> | null = null;
export function loadAppConfig(): Promise<AppConfig> {
  configPromise ??= api<AppConfig>('GET', '/v1/config').catch((err) => {
    configPromise = null;
    throw err;
  });
  return configPromise;
}

export const listVideos = (cursor?: string | null, limit = 20) =>
  api<{ videos: Video[]; nextCursor: string | null }>('GET', `/v1/videos?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
export const getVideo = (id: string) => api<Video>('GET', `/v1/videos/${encodeURIComponent(id)}`);
export const deleteVideo = (id: string) => api<void>('DELETE', `/v1/videos/${encodeURIComponent(id)}`);
export const getAnalytics = (id: string) => api<Analytics>('GET', `/v1/videos/${encodeURIComponent(id)}/analytics`);
export const getUpload = (id: string) =>
  api<{ uploadId: string; status: string; videoId: string | null; error: { code: string; message: string } | null }>('GET', `/v1/uploads/${encodeURIComponent(id)}`);

// The server's own definitions (a pure module that Vite bundles in).
export const PLAYABLE = PLAYABLE_STATES;
export const TERMINAL = FINAL_VIDEO_STATES;

export function fmtBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(0)} KiB`;
  return `${n} B`;
}

export function fmtDuration(sec: number | null | undefined): string {
  if (sec == null || !Number.isFinite(sec)) return '–';
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}` : `${m}:${String(r).padStart(2, '0')}`;
}

export function fmtKbps(bps: number | null | undefined): string {
  if (!bps) return '–';
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(1)} Mb/s` : `${Math.round(bps / 1000)} kb/s`;
}
