import { useEffect, useReducer, useRef, useState } from 'preact/hooks';
import { fmtBytes, fmtDuration, getApiKey, getUpload, PLAYABLE } from '../api';
import { Link } from '../router';
import { StateBadge } from '../ui';
import {
  addFiles,
  canRetry,
  forgetStored,
  onUploadsChange,
  pause,
  removeItem,
  resume,
  storedUploads,
  uploadItems,
  type StoredUpload,
  type UploadItem,
} from '../uploads';

const STATUS_TEXT: Record<UploadItem['status'], string> = {
  queued: 'Queued',
  hashing: 'Computing checksum',
  uploading: 'Uploading',
  paused: 'Paused',
  offline: 'Waiting for the network',
  finishing: 'Verifying on the server',
  done: 'Uploaded',
  error: 'Rejected',
};

function ItemRow({ item }: { item: UploadItem }) {
  const pct = item.total ? (item.sent / item.total) * 100 : 0;
  const hashing = item.status === 'hashing';
  const v = item.video;
  return (
    <li class={`upload status-${item.status}`} data-testid="upload-item" data-status={item.status} data-progress={(item.sent / Math.max(item.total, 1)).toFixed(3)} data-video-id={item.videoId ?? ''} data-video-state={v?.state ?? ''} data-resumed-from={item.resumedFrom ?? ''}>
      <div class="upload-head">
        <strong class="fname" title={item.file.name}>{item.file.name}</strong>
        <span class="muted">{fmtBytes(item.file.size)}</span>
        <span class={`pill s-${item.status}`}>{STATUS_TEXT[item.status]}</span>
      </div>
      <div
        class="bar"
        role="progressbar"
        aria-label={`${item.file.name} ${hashing ? 'checksum' : 'upload'} progress`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(hashing ? item.hashProgress * 100 : pct)}
      >
        <div class={`fill ${hashing ? 'hash' : ''}`} style={{ width: `${hashing ? item.hashProgress * 100 : pct}%` }} />
      </div>
      <div class="upload-meta">
        {hashing ? (
          <span>sha256 {Math.round(item.hashProgress * 100)}%</span>
        ) : (
          <span>
            {fmtBytes(item.sent)} of {fmtBytes(item.total)} · {pct.toFixed(0)}%
            {item.status === 'uploading' && item.speed > 0 && (
              <>
                {' '}· {fmtBytes(item.speed)}/s · {item.etaSec != null ? `${fmtDuration(item.etaSec)} left` : ''}
              </>
            )}
          </span>
        )}
        {item.resumedFrom != null && item.resumedFrom > 0 && <span class="muted"> · resumed at {fmtBytes(item.resumedFrom)}</span>}
        <span class="actions">
          {(item.status === 'uploading' || item.status === 'offline') && (
            <button type="button" class="btn small" onClick={() => pause(item)}>
              Pause
            </button>
          )}
          {item.status === 'paused' && (
            <button type="button" class="btn small primary" onClick={() => resume(item)}>
              Resume
            </button>
          )}
          {canRetry(item) && (
            <button type="button" class="btn small" onClick={() => resume(item)}>
              Try again
            </button>
          )}
          {item.status !== 'uploading' && item.status !== 'hashing' && item.status !== 'finishing' && (
            <button type="button" class="btn small ghost" onClick={() => removeItem(item)} aria-label={`Remove ${item.file.name} from the list`}>
              Dismiss
            </button>
          )}
        </span>
      </div>
      {item.error && (
        <p class={item.status === 'offline' ? 'note' : 'error'} role="alert">
          {item.error}
        </p>
      )}
      {item.videoId && (
        <div class="upload-video">
          <span>
            Video <code>{item.videoId}</code>
          </span>
          {v && <StateBadge state={v.state} />}
          {v?.failure && (
            <span class="error-inline">
              {v.failure.code}: {v.failure.message}
            </span>
          )}
          {v && PLAYABLE.has(v.state) && (
            <Link href={`/videos/${v.videoId}`} class="btn small primary">
              Watch
            </Link>
          )}
        </div>
      )}
    </li>
  );
}

