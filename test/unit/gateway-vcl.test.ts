import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { VCL_TEMPLATE_PATH, renderVcl } from '../../src/gateway/vcl.ts';

describe('renderVcl', () => {
  it('substitutes the gateway backend and nothing else', () => {
    const template = fs.readFileSync(VCL_TEMPLATE_PATH, 'utf8');
    expect(template).toMatch(/\.host = "127\.0\.0\.1"; # @gateway-host/);
    expect(template).toMatch(/\.port = "8081"; # @gateway-port/);
    const out = renderVcl({ gatewayHost: '10.1.2.3', gatewayPort: 18081 });
    expect(out).toContain('.host = "10.1.2.3"; # @gateway-host');
    expect(out).toContain('.port = "18081"; # @gateway-port');
    expect(out).not.toContain('"8081"');
    // Only the two backend lines differ.
    const a = template.split('\n');
    const b = out.split('\n');
    expect(b.length).toBe(a.length);
    expect(a.filter((l, i) => l !== b[i]).length).toBe(2);
    expect(out.startsWith('vcl 4.1;')).toBe(true);
  });
  it('keeps the policies the playback entry relies on', () => {
    const out = renderVcl({ gatewayHost: '127.0.0.1', gatewayPort: 8081 });
    expect(out).toMatch(/\.url = "\/healthz"/);
    expect(out).toMatch(/beresp\.grace = 6h/);
    expect(out).toMatch(/X-Cache = "HIT"/);
    expect(out).toMatch(/req\.url ~ "\^\/v1\/events"[\s\S]*?return \(pass\)/);
    expect(out).toMatch(/acl purgers/);
  });
  it('rejects values that would break or inject into the VCL', () => {
    expect(() => renderVcl({ gatewayHost: 'a"; }', gatewayPort: 1 })).toThrow(/host/);
    expect(() => renderVcl({ gatewayHost: '127.0.0.1', gatewayPort: 0 })).toThrow(/port/);
    expect(() => renderVcl({ gatewayHost: '127.0.0.1', gatewayPort: 70000 })).toThrow(/port/);
    expect(() => renderVcl({ gatewayHost: '127.0.0.1', gatewayPort: 1 }, 'vcl 4.1;')).toThrow(/@gateway-host/);
  });
  it.skipIf(!fs.existsSync('/usr/sbin/varnishd'))('compiles with varnishd -C', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vcl-'));
    fs.chmodSync(dir, 0o755); // varnishd (as root) reads the file as its unprivileged user
    const file = path.join(dir, 'x.vcl');
    fs.writeFileSync(file, renderVcl({ gatewayHost: '127.0.0.1', gatewayPort: 18081 }));
    const r = spawnSync('/usr/sbin/varnishd', ['-C', '-f', file, '-n', path.join(dir, 'n')], { encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(r.status, r.stderr.slice(0, 2000)).toBe(0);
    expect(r.stdout + r.stderr).toContain('18081');
  });
});
