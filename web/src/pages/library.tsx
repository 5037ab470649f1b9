import { useEffect, useState } from 'preact/hooks';
import { ApiError, deleteVideo, describeError, fmtDuration, listVideos, PLAYABLE, TERMINAL, type Video } from '../api';
import { live } from '../live';
import { Link } from '../router';
import { ErrorBox, Spinner, StateBadge, useFilename } from '../ui';

function Thumb({ v }: { v: Video }) {
  const [broken, setBroken] = useState(false);
  if (v.thumbnailUrl && !broken)
    return <img class="thumb" src={v.thumbnailUrl} alt="" loading="lazy" onError={() => setBroken(true)} />;
  return (
    <div class={`thumb placeholder ${v.state === 'FAILED' ? 'failed' : ''}`} aria-hidden="true">
      {v.state === 'FAILED' ? '!' : PLAYABLE.has(v.state) ? '▶' : <span class="spinner" />}
    </div>
  );
}

function VideoCard({ v, onDeleted }: { v: Video; onDeleted: (id: string) => void }) {
  const [video, setVideo] = useState(v);
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<string | null>(null);
  useEffect(() => setVideo(v), [v]);
  useEffect(() => {
    if (TERMINAL.has(video.state)) return;
    return live.subscribe(video.videoId, setVideo);
  }, [video.videoId, TERMINAL.has(video.state)]);
  const playable = PLAYABLE.has(video.state);
  const name = useFilename(video);
  const onDelete = async () => {
    if (!confirm(`Delete ${video.videoId}? Its renditions and analytics link go away.`)) return;
    setBusy(true);
    setErr(null);
    try {
      await deleteVideo(video.videoId);
      onDeleted(video.videoId);
    } catch (e) {
      const ae = e as ApiError;
      setErr(describeError(ae.code, ae.message));
      setBusy(false);
    }
  };
  return (
    <li class="card video" data-testid="video-card" data-video-id={video.videoId} data-state={video.state}>
      {playable ? (
        <Link href={`/videos/${video.videoId}`} class="thumb-link" aria-label={`Watch ${video.videoId}`}>
          <Thumb v={video} />
          {video.durationSec != null && <span class="duration">{fmtDuration(video.durationSec)}</span>}
        </Link>
      ) : (
        <div class="thumb-link">
          <Thumb v={video} />
        </div>
      )}
      <div class="video-body">
        <div class="video-title">
          <span class="vname" title={name ? `${name} (${video.videoId})` : video.videoId}>{name ?? <code>{video.videoId}</code>}</span>
          <StateBadge state={video.state} />
        </div>
        <p class="muted small">
          {new Date(video.createdAt).toLocaleString()} · {fmtDuration(video.durationSec)}
        </p>
        {video.renditions.length > 0 && (
          <ul class="renditions plain" aria-label="Renditions">
            {video.renditions.map((r) => (
              <li key={r.name} title={r.error ?? `${r.name}: ${r.state}${r.attempts > 1 ? `, ${r.attempts} attempts` : ''}`}>
                <span class="rname">{r.name}</span> <StateBadge state={r.state} small />
              </li>
            ))}
          </ul>
        )}
        {video.failure && (
          <p class="error small" data-testid="failure">
            <strong>{video.failure.code}</strong>: {video.failure.message}
          </p>
        )}
        {err && (
          <p class="error small" role="alert">
            {err}
          </p>
        )}
        <div class="row">
          {playable && (
            <Link href={`/videos/${video.videoId}`} class="btn small primary">
              Watch
            </Link>
          )}
          <Link href={`/videos/${video.videoId}/analytics`} class="btn small">
            Analytics
          </Link>
          <button type="button" class="btn small danger" disabled={busy} onClick={() => void onDelete()}>
            {busy ? 'Deleting…' : 'Delete'}
          </button>
        </div>
      </div>
    </li>
  );
}

export function LibraryPage() {
  const [videos, setVideos] = useState<Video[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);

  const load = async (from: string | null) => {
    setError(null);
    try {
      const page = await listVideos(from);
      setVideos((prev) => (from && prev ? [...prev, ...page.videos.filter((v) => !prev.some((p) => p.videoId === v.videoId))] : page.videos));
      setCursor(page.nextCursor);
    } catch (e) {
      const ae = e as ApiError;
      setError(`Could not load the library: ${describeError(ae.code, ae.message)}`);
    }
  };
  useEffect(() => {
    void load(null);
  }, []);

  return (
    <section>
      <div class="page-head">
        <h1>Library</h1>
        <div class="row">
          <button type="button" class="btn" onClick={() => void load(null)}>
            Refresh
          </button>
          <Link href="/upload" class="btn primary">
            Upload videos
          </Link>
        </div>
      </div>
      {error && <ErrorBox message={error} retry={() => void load(null)} />}
      {!videos && !error && <Spinner label="Loading videos" />}
      {videos && videos.length === 0 && (
        <div class="empty card">
          <h2>No videos yet</h2>
          <p class="muted">Upload a file and it shows up here while it is processed.</p>
          <Link href="/upload" class="btn primary">
            Upload your first video
          </Link>
        </div>
      )}
      {videos && videos.length > 0 && (
        <ul class="grid plain" data-testid="library">
          {videos.map((v) => (
            <VideoCard key={v.videoId} v={v} onDeleted={(id) => setVideos((prev) => prev?.filter((x) => x.videoId !== id) ?? null)} />
          ))}
        </ul>
      )}
      {cursor && (
        <div class="more">
          <button
            type="button"
            class="btn"
            disabled={loadingMore}
            onClick={() => {
              setLoadingMore(true);
              void load(cursor).finally(() => setLoadingMore(false));
            }}
          >
            {loadingMore ? 'Loading…' : 'Load more'}
          </button>
        </div>
      )}
    </section>
  );
}
