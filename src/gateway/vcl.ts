// Varnish configuration and cache invalidation for the playback entry.
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../common/config.ts';
import { ID_RE } from '../common/keys.ts';

export const VCL_TEMPLATE_PATH = path.join(REPO_ROOT, 'varnish', 'default.vcl');

export interface VclParams {
  gatewayHost: string;
  gatewayPort: number;
}

/**
 * varnish/default.vcl with the gateway backend substituted. The template marks its two backend
 * lines (`# @gateway-host`, `# @gateway-port`); both must be found, so a template edit that loses
 * a marker fails here instead of silently pointing Varnish at 8081.
 */
export function renderVcl(p: VclParams, template = fs.readFileSync(VCL_TEMPLATE_PATH, 'utf8')): string {
  if (!/^[A-Za-z0-9.:-]+$/.test(p.gatewayHost) || p.gatewayHost.length > 253) {
    throw new Error(`invalid gateway host for VCL: ${JSON.stringify(p.gatewayHost)}`);
  }
  if (!Number.isInteger(p.gatewayPort) || p.gatewayPort < 1 || p.gatewayPort > 65535) {
    throw new Error(`invalid gateway port for VCL: ${p.gatewayPort}`);
  }
  let hosts = 0;
  let ports = 0;
  const out = template
    .replace(/\.host = "[^"]*";(\s*# @gateway-host)/g, (_m, marker: string) => {
      hosts++;
      return `.host = "${p.gatewayHost}";${marker}`;
    })
    .replace(/\.port = "[^"]*";(\s*# @gateway-port)/g, (_m, marker: string) => {
      ports++;
      return `.port = "${p.gatewayPort}";${marker}`;
    });
  if (hosts !== 1 || ports !== 1) throw new Error('VCL template lacks the @gateway-host/@gateway-port backend lines');
  return out;
}

/**
 * Drops every cached object of a video from Varnish (BAN on its /hls/{videoId}/ prefix, allowed
 * from localhost only). For DELETE /v1/videos/{id} and re-processing. `playbackUrl` is
 * cfg.playbackUrl.
 */
export async function banVideoCache(playbackUrl: string, videoId: string): Promise<void> {
  if (!ID_RE.test(videoId)) throw new Error(`not a video id: ${videoId}`);
  const res = await fetch(new URL(`/hls/${videoId}/`, playbackUrl), { method: 'BAN' });
  if (!res.ok) throw new Error(`varnish BAN failed: ${res.status} ${await res.text()}`);
}

/** Drops one cached URL (e.g. a master playlist rewritten when a rendition finishes). */
export async function purgeCachedUrl(playbackUrl: string, urlPath: string): Promise<void> {
  const res = await fetch(new URL(urlPath, playbackUrl), { method: 'PURGE' });
  if (!res.ok) throw new Error(`varnish PURGE failed: ${res.status} ${await res.text()}`);
}
