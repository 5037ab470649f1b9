// Live video status. Built for the gateway's WebSocket (`{gatewayWsUrl}/v1/live`): one
// `{"type":"subscribe","videoId"}` per video, and the server pushes `{"type":"video","video"}` on
// subscribe and on every change. While the socket cannot connect, subscribed videos are refreshed
// over REST every 2 s instead, and the socket is retried with backoff.
import { getVideo, loadAppConfig, TERMINAL, type Video } from './api';

type Listener = (v: Video) => void;

export type LiveMode = 'connecting' | 'socket' | 'polling';

class Live {
  private listeners = new Map<string, Set<Listener>>();
  private ws: WebSocket | null = null;
  private backoff = 1000;
  private pollTimer: number | null = null;
  private reconnectTimer: number | null = null;
  mode: LiveMode = 'connecting';
  private modeListeners = new Set<(m: LiveMode) => void>();

  onMode(fn: (m: LiveMode) => void): () => void {
    this.modeListeners.add(fn);
    fn(this.mode);
    return () => this.modeListeners.delete(fn);
  }

  private setMode(m: LiveMode) {
    if (this.mode === m) return;
    this.mode = m;
    for (const fn of this.modeListeners) fn(m);
    if (m === 'polling') this.startPolling();
    else this.stopPolling();
  }

  subscribe(videoId: string, fn: Listener): () => void {
    let set = this.listeners.get(videoId);
    if (!set) {
      set = new Set();
      this.listeners.set(videoId, set);
      this.sendSubscribe(videoId);
    }
    set.add(fn);
    this.ensureSocket();
    if (this.mode === 'polling') void this.pollOne(videoId);
    return () => {
      set!.delete(fn);
      if (!set!.size) {
        this.listeners.delete(videoId);
        if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: 'unsubscribe', videoId }));
      }
    };
  }

  private emit(v: Video) {
    for (const fn of this.listeners.get(v.videoId) ?? []) fn(v);
  }

  private sendSubscribe(videoId: string) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: 'subscribe', videoId }));
  }

  private ensureSocket() {
    if (this.ws || this.reconnectTimer !== null) return;
    void loadAppConfig()
      .then((cfg) => this.connect(`${cfg.gatewayWsUrl.replace(/\/$/, '')}/v1/live`))
      .catch(() => this.failed());
  }

  private connect(url: string) {
    let opened = false;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch {
      this.failed();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      opened = true;
      this.backoff = 1000;
      this.setMode('socket');
      for (const id of this.listeners.keys()) ws.send(JSON.stringify({ type: 'subscribe', videoId: id }));
    };
    ws.onmessage = (ev) => {
      try {
        const msg = JSON.parse(String(ev.data)) as { type?: string; video?: Video };
        if (msg.type === 'video' && msg.video?.videoId) this.emit(msg.video);
      } catch {
        /* ignore malformed */
      }
    };
    ws.onclose = () => {
      this.ws = null;
      if (!opened) this.failed();
      else this.scheduleReconnect();
    };
  }

  private failed() {
    this.ws = null;
    this.setMode('polling');
    this.scheduleReconnect();
  }

  private scheduleReconnect() {
    if (this.reconnectTimer !== null) return;
    if (!this.listeners.size) return;
    if (this.mode === 'socket') this.setMode('polling');
    this.reconnectTimer = window.setTimeout(() => {
      this.reconnectTimer = null;
      this.ensureSocket();
    }, this.backoff);
    this.backoff = Math.min(this.backoff * 2, 30_000);
  }

  private startPolling() {
    if (this.pollTimer !== null) return;
    const tick = async () => {
      await Promise.all([...this.listeners.keys()].map((id) => this.pollOne(id)));
      if (this.mode === 'polling') this.pollTimer = window.setTimeout(tick, 2000);
      else this.pollTimer = null;
    };
    this.pollTimer = window.setTimeout(tick, 2000);
  }

  private stopPolling() {
    if (this.pollTimer !== null) clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }

  private last = new Map<string, string>();
  private async pollOne(id: string) {
    try {
      const v = await getVideo(id);
      const sig = JSON.stringify([v.state, v.updatedAt, v.renditions.map((r) => r.state)]);
      if (this.last.get(id) === sig && TERMINAL.has(v.state)) return;
      this.last.set(id, sig);
      this.emit(v);
    } catch {
      /* keep the last known state */
    }
  }
}

export const live = new Live();
