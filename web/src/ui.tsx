import { useEffect, useState } from 'preact/hooks';
import { api, type Video } from './api';

// Small shared pieces.
const STATE_LABEL: Record<string, string> = {
  CREATED: 'Queued',
  PROCESSING: 'Processing',
  PARTIALLY_READY: 'Partly ready',
  READY: 'Ready',
  FAILED: 'Failed',
  PENDING: 'Pending',
  DONE: 'Done',
  RETRYING: 'Retrying',
};

export function StateBadge({ state, small }: { state: string; small?: boolean }) {
  return (
    <span class={`badge st-${state.toLowerCase()} ${small ? 'small' : ''}`} data-state={state} title={state}>
      {STATE_LABEL[state] ?? state}
    </span>
  );
}

export function Spinner({ label = 'Loading' }: { label?: string }) {
  return (
    <div class="loading" role="status">
      <span class="spinner" aria-hidden="true" /> {label}…
    </div>
  );
}

export function ErrorBox({ message, retry }: { message: string; retry?: () => void }) {
  return (
    <div class="banner error" role="alert">
      <span>{message}</span>
      {retry && (
        <button type="button" class="btn small" onClick={retry}>
          Retry
        </button>
      )}
    </div>
  );
}

const names = new Map<string, Promise<string | null>>();

/** The uploaded file's name for a video (from its upload), or null while unknown. */
export function useFilename(video: Pick<Video, 'uploadId' | 'source'> | null): string | null {
  const fromSource = (video?.source as { filename?: string } | null)?.filename ?? null;
  const [name, setName] = useState<string | null>(fromSource);
  useEffect(() => {
    if (fromSource || !video?.uploadId) return;
    let p = names.get(video.uploadId);
    if (!p) {
      p = api<{ filename?: string | null }>('GET', `/v1/uploads/${encodeURIComponent(video.uploadId)}`)
        .then((u) => u.filename ?? null)
        .catch(() => null);
      names.set(video.uploadId, p);
    }
    let live = true;
    void p.then((n) => live && setName(n));
    return () => {
      live = false;
    };
  }, [video?.uploadId, fromSource]);
  return fromSource ?? name;
}
