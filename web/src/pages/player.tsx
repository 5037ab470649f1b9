import Hls, { type Level } from 'hls.js';
import { useEffect, useRef, useState } from 'preact/hooks';
import { StoryboardSeek } from '../storyboard';
import { ApiError, describeError, fmtDuration, fmtKbps, getVideo, loadAppConfig, PLAYABLE, TERMINAL, type Video } from '../api';
import { live } from '../live';
import { Link } from '../router';
import { Telemetry } from '../telemetry';
import { ErrorBox, Spinner, StateBadge, useFilename } from '../ui';

declare global {
  interface Window {
    /** For tests and debugging: the current player's pieces. */
    __vora?: { hls: Hls | null; video: HTMLVideoElement; telemetry: Telemetry; switches: number[] };
  }
}

interface LevelInfo {
  index: number;
  label: string;
  bitrate: number;
}

const levelLabel = (l: Level) => (l.height ? `${l.height}p` : l.name || fmtKbps(l.bitrate));

function Player({ video, playbackUrl }: { video: Video; playbackUrl: string }) {
  const ref = useRef<HTMLVideoElement>(null);
  const hlsRef = useRef<Hls | null>(null);
  const [levels, setLevels] = useState<LevelInfo[]>([]);
  const [choice, setChoice] = useState(-1);
  const [playing, setPlaying] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [native, setNative] = useState(false);

  useEffect(() => {
    const el = ref.current!;
    const src = video.playbackUrl!;
    const t = new Telemetry(playbackUrl, video.videoId);
    const switches: number[] = [];
    let started = false;
    let seeking = false;
    let watched = 0;
    let lastPos: number | null = null;
    let lastReported = 0;
    const reportWatch = () => {
      if (watched - lastReported >= 0.25) {
        lastReported = watched;
        t.track('watch_time', { watchTimeSec: Math.round(watched * 1000) / 1000, positionSec: el.currentTime });
      }
    };
    const onTime = () => {
      const pos = el.currentTime;
      if (lastPos !== null && !seeking && !el.paused) {
        const d = pos - lastPos;
        if (d > 0 && d < 2) watched += d;
      }
      lastPos = pos;
      if (watched - lastReported >= 10) reportWatch();
    };
    const onPlay = () => t.track('play', { positionSec: el.currentTime });
    const onPlaying = () => {
      started = true;
    };
    const onPause = () => {
      if (el.ended) return;
      reportWatch();
      t.track('pause', { positionSec: el.currentTime });
      t.flush();
    };
    const onEnded = () => {
      reportWatch();
      t.flush();
    };
    const onWaiting = () => {
      if (started && !seeking && !el.ended) t.track('rebuffer', { positionSec: el.currentTime });
    };
    const onSeeking = () => {
      seeking = true;
    };
    const onSeeked = () => {
      seeking = false;
      lastPos = el.currentTime;
    };
    const onVideoError = () => {
      t.track('error', { positionSec: el.currentTime });
      setError(`The browser could not play this video${el.error?.message ? `: ${el.error.message}` : ''}.`);
    };
    const onHide = () => {
      if (document.visibilityState === 'hidden') reportWatch();
    };
    el.addEventListener('timeupdate', onTime);
    el.addEventListener('play', onPlay);
    el.addEventListener('playing', onPlaying);
    el.addEventListener('pause', onPause);
    el.addEventListener('ended', onEnded);
    el.addEventListener('waiting', onWaiting);
    el.addEventListener('seeking', onSeeking);
    el.addEventListener('seeked', onSeeked);
    el.addEventListener('error', onVideoError);
    document.addEventListener('visibilitychange', onHide, true);

    let hls: Hls | null = null;
    if (Hls.isSupported()) {
      hls = new Hls({ enableWorker: true, capLevelToPlayerSize: false, startLevel: -1 });
      hlsRef.current = hls;
      hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
        setLevels(data.levels.map((l, index) => ({ index, label: levelLabel(l), bitrate: l.bitrate })).sort((a, b) => b.bitrate - a.bitrate));
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => {
        switches.push(data.level);
        setPlaying(data.level);
        const l = hls!.levels[data.level];
        if (l) t.track('bitrate_selected', { bandwidth: l.bitrate, positionSec: el.currentTime });
      });
      hls.on(Hls.Events.FRAG_LOADED, (_e, data) => {
        const frag = data.frag;
        if (typeof frag.sn !== 'number') return; // init segments
        const l = hls!.levels[frag.level];
        t.track('segment_fetched', { segment: frag.sn, bandwidth: l?.bitrate, positionSec: frag.start });
      });
      hls.on(Hls.Events.ERROR, (_e, data) => {
        if (!data.fatal) return;
        t.track('error', { positionSec: el.currentTime });
        if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
          setError('The stream could not be loaded; retrying…');
          setTimeout(() => hls?.startLoad(), 2000);
        } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
          hls!.recoverMediaError();
        } else {
          setError(`Playback failed: ${data.details}`);
        }
      });
      hls.on(Hls.Events.FRAG_BUFFERED, () => setError(null));
      hls.loadSource(src);
      hls.attachMedia(el);
    } else if (el.canPlayType('application/vnd.apple.mpegurl')) {
      // Native HLS (Safari/iOS): the browser picks the rendition; the menu offers Auto only.
      setNative(true);
      el.src = src;
    } else {
      setError('This browser can play neither HLS nor Media Source Extensions.');
    }
    window.__vora = { hls, video: el, telemetry: t, switches };

    return () => {
      reportWatch();
      el.removeEventListener('timeupdate', onTime);
      el.removeEventListener('play', onPlay);
      el.removeEventListener('playing', onPlaying);
      el.removeEventListener('pause', onPause);
      el.removeEventListener('ended', onEnded);
      el.removeEventListener('waiting', onWaiting);
      el.removeEventListener('seeking', onSeeking);
      el.removeEventListener('seeked', onSeeked);
      el.removeEventListener('error', onVideoError);
      document.removeEventListener('visibilitychange', onHide, true);
      t.close();
      hls?.destroy();
      hlsRef.current = null;
      if (window.__vora?.video === el) delete window.__vora;
    };
  }, [video.playbackUrl, video.videoId, playbackUrl]);

  const current = levels.find((l) => l.index === playing);
  return (
    <div class="player">
      <div class="video-wrap">
        <video ref={ref} controls playsInline poster={video.thumbnailUrl ?? undefined} preload="metadata" data-testid="player" aria-label="Video player" />
      </div>
      <StoryboardSeek video={ref.current} masterUrl={video.playbackUrl!} />
      <div class="player-bar">
        <label for="quality">Quality</label>
        <select
          id="quality"
          data-testid="quality"
          value={String(choice)}
          disabled={native || levels.length === 0}
          onChange={(e) => {
            const idx = Number(e.currentTarget.value);
            setChoice(idx);
            // currentLevel switches now (flushes the buffer); -1 hands the choice back to ABR.
            if (hlsRef.current) hlsRef.current.currentLevel = idx;
          }}
        >
          <option value="-1">Auto{choice === -1 && current ? ` (${current.label})` : ''}</option>
          {levels.map((l) => (
            <option key={l.index} value={String(l.index)}>
              {l.label} · {fmtKbps(l.bitrate)}
            </option>
          ))}
        </select>
        <span class="muted" data-testid="playing-level" aria-live="polite">
          {current ? `Playing ${current.label} (${fmtKbps(current.bitrate)})` : native ? 'Native HLS' : ''}
        </span>
      </div>
      {error && <ErrorBox message={error} />}
    </div>
  );
}

