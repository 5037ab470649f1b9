// Varnish configuration of the playback entry (invalidation: src/common/playback-cache.ts).
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../common/config.ts';

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
