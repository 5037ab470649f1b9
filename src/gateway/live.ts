// Live video status over WebSocket: ws://{gateway}/v1/live.
//
// Protocol (the web app's web/src/live.ts speaks it):
//   client -> {"type":"subscribe","videoId":"vid_..."}    (several per socket)
//   client -> {"type":"unsubscribe","videoId":"vid_..."}
//   server -> {"type":"video","video":{...}}              on subscribe and on every change; `video`
//             is exactly GET /v1/videos/{id} (loadVideoView), except that a private video's URLs
//             carry no playback token (the socket is not authenticated: tokens come from the API)
//   server -> {"type":"error","code":"...","message":"...","videoId"?}
//             BAD_MESSAGE, UNKNOWN_TYPE, BAD_VIDEO_ID, TOO_MANY_SUBSCRIPTIONS, VIDEO_NOT_FOUND (the
//             subscription stays: the video is pushed once it exists), UNAVAILABLE (metadata store
//             down; retried)
//
// Changes come from PostgreSQL: migration 010's triggers NOTIFY `vora_video` with the video id on
// every change of `videos` or `renditions`. One dedicated client LISTENs (reconnecting with backoff;
// after a reconnect every subscribed video is re-read, since notifications sent meanwhile are lost).
// Notifications for one video within `coalesceMs` become one read and at most one push; reads of
// one video never overlap, so pushes are in order. Each video is a uWS pub/sub topic.
import pg from 'pg';
import uWS, { type TemplatedApp, type WebSocket } from 'uWebSockets.js';
import type { VoraConfig } from '../common/config.ts';
import { ID_RE } from '../common/keys.ts';
import type { Logger } from '../common/log.ts';
import { loadVideoView, type VideoView } from '../common/video-view.ts';

export const LIVE_PATH = '/v1/live';
export const LIVE_CHANNEL = 'vora_video';

export type LiveErrorCode = 'BAD_MESSAGE' | 'UNKNOWN_TYPE' | 'BAD_VIDEO_ID' | 'TOO_MANY_SUBSCRIPTIONS' | 'VIDEO_NOT_FOUND' | 'UNAVAILABLE';

interface SocketData {
  subs: Set<string>;
  closed: boolean;
}
type Ws = WebSocket<SocketData>;

interface Entry {
  subscribers: Set<Ws>;
  timer: NodeJS.Timeout | null;
  loading: boolean;
  dirty: boolean;
  /** The last message published on the topic (what every subscriber has seen last). */
  last: string | null;
  /** New subscribers waiting for their first message. */
  waiting: Set<Ws>;
}

export interface LiveOptions {
  cfg: Pick<VoraConfig, 'playbackUrl' | 'playbackSecret' | 'postgres'>;
  /** For loadVideoView. */
  db: Pick<pg.Pool, 'query'>;
  log: Pick<Logger, 'info' | 'warn' | 'error'>;
  coalesceMs?: number;
  maxSubscriptionsPerSocket?: number;
  /** Called for every notified video (subscribed or not): the gateway drops its cached state. */
  onChange?: (videoId: string) => void;
  /** Reads the pushed view; default loadVideoView(db, cfg, id). */
  loadView?: (videoId: string) => Promise<VideoView | null>;
}

export interface LiveStats {
  sockets: number;
  subscriptions: number;
  videos: number;
  listening: boolean;
  notifications: number;
  pushes: number;
  listenerReconnects: number;
}

export interface LiveHub {
  stats(): LiveStats;
  close(): Promise<void>;
}

const topicOf = (videoId: string) => `video/${videoId}`;
const isVideoId = (s: unknown): s is string => typeof s === 'string' && ID_RE.test(s) && s.startsWith('vid_');

