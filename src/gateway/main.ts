// Streaming gateway: the uWebSockets.js origin behind Varnish. Serves HLS objects from MinIO for
// READY/PARTIALLY_READY videos (hls-route.ts) and takes playback events for ClickHouse
// (events-route.ts); this file wires them, the live WebSocket and the metrics.
//   node --import tsx src/gateway/main.ts     (config from VORA_* variables, see src/common/config.ts)
//
// How responses are written (uWS rules: onAborted before any await, cork, tryEnd): respond.ts.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { S3Client } from '@aws-sdk/client-s3';
import uWS, { type us_listen_socket, type us_socket } from 'uWebSockets.js';
import { loadConfig, type VoraConfig } from '../common/config.ts';
import { createPool, type Pool } from '../common/db.ts';
import { keys } from '../common/keys.ts';
import { createLogger, type Logger } from '../common/log.ts';
import { createMetrics, type Metrics } from '../common/metrics.ts';
import { EventBuffer } from '../analytics/buffer.ts';
import { clickhouseSink, createClickhouse } from '../analytics/clickhouse.ts';
import { eventsRoute } from './events-route.ts';
import { hlsRoute } from './hls-route.ts';
import { PREFLIGHT_HEADERS } from './http.ts';
import { attachLive, type LiveHub } from './live.ts';
import { gatewayMetrics } from './metrics.ts';
import { DEFAULT_OBJECT_CACHE, ObjectCache, type ObjectCacheOptions } from './object-cache.ts';
import { createOriginS3 } from './origin-s3.ts';
import { BodyWriter, newCtx, send, sendError } from './respond.ts';
import { cachedStateLookup, pgStateLookup, type StateLookup } from './state.ts';

export interface GatewayOptions {
  log?: Logger;
  /** Defaults: PostgreSQL pool / S3 client / EventBuffer into ClickHouse, all from cfg. */
  stateLookup?: StateLookup;
  s3?: S3Client;
  buffer?: EventBuffer;
  /** Port override (0 = any free port, for tests); default cfg.ports.gateway. */
  port?: number;
  /**
   * Live status WebSocket (/v1/live, live.ts): needs PostgreSQL. Default: on unless a fake
   * stateLookup is given (unit tests without a database).
   */
  live?: boolean;
  /** Coalescing window of live pushes per video; default 100 ms. */
  liveCoalesceMs?: number;
  /** Prometheus registry to register on; default a new one (createMetrics('gateway')). */
  metrics?: Metrics;
  /** Hot-object cache bounds; default cfg.gatewayCache (maxBytes 0 turns it off). */
  objectCache?: ObjectCacheOptions;
}

export interface Gateway {
  port: number;
  buffer: EventBuffer;
  metrics: Metrics;
  live: LiveHub | null;
  objects: ObjectCache;
  /** Stops accepting, lets running responses finish (up to drainMs), flushes events, closes clients. */
  close(drainMs?: number): Promise<void>;
}

