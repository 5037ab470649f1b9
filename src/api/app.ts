// createApi(deps): one HTTP server on one port. Requests to the tus verbs under /v1/uploads go
// straight to the tus handler (no body parser must touch them); everything else, including
// `GET /v1/uploads/{id}` (JSON status), goes to fastify. Errors from both leave through toHttpError().
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Client as TemporalClient } from '@temporalio/client';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import pg from 'pg';
import type { VoraConfig } from '../common/config.ts';
import { keys } from '../common/keys.ts';
import type { Logger } from '../common/log.ts';
import { loadApiOptions } from '../common/config.ts';
import type { ApiContext, ApiOptions } from './context.ts';
import { errorBody, toHttpError } from './errors.ts';
import { finalizeUpload, reconcile } from './finalize.ts';
import { abortStaleMultipartUploads, deleteKeys } from './objects.ts';
import * as repo from './repo.ts';
import { registerRoutes } from './routes.ts';
import { createTus, TUS_PATH, type TusHandle } from './tus.ts';
import { registerWeb } from './web.ts';
import { createMetrics, prom } from '../common/metrics.ts';

export interface ApiDeps {
  config: VoraConfig;
  pool: pg.Pool;
  s3: S3Client;
  temporal: TemporalClient;
  logger: Logger;
  /** Defaults from env (loadApiOptions); tests override single fields. */
  options?: Partial<ApiOptions>;
}

export interface Api {
  app: FastifyInstance;
  server: http.Server;
  /** Routes registered with fastify (method, url), in order; tus verbs are served beside them. */
  routes: { method: string; url: string }[];
  ctx: ApiContext;
  tus: TusHandle;
  /** Listens on host:port (default cfg.host:cfg.ports.api; 0 = any free port); returns the base URL. */
  listen(port?: number, host?: string): Promise<string>;
  /** Finish what a crash left (see finalize.ts); runs at listen() and every reconcileIntervalMs. */
  reconcile(): Promise<{ finalized: number; started: number }>;
  /** Expire unfinished uploads older than uploadExpiryMs; runs every sweepIntervalMs. */
  sweep(): Promise<{ expired: number; abortedMultipart: number }>;
  finalize(uploadId: string): ReturnType<typeof finalizeUpload>;
  close(): Promise<void>;
}

/** tus owns every verb under /v1/uploads except GET (which is our JSON status endpoint). */
export function isTusRequest(method: string | undefined, url: string | undefined): boolean {
  if (!url || method === 'GET') return false;
  const p = url.split('?', 1)[0]!;
  return p === TUS_PATH || p === `${TUS_PATH}/` || p.startsWith(`${TUS_PATH}/`);
}

