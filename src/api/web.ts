// The web app (web/, built by Vite into web/dist) on the API's port: static files at /, the SPA's
// index.html for any other GET that is not an API path, and GET /v1/config for the URLs the app
// needs (playback entry, gateway WebSocket, Temporal Web UI). The build is looked up per request,
// so a `vite build` while the API runs is picked up; a missing build answers 503 with how to make it.
import fs from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { REPO_ROOT, type VoraConfig } from '../common/config.ts';
import { errorBody } from './errors.ts';

export const WEB_DIST = path.join(REPO_ROOT, 'web', 'dist');

export interface WebOptions {
  config: VoraConfig;
  /** Directory of the built app (default web/dist). */
  root?: string;
}

/** Paths the SPA must never answer: the API's own namespace and the health check. */
export function isApiPath(urlPath: string): boolean {
  return urlPath === '/v1' || urlPath.startsWith('/v1/') || urlPath === '/healthz' || urlPath.startsWith('/hls/');
}

export function webConfig(cfg: VoraConfig) {
  return {
    playbackUrl: cfg.playbackUrl.replace(/\/+$/, ''),
    gatewayWsUrl: cfg.gatewayUrl.replace(/\/+$/, '').replace(/^http(s?):/, 'ws$1:'),
    temporalUiUrl: cfg.temporal.uiUrl.replace(/\/+$/, ''),
  };
}

export function registerWeb(app: FastifyInstance, opts: WebOptions): void {
  const root = opts.root ?? WEB_DIST;
  const body = webConfig(opts.config);
  app.get('/v1/config', async (_req, reply) => reply.header('Cache-Control', 'no-cache').send(body));

  // reply.sendFile only (serve: false): the catch-all route below decides what each path gets.
  void app.register(fastifyStatic, { root, serve: false, index: false, wildcard: false });

  app.get('/*', async (req, reply) => {
    const urlPath = decodeURIComponent(req.url.split('?', 1)[0]!);
    if (isApiPath(urlPath)) return reply.status(404).send(errorBody('NOT_FOUND', `no route for ${req.method} ${urlPath}`));
    if (!fs.existsSync(path.join(root, 'index.html'))) {
      return reply
        .status(503)
        .type('text/plain; charset=utf-8')
        .send('The web app is not built. Run `npx vite build web` (scripts/bootstrap.sh does it) and reload.\n');
    }
    const rel = path.normalize(urlPath).replace(/^(\.\.(\/|\\|$))+/, '').replace(/^\/+/, '');
    const file = path.join(root, rel);
    if (rel && file.startsWith(root + path.sep) && fs.statSync(file, { throwIfNoEntry: false })?.isFile()) {
      // Vite's hashed assets never change; everything else is revalidated.
      if (rel.startsWith('assets/')) return reply.sendFile(rel, { maxAge: 31_536_000_000, immutable: true });
      return reply.header('Cache-Control', 'no-cache').sendFile(rel, { cacheControl: false });
    }
    // A missing file with an extension (an old asset, a typo) is a 404, not the app.
    if (/\.[a-z0-9]+$/i.test(path.basename(rel))) return reply.status(404).type('text/plain; charset=utf-8').send('not found\n');
    return reply.header('Cache-Control', 'no-cache').sendFile('index.html', { cacheControl: false });
  });
}
