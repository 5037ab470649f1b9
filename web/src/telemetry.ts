// Playback events (docs/contract.md) batched to `${playbackUrl}/v1/events`. Nothing here waits on the
// network before playback does anything: events are queued, flushed every 5 s or at 20 events with
// a fire-and-forget fetch (keepalive), and with navigator.sendBeacon when the page is hidden.
// Bodies are sent as text/plain (a CORS-simple request, no preflight); the gateway parses JSON.

export type EventType = 'play' | 'pause' | 'segment_fetched' | 'watch_time' | 'bitrate_selected' | 'rebuffer' | 'error';

interface PlaybackEvent {
  videoId: string;
  sessionId: string;
  type: EventType;
  ts: number;
  segment?: number;
  bandwidth?: number;
  watchTimeSec?: number;
  positionSec?: number;
}

function newSessionId(): string {
  const r = crypto.getRandomValues(new Uint8Array(12));
  return `s-${Date.now().toString(36)}-${Array.from(r, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

export class Telemetry {
  readonly sessionId = newSessionId();
  private queue: PlaybackEvent[] = [];
  private timer: number;
  private readonly endpoint: string;
  sent = 0;

  constructor(
    playbackUrl: string,
    private readonly videoId: string,
  ) {
    this.endpoint = `${playbackUrl.replace(/\/$/, '')}/v1/events`;
    this.timer = window.setInterval(() => this.flush(), 5000);
    document.addEventListener('visibilitychange', this.onHide);
    window.addEventListener('pagehide', this.onPageHide);
  }

  track(type: EventType, extra: Omit<Partial<PlaybackEvent>, 'type' | 'videoId' | 'sessionId' | 'ts'> = {}): void {
    const e: PlaybackEvent = { videoId: this.videoId, sessionId: this.sessionId, type, ts: Date.now() };
    for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== null && Number.isFinite(v as number)) (e as any)[k] = v;
    this.queue.push(e);
    if (this.queue.length >= 20) this.flush();
  }

  /** Sends what is queued without waiting for an answer. beacon: for page hide/unload. */
  flush(beacon = false): void {
    if (!this.queue.length) return;
    const batch = this.queue.splice(0, 1000);
    const body = JSON.stringify(batch);
    this.sent += batch.length;
    if (beacon && navigator.sendBeacon?.(this.endpoint, new Blob([body], { type: 'text/plain' }))) return;
    fetch(this.endpoint, { method: 'POST', body, keepalive: body.length < 60_000, headers: { 'Content-Type': 'text/plain' } }).catch(() => {
      /* analytics are best effort */
    });
  }

  private onHide = () => {
    if (document.visibilityState === 'hidden') this.flush(true);
  };
  private onPageHide = () => this.flush(true);

  close(): void {
    this.flush(true);
    clearInterval(this.timer);
    document.removeEventListener('visibilitychange', this.onHide);
    window.removeEventListener('pagehide', this.onPageHide);
  }
}