/** The pushed view: a private video's URLs lose their `?token=` (the socket has no owner check). */
export function liveView(view: VideoView): VideoView {
  if (!view.private) return view;
  const strip = (u: string | null) => (u === null ? null : u.replace(/[?&]token=[^&#]*/, '').replace(/\?$/, ''));
  return { ...view, playbackUrl: strip(view.playbackUrl), thumbnailUrl: strip(view.thumbnailUrl) };
}

const errorMsg = (code: LiveErrorCode, message: string, videoId?: string) =>
  JSON.stringify({ type: 'error', code, message, ...(videoId ? { videoId } : {}) });

export function attachLive(app: TemplatedApp, o: LiveOptions): LiveHub {
  const coalesceMs = o.coalesceMs ?? 100;
  const maxSubs = o.maxSubscriptionsPerSocket ?? 200;
  const loadView = o.loadView ?? ((id: string) => loadVideoView(o.db, o.cfg, id));
  const videos = new Map<string, Entry>();
  let sockets = 0;
  let subscriptions = 0;
  const counters = { notifications: 0, pushes: 0, listenerReconnects: 0 };
  let stopped = false;
  let wake: () => void = () => {};
  const stoppedP = new Promise<void>((r) => (wake = r));
  const pause = (ms: number) => Promise.race([new Promise((r) => setTimeout(r, ms)), stoppedP]);
  let listener: pg.Client | null = null;
  let listening = false;

  const send = (ws: Ws, msg: string) => {
    if (ws.getUserData().closed) return;
    ws.cork(() => ws.send(msg, false));
  };

  function schedule(videoId: string, delay: number): void {
    const e = videos.get(videoId);
    if (!e || stopped) return;
    if (e.loading) {
      e.dirty = true;
      return;
    }
    if (e.timer) return;
    e.timer = setTimeout(() => void refresh(videoId), delay);
  }

  async function refresh(videoId: string): Promise<void> {
    const e = videos.get(videoId);
    if (!e) return;
    e.timer = null;
    e.loading = true;
    e.dirty = false;
    let msg: string;
    try {
      const view = await loadView(videoId);
      msg = view ? JSON.stringify({ type: 'video', video: liveView(view) }) : errorMsg('VIDEO_NOT_FOUND', `no video ${videoId}`, videoId);
    } catch (err) {
      o.log.warn({ err: String(err), videoId }, 'live: cannot read video');
      e.loading = false;
      for (const ws of e.waiting) send(ws, errorMsg('UNAVAILABLE', 'metadata store unavailable; retrying', videoId));
      e.waiting.clear();
      schedule(videoId, 1_000);
      return;
    }
    e.loading = false;
    if (stopped || videos.get(videoId) !== e) return;
    if (msg !== e.last) {
      e.last = msg;
      counters.pushes++;
      app.publish(topicOf(videoId), msg, false);
    } else {
      for (const ws of e.waiting) send(ws, msg);
    }
    e.waiting.clear();
    if (e.dirty) schedule(videoId, coalesceMs);
  }

  function subscribe(ws: Ws, videoId: string): void {
    const d = ws.getUserData();
    if (d.subs.has(videoId)) return;
    if (d.subs.size >= maxSubs) return send(ws, errorMsg('TOO_MANY_SUBSCRIPTIONS', `at most ${maxSubs} videos per socket`, videoId));
    d.subs.add(videoId);
    subscriptions++;
    ws.subscribe(topicOf(videoId));
    let e = videos.get(videoId);
    if (!e) videos.set(videoId, (e = { subscribers: new Set(), timer: null, loading: false, dirty: false, last: null, waiting: new Set() }));
    e.subscribers.add(ws);
    // Up to date (nothing pending): the last published message is the current state.
    if (e.last !== null && !e.loading && !e.timer) return send(ws, e.last);
    e.waiting.add(ws);
    schedule(videoId, 0);
  }

  function unsubscribe(ws: Ws, videoId: string, closing = false): void {
    const d = ws.getUserData();
    if (!d.subs.delete(videoId)) return;
    subscriptions--;
    if (!closing) ws.unsubscribe(topicOf(videoId));
    const e = videos.get(videoId);
    if (!e) return;
    e.subscribers.delete(ws);
    e.waiting.delete(ws);
    if (e.subscribers.size === 0) {
      if (e.timer) clearTimeout(e.timer);
      videos.delete(videoId);
    }
  }

  app.ws<SocketData>(LIVE_PATH, {
    compression: uWS.DISABLED,
    maxPayloadLength: 4 * 1024,
    maxBackpressure: 1024 * 1024,
    idleTimeout: 120, // uWS pings idle sockets itself (sendPingsAutomatically)
    upgrade: (res, req, context) => {
      res.upgrade<SocketData>(
        { subs: new Set(), closed: false },
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    open: () => {
      sockets++;
    },
    message: (ws, ab, isBinary) => {
      let m: { type?: unknown; videoId?: unknown };
      try {
        if (isBinary) throw new Error('binary');
        m = JSON.parse(Buffer.from(ab).toString('utf8'));
        if (!m || typeof m !== 'object') throw new Error('not an object');
      } catch {
        return send(ws, errorMsg('BAD_MESSAGE', 'messages are JSON objects: {"type":"subscribe"|"unsubscribe","videoId":"vid_..."}'));
      }
      if (m.type !== 'subscribe' && m.type !== 'unsubscribe') {
        return send(ws, errorMsg('UNKNOWN_TYPE', 'type must be "subscribe" or "unsubscribe"'));
      }
      if (!isVideoId(m.videoId)) {
        return send(ws, errorMsg('BAD_VIDEO_ID', 'videoId must look like vid_ + 20 base32 characters'));
      }
      if (m.type === 'subscribe') subscribe(ws, m.videoId);
      else unsubscribe(ws, m.videoId);
    },
    close: (ws) => {
      sockets--;
      const d = ws.getUserData();
      d.closed = true;
      for (const id of [...d.subs]) unsubscribe(ws, id, true);
    },
  });

  // --- LISTEN vora_video on one dedicated client ---------------------------------------------------
  async function listen(): Promise<void> {
    let backoff = 250;
    let first = true;
    while (!stopped) {
      const c = new pg.Client({ connectionString: o.cfg.postgres.url, keepAlive: true, application_name: 'vora-gateway-live' });
      const ended = new Promise<void>((resolve) => {
        c.once('end', resolve);
        c.on('error', (err) => {
          if (!stopped) o.log.warn({ err: String(err) }, 'live: listener connection lost');
          resolve();
        });
      });
      c.on('notification', (n) => {
        if (n.channel !== LIVE_CHANNEL || !n.payload) return;
        counters.notifications++;
        o.onChange?.(n.payload);
        schedule(n.payload, coalesceMs);
      });
      try {
        await c.connect();
        await c.query(`LISTEN ${LIVE_CHANNEL}`);
      } catch (err) {
        c.end().catch(() => {});
        if (stopped) return;
        o.log.warn({ err: String(err), retryInMs: backoff }, 'live: cannot LISTEN; retrying');
        await pause(backoff);
        backoff = Math.min(backoff * 2, 10_000);
        continue;
      }
      if (stopped) {
        await c.end().catch(() => {});
        return;
      }
      listener = c;
      listening = true;
      backoff = 250;
      if (!first) {
        counters.listenerReconnects++;
        o.log.info({ videos: videos.size }, 'live: listening again; re-reading subscribed videos');
        for (const id of videos.keys()) {
          o.onChange?.(id);
          schedule(id, 0);
        }
      }
      first = false;
      await ended;
      listening = false;
      listener = null;
      c.end().catch(() => {});
      if (!stopped) await pause(100);
    }
  }
  const loop = listen();

  return {
    stats: () => ({ sockets, subscriptions, videos: videos.size, listening, ...counters }),
    async close() {
      stopped = true;
      wake();
      for (const e of videos.values()) if (e.timer) clearTimeout(e.timer);
      await listener?.end().catch(() => {});
      await loop.catch(() => {});
    },
  };
}