export async function startGateway(cfg: VoraConfig, opts: GatewayOptions = {}): Promise<Gateway> {
  const log = opts.log ?? createLogger('gateway', cfg.logLevel);
  const liveOn = opts.live ?? !opts.stateLookup;
  let pool: Pool | null = null;
  if (!opts.stateLookup || liveOn) pool = createPool(cfg, 5);
  const cachedState = opts.stateLookup ? null : cachedStateLookup(pgStateLookup(pool!));
  const metrics = opts.metrics ?? createMetrics('gateway');
  // The lean signed-HTTP client for the hot path (origin-s3.ts); tests may pass the SDK or a fake.
  const s3 = opts.s3 ?? (createOriginS3(cfg) as unknown as S3Client);
  const ch = opts.buffer ? null : createClickhouse(cfg);
  const buffer =
    opts.buffer ??
    new EventBuffer({ sink: clickhouseSink(ch!, cfg.clickhouse.database), spoolDir: path.join(cfg.dataDir, 'spool'), log });
  buffer.start();
  const objects = new ObjectCache(opts.objectCache ?? cfg.gatewayCache ?? DEFAULT_OBJECT_CACHE);
  const bodies = new BodyWriter(log);

  const app = uWS.App();
  const live = liveOn
    ? attachLive(app, { cfg, db: pool!, log, coalesceMs: opts.liveCoalesceMs, onChange: (id) => {
          cachedState?.invalidate(id);
          objects.deletePrefix(keys.hlsPrefix(id));
        },
      })
    : null;
  const m = gatewayMetrics(metrics, { objects: () => objects.stats(), buffer: () => buffer.stats(), live: () => live?.stats() ?? null });
  const hls = hlsRoute({
    bucket: cfg.s3.bucket,
    playbackSecret: cfg.playbackSecret,
    stateOf: opts.stateLookup ?? cachedState!,
    s3,
    objects,
    bodies,
    log,
    track: m.track,
    timed: m.timed,
  });
  app
    .get('/healthz', (res) => {
      const ctx = newCtx(res);
      send(res, ctx, 200, [['Content-Type', 'application/json'], ['Cache-Control', 'no-store']], JSON.stringify({ status: 'ok', hls: hls.counters, objectCache: objects.stats(), events: buffer.stats(), live: live?.stats() ?? null }));
    })
    .get('/metrics', (res) => {
      const ctx = m.track(res, 'metrics');
      metrics.metrics().then(
        (text) => send(res, ctx, 200, [['Content-Type', metrics.contentType], ['Cache-Control', 'no-store']], text),
        (err) => sendError(res, ctx, 'INTERNAL', String(err)),
      );
    })
    .head('/healthz', (res) => {
      res.cork(() => res.writeStatus('200 OK').writeHeader('Content-Length', '0').endWithoutBody());
    })
    .get('/hls/*', (res, req) => void hls.serve(res, req, false))
    .head('/hls/*', (res, req) => void hls.serve(res, req, true))
    .post('/v1/events', eventsRoute(buffer, m.track))
    .options('/*', (res) => {
      const ctx = newCtx(res);
      send(res, ctx, 204, PREFLIGHT_HEADERS);
    })
    .any('/hls/*', (res) => {
      sendError(res, newCtx(res), 'METHOD_NOT_ALLOWED', 'use GET or HEAD', [['Allow', 'GET, HEAD, OPTIONS']]);
    })
    .any('/v1/events', (res) => {
      sendError(res, newCtx(res), 'METHOD_NOT_ALLOWED', 'use POST', [['Allow', 'POST, OPTIONS']]);
    })
    .any('/*', (res) => {
      sendError(res, newCtx(res), 'NOT_FOUND', 'no such route');
    });

  const wantPort = opts.port ?? cfg.ports.gateway;
  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(cfg.host, wantPort, (ls) => {
      if (ls) resolve(ls);
      else reject(new Error(`gateway cannot listen on ${cfg.host}:${wantPort} (port taken? set VORA_GATEWAY_PORT)`));
    });
  });
  const port = uWS.us_socket_local_port(listenSocket as unknown as us_socket);
  log.info({ host: cfg.host, port }, 'gateway listening');

  let closing: Promise<void> | null = null;
  return {
    port,
    buffer,
    metrics,
    live,
    objects,
    close(drainMs = 5_000) {
      closing ??= (async () => {
        uWS.us_listen_socket_close(listenSocket);
        await live?.close();
        const until = Date.now() + drainMs;
        while (bodies.active > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
        app.close(); // drops idle keep-alive connections, which would otherwise hold the process
        await buffer.close();
        await Promise.allSettled([ch?.close(), pool?.end()]);
        if (!opts.s3) s3.destroy();
        log.info({ events: buffer.stats() }, 'gateway stopped');
      })();
      return closing;
    },
  };
}

async function main(): Promise<void> {
  const cfg = loadConfig();
  const log = createLogger('gateway', cfg.logLevel);
  const gw = await startGateway(cfg, { log });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    gw.close().then(
      () => process.exit(0),
      (err) => {
        log.error({ err: String(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