export function PlayerPage({ videoId }: { videoId: string }) {
  const [video, setVideo] = useState<Video | null>(null);
  const [playbackUrl, setPlaybackUrl] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = () => {
    setError(null);
    Promise.all([getVideo(videoId), loadAppConfig()])
      .then(([v, cfg]) => {
        setVideo(v);
        setPlaybackUrl(cfg.playbackUrl);
      })
      .catch((e: ApiError) => setError(e.code === 'VIDEO_NOT_FOUND' ? 'This video does not exist (or was deleted).' : describeError(e.code, e.message)));
  };
  useEffect(load, [videoId]);
  const filename = useFilename(video);
  const terminal = video ? TERMINAL.has(video.state) : true;
  useEffect(() => {
    if (terminal) return;
    return live.subscribe(videoId, setVideo);
  }, [videoId, terminal]);

  // The player mounts once the video first becomes playable; later updates only refresh the info.
  const [playerVideo, setPlayerVideo] = useState<Video | null>(null);
  useEffect(() => {
    if (video && PLAYABLE.has(video.state) && video.playbackUrl && !playerVideo) setPlayerVideo(video);
  }, [video]);

  if (error)
    return (
      <section>
        <h1>Video</h1>
        <ErrorBox message={error} retry={load} />
        <p>
          <Link href="/">Back to the library</Link>
        </p>
      </section>
    );
  if (!video || !playbackUrl) return <Spinner label="Loading the video" />;
  return (
    <section>
      <div class="page-head">
        <h1>{filename ?? <code>{video.videoId}</code>}</h1>
        <div class="row">
          <StateBadge state={video.state} />
          <Link href={`/videos/${video.videoId}/analytics`} class="btn">
            Analytics
          </Link>
        </div>
      </div>
      {playerVideo ? (
        <Player video={playerVideo} playbackUrl={playbackUrl} />
      ) : video.state === 'FAILED' ? (
        <div class="banner error" role="alert">
          Processing failed: <strong>{video.failure?.code}</strong> {video.failure?.message}
        </div>
      ) : (
        <div class="card empty">
          <span class="spinner" aria-hidden="true" />
          <p>
            This video is being processed (<StateBadge state={video.state} />). It starts playing here as soon as the first rendition is ready.
          </p>
        </div>
      )}
      {video.state === 'PARTIALLY_READY' && playerVideo && <p class="note">Some renditions are still processing; reload for the full quality ladder once it is ready.</p>}
      <dl class="facts">
        <dt>Video id</dt>
        <dd>
          <code>{video.videoId}</code>
        </dd>
        <dt>Duration</dt>
        <dd>{fmtDuration(video.durationSec)}</dd>
        <dt>Renditions</dt>
        <dd>
          <ul class="renditions plain">
            {video.renditions.map((r) => (
              <li key={r.name}>
                <span class="rname">{r.name}</span> <StateBadge state={r.state} small /> <span class="muted small">{r.width && r.height ? `${r.width}×${r.height}` : ''} {fmtKbps(r.bandwidth)}</span>
                {r.error && <span class="error-inline"> {r.error}</span>}
              </li>
            ))}
          </ul>
        </dd>
      </dl>
    </section>
  );
}