export async function createApi(deps: ApiDeps): Promise<Api> {
  const opts: ApiOptions = { ...loadApiOptions(), ...deps.options };
  const log = deps.logger;
  let config = deps.config;
  if (!config.playbackSecret) {
    // Tokens signed with a per-process secret verify nowhere else: private videos will not play.
    log.warn('VORA_PLAYBACK_SECRET is not set: private videos get tokens no gateway accepts');
    config = { ...config, playbackSecret: randomBytes(32).toString('base64url') };
  }
  // Each held lock (upload PATCH/HEAD, finalize) keeps one connection while it runs.
  const lockPool = new pg.Pool({ connectionString: config.postgres.url, max: 64 });
  lockPool.on('error', () => {});
  const ctx: ApiContext = { cfg: config, pool: deps.pool, lockPool, s3: deps.s3, temporal: deps.temporal, log, opts, streamedDigests: new Map() };
  const tus = createTus(ctx);

  let fastifyHandler: http.RequestListener | null = null;
  const server = http.createServer((req, res) => {
    if (isTusRequest(req.method, req.url)) {
      tus.handle(req, res).catch((err) => {
        log.error({ err }, 'tus handler crashed');
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(errorBody('INTERNAL', 'internal error')));
      });
      return;
    }
    fastifyHandler!(req, res);
  });
  // Uploads are long requests: no request timeout (Node's default is 300 s); idle sockets still time out.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;

  const app = Fastify({
    loggerInstance: log as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    serverFactory: (handler) => {
      fastifyHandler = handler;
      return server;
    },
  });
  app.setErrorHandler((err, req, reply) => {
    const h = toHttpError(err);
    if (h.unexpected) req.log.error({ err }, 'request failed');
    void reply.status(h.status).type('application/json; charset=utf-8').send(errorBody(h.code, h.message));
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send(errorBody('NOT_FOUND', `no route for ${req.method} ${req.url.split('?')[0]}`));
  });
  // CORS for the REST side (tus sets its own): the web app may be served from another origin in dev.
  app.addHook('onRequest', async (req, reply) => {
    void reply.header('Access-Control-Allow-Origin', '*');
    if (req.method === 'OPTIONS') {
      return reply
        .status(204)
        .header('Access-Control-Allow-Methods', 'GET, DELETE, OPTIONS')
        .header('Access-Control-Allow-Headers', 'Content-Type, Authorization')
        .header('Access-Control-Max-Age', '86400')
        .send();
    }
  });
  // Prometheus /metrics: REST requests by route and status (the TUS verbs are served outside fastify).
  const metrics = createMetrics('api');
  const requests = new prom.Counter({ name: 'vora_api_requests_total', help: 'REST requests', labelNames: ['method', 'route', 'status'], registers: [metrics.registry] });
  app.addHook('onResponse', async (req, reply) => {
    requests.inc({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
  });
  app.get('/metrics', async (_req, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));
  // Every route fastify registers (the OpenAPI test checks each one is documented).
  const routes: { method: string; url: string }[] = [];
  ctx.routes = routes;
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) routes.push({ method: String(method), url: r.url });
  });
  registerRoutes(app, ctx);
  registerWeb(app, { config: deps.config }); // web app at / (web.ts), GET /v1/config

  const timers: NodeJS.Timeout[] = [];
  let running = true;
  const every = (ms: number, what: string, fn: () => Promise<unknown>) => {
    if (ms <= 0) return;
    const t = setInterval(() => {
      if (running) fn().catch((err) => log.warn({ err }, `${what} failed`));
    }, ms);
    t.unref();
    timers.push(t);
  };

  /**
   * Expiration sweeper (tus expiration extension). Unfinished uploads past their expiry become
   * EXPIRED in the table (a later PATCH/HEAD answers 410), and their multipart upload, .info and
   * .part objects are removed. Only under keys.uploadPrefix: S3Store.deleteExpired() would scan and
   * abort every multipart upload in the shared bucket.
   */
  async function sweep() {
    const { s3, cfg } = ctx;
    const expired = await repo.expireUploads(ctx.pool, opts.uploadExpiryMs);
    const stale = await abortStaleMultipartUploads(s3, cfg.s3.bucket, keys.uploadPrefix, new Date(Date.now() - opts.uploadExpiryMs));
    const tusIds = new Set([...expired.map((r) => r.object_key ?? `${keys.uploadPrefix}${r.upload_id}`), ...stale]);
    await deleteKeys(s3, cfg.s3.bucket, [...tusIds].flatMap((k) => [k, `${k}.info`, `${k}.part`]));
    if (tusIds.size) log.info({ expired: expired.length, abortedMultipart: stale.length }, 'expired unfinished uploads');
    return { expired: expired.length, abortedMultipart: stale.length };
  }

  const api: Api = {
    app,
    server,
    routes,
    ctx,
    tus,
    async listen(port = config.ports.api, host = config.host) {
      await app.listen({ port, host });
      const addr = server.address() as import('node:net').AddressInfo;
      reconcile(ctx).catch((err) => log.warn({ err }, 'startup reconcile failed'));
      every(opts.reconcileIntervalMs, 'reconcile', () => reconcile(ctx));
      every(opts.sweepIntervalMs, 'expiration sweep', sweep);
      return `http://${host}:${addr.port}`;
    },
    reconcile: () => reconcile(ctx),
    sweep,
    finalize: (uploadId) => finalizeUpload(ctx, uploadId),
    async close() {
      running = false;
      for (const t of timers) clearInterval(t);
      server.closeAllConnections?.();
      await app.close();
      await tus.close();
      await lockPool.end();
    },
  };
  return api;
}
