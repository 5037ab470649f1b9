import { BarController, BarElement, CategoryScale, Chart, Filler, LinearScale, LineController, LineElement, PointElement, Tooltip, DoughnutController, ArcElement, Legend } from 'chart.js';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, describeError, fmtDuration, fmtKbps, getAnalytics, getVideo, loadAppConfig, type Analytics, type Video } from '../api';
import { Link } from '../router';
import { ErrorBox, Spinner, StateBadge, useFilename } from '../ui';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Filler, Tooltip, DoughnutController, ArcElement, Legend);

const ACCENT = '#4f46e5';
const PALETTE = ['#4f46e5', '#0891b2', '#16a34a', '#d97706', '#db2777', '#7c3aed'];

function DropOffChart({ data }: { data: Analytics['dropOff'] }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const chart = new Chart(canvas.current!, {
      type: 'line',
      data: {
        labels: data.map((d) => `#${d.segment}`),
        datasets: [{ label: 'Viewers', data: data.map((d) => d.viewers), borderColor: ACCENT, backgroundColor: 'rgba(79,70,229,0.15)', fill: true, tension: 0.25, pointRadius: 3 }],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: 'sessions' } }, x: { title: { display: true, text: 'segment' } } },
      },
    });
    return () => chart.destroy();
  }, [data]);
  return <canvas ref={canvas} role="img" aria-label={`Viewers per segment: ${data.map((d) => `segment ${d.segment} ${d.viewers}`).join(', ')}`} />;
}

function BitrateChart({ data }: { data: Analytics['bitrateDistribution'] }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const sorted = [...data].sort((a, b) => a.bandwidth - b.bandwidth);
    const chart = new Chart(canvas.current!, {
      type: 'bar',
      data: {
        labels: sorted.map((d) => fmtKbps(d.bandwidth)),
        datasets: [{ label: 'Share', data: sorted.map((d) => Math.round(d.share * 1000) / 10), backgroundColor: sorted.map((_, i) => PALETTE[i % PALETTE.length]!) }],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: (c) => `${c.parsed.y}%` } } },
        scales: { y: { beginAtZero: true, max: 100, title: { display: true, text: '% of segments' } } },
      },
    });
    return () => chart.destroy();
  }, [data]);
  return <canvas ref={canvas} role="img" aria-label={`Bitrate distribution: ${data.map((d) => `${fmtKbps(d.bandwidth)} ${(d.share * 100).toFixed(1)}%`).join(', ')}`} />;
}

export function AnalyticsPage({ videoId }: { videoId: string }) {
  const [video, setVideo] = useState<Video | null>(null);
  const [a, setA] = useState<Analytics | null>(null);
  const [temporalUi, setTemporalUi] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const filename = useFilename(video);
  const [aError, setAError] = useState<string | null>(null);
  const load = () => {
    setError(null);
    setAError(null);
    getVideo(videoId)
      .then(setVideo)
      .catch((e: ApiError) => setError(e.code === 'VIDEO_NOT_FOUND' ? 'This video does not exist (or was deleted).' : describeError(e.code, e.message)));
    getAnalytics(videoId)
      .then(setA)
      .catch((e: ApiError) =>
        setAError(
          e.status === 501 ? 'Analytics are not available on this server yet.' : e.status === 503 ? 'The analytics store (ClickHouse) is not reachable right now.' : describeError(e.code, e.message),
        ),
      );
    loadAppConfig()
      .then((c) => setTemporalUi(c.temporalUiUrl))
      .catch(() => {});
  };
  useEffect(load, [videoId]);

  if (error)
    return (
      <section>
        <h1>Analytics</h1>
        <ErrorBox message={error} retry={load} />
      </section>
    );
  const workflowUrl = temporalUi ? `${temporalUi.replace(/\/$/, '')}/namespaces/default/workflows/video-${videoId}` : null;
  return (
    <section>
      <div class="page-head">
        <h1>
          Analytics <span class="muted">·</span> {filename ?? <code>{videoId}</code>}
        </h1>
        <div class="row">
          {video && <StateBadge state={video.state} />}
          <Link href={`/videos/${videoId}`} class="btn">
            Watch
          </Link>
          <button type="button" class="btn" onClick={load}>
            Refresh
          </button>
          {workflowUrl && (
            <a class="btn" href={workflowUrl} target="_blank" rel="noopener" data-testid="temporal-link">
              Workflow in Temporal ↗
            </a>
          )}
        </div>
      </div>
      {aError && <ErrorBox message={aError} retry={load} />}
      {!a && !aError && <Spinner label="Loading analytics" />}
      {a && (
        <>
          <div class="stats">
            <div class="stat card">
              <span class="stat-label">Views</span>
              <span class="stat-value" data-testid="views">
                {a.views}
              </span>
            </div>
            <div class="stat card">
              <span class="stat-label">Average watch time</span>
              <span class="stat-value" data-testid="avg-watch">
                {fmtDuration(a.averageWatchTimeSec)}
              </span>
            </div>
            <div class="stat card">
              <span class="stat-label">Duration</span>
              <span class="stat-value">{fmtDuration(video?.durationSec)}</span>
            </div>
          </div>
          {a.views === 0 ? (
            <div class="card empty">
              <h2>No views yet</h2>
              <p class="muted">Play the video and its sessions show up here within a few seconds.</p>
            </div>
          ) : (
            <div class="charts">
              <figure class="card chart">
                <figcaption>Drop-off: sessions that fetched each segment</figcaption>
                <div class="chart-box">{a.dropOff.length ? <DropOffChart data={a.dropOff} /> : <p class="muted">No segment data.</p>}</div>
              </figure>
              <figure class="card chart">
                <figcaption>Bitrate distribution</figcaption>
                <div class="chart-box">{a.bitrateDistribution.length ? <BitrateChart data={a.bitrateDistribution} /> : <p class="muted">No bitrate data.</p>}</div>
              </figure>
            </div>
          )}
        </>
      )}
    </section>
  );
}