function StoredList() {
  const [stored, setStored] = useState<Array<StoredUpload & { sent?: number; gone?: boolean }>>([]);
  const refresh = async () => {
    const list = await storedUploads();
    const withOffsets = await Promise.all(
      list.map(async (s) => {
        if (!s.uploadId) return s;
        try {
          const u = await getUpload(s.uploadId);
          return { ...s, sent: (u as unknown as { bytesUploaded: number }).bytesUploaded, gone: u.status !== 'UPLOADING' && u.status !== 'CREATED' };
        } catch {
          return { ...s, gone: true };
        }
      }),
    );
    setStored(withOffsets);
  };
  useEffect(() => {
    void refresh();
    // Progress ticks change nothing here; a new, finished or failed upload may.
    let sig = '';
    return onUploadsChange(() => {
      const next = uploadItems()
        .map((i) => `${i.id}:${i.status}:${i.uploadId ?? ''}`)
        .join(',');
      if (next !== sig) {
        sig = next;
        void refresh();
      }
    });
  }, []);
  const live = stored.filter((s) => !s.gone);
  if (!live.length) return null;
  return (
    <section class="card stored" aria-labelledby="stored-h">
      <h2 id="stored-h">Unfinished uploads</h2>
      <p class="muted">Choose the same file again to continue where it stopped.</p>
      <ul class="plain">
        {live.map((s) => (
          <li key={s.key}>
            <strong>{s.filename}</strong>{' '}
            <span class="muted">
              {s.sent != null && s.size ? `${fmtBytes(s.sent)} of ${fmtBytes(s.size)} (${Math.round((s.sent / s.size) * 100)}%)` : ''}
            </span>
            <button type="button" class="btn small ghost" onClick={() => void forgetStored(s.key).then(refresh)}>
              Forget
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function UploadPage() {
  const [, rerender] = useReducer((n: number, _a: number) => n + 1, 0);
  const [drag, setDrag] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => onUploadsChange(() => rerender(0)), []);
  const items = uploadItems();
  const hasKey = Boolean(getApiKey());
  return (
    <section>
      <h1>Upload</h1>
      {!hasKey && (
        <div class="banner warn" role="status">
          <span>
            No API key is stored in this browser, and uploads need one. Open the link <code>vora up</code> printed (
            <code>http://127.0.0.1:8080/#key=…</code>) or set the key with the “No API key” button at the top.
          </span>
        </div>
      )}
      <div
        class={`drop ${drag ? 'over' : ''}`}
        onDragOver={(e) => {
          e.preventDefault();
          setDrag(true);
        }}
        onDragLeave={() => setDrag(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDrag(false);
          if (e.dataTransfer?.files.length) addFiles(Array.from(e.dataTransfer.files));
        }}
      >
        <p class="drop-title">Drop video files here</p>
        <p class="muted">MP4, MOV, MKV, WebM, TS… several at once. Uploads resume after a dropped connection or a reload.</p>
        <button type="button" class="btn primary" onClick={() => input.current?.click()}>
          Choose files
        </button>
        <input
          ref={input}
          id="file-input"
          data-testid="file-input"
          type="file"
          multiple
          accept="video/*,.mkv,.ts,.mov"
          class="visually-hidden"
          tabIndex={-1}
          aria-hidden="true"
          onChange={(e) => {
            const files = e.currentTarget.files;
            if (files?.length) addFiles(Array.from(files));
            e.currentTarget.value = '';
          }}
        />
      </div>
      <StoredList />
      {items.length > 0 && (
        <section aria-labelledby="q-h">
          <h2 id="q-h">This session</h2>
          <ul class="uploads plain" aria-live="polite">
            {items.map((it) => (
              <ItemRow key={it.id} item={it} />
            ))}
          </ul>
        </section>
      )}
    </section>
  );
}
