// docker/ must describe the same stack as the local one: the same VORA_* variables and defaults as
// src/common/config.ts, the same ports, the same service split, no secrets in the repo, and an app
// image whose FFmpeg runtime matches what the native module is built against. Nothing is built or
// started here (no Docker engine is needed): the files are parsed and cross-checked.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PORT_VARS, REPO_ROOT, loadConfig, type PortName } from '../../src/common/config.ts';
import { appNodeArgs } from '../../src/stack/servers.ts';

const DOCKER = path.join(REPO_ROOT, 'docker');
const read = (...p: string[]) => fs.readFileSync(path.join(REPO_ROOT, ...p), 'utf8');

type Dict = Record<string, unknown>;
interface Service {
  image?: string;
  build?: { context?: string; dockerfile?: string; target?: string };
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | number | Dict)[];
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: string[] | string; disable?: boolean };
  restart?: string;
}

const composeText = read('docker/compose.yaml');
const compose = parse(composeText, { merge: true }) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = compose.services;

// ---- compose interpolation (the subset compose.yaml may use) ------------------------------------
const INTERP = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

function interpolations(s: string): { name: string; op: string; arg: string }[] {
  const out: { name: string; op: string; arg: string }[] = [];
  for (const m of s.matchAll(INTERP)) {
    const name = m[1] ?? m[4];
    if (name) out.push({ name, op: m[2] ?? '', arg: m[3] ?? '' });
  }
  return out;
}

function interpolate(s: string, vars: Record<string, string>): string {
  return s.replace(INTERP, (whole, braced?: string, op?: string, arg?: string, bare?: string) => {
    if (whole === '$$') return '$';
    const name = (braced ?? bare)!;
    const v = vars[name];
    const unset = v === undefined;
    const empty = unset || v === '';
    switch (op) {
      case ':-': return empty ? arg! : v!;
      case '-': return unset ? arg! : v!;
      case ':?': if (empty) throw new Error(`${name}: ${arg}`); return v!;
      case '?': if (unset) throw new Error(`${name}: ${arg}`); return v!;
      default: return v ?? '';
    }
  });
}

function deepInterpolate<T>(x: T, vars: Record<string, string>): T {
  if (typeof x === 'string') return interpolate(x, vars) as T;
  if (Array.isArray(x)) return x.map((v) => deepInterpolate(v, vars)) as T;
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, deepInterpolate(v, vars)])) as T;
  return x;
}

/** What `docker/.env` would hold in a real deployment: only the required secrets. */
const TEST_ENV = { POSTGRES_PASSWORD: 'pg-pass-1234', VORA_S3_ACCESS_KEY: 'access-1234', VORA_S3_SECRET_KEY: 'secret-12345678', VORA_PLAYBACK_SECRET: 'playback-secret-1234' };
const resolved = deepInterpolate(services, TEST_ENV);

function envOf(svc: Service | undefined): Record<string, string> {
  const e = svc?.environment;
  if (!e) return {};
  if (Array.isArray(e)) {
    return Object.fromEntries(e.map((kv) => [kv.split('=')[0]!, kv.includes('=') ? kv.slice(kv.indexOf('=') + 1) : '']));
  }
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

const commandOf = (svc: Service | undefined): string[] =>
  Array.isArray(svc?.command) ? svc.command.map(String) : typeof svc?.command === 'string' ? svc.command.split(/\s+/) : [];

/** The value after a flag in an argv (`--port 7233`), or undefined. */
const flag = (argv: string[], name: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const portOf = (addr: string | undefined) => Number(addr?.slice(addr.lastIndexOf(':') + 1));
const hcText = (svc: Service | undefined) => (Array.isArray(svc?.healthcheck?.test) ? svc.healthcheck.test.join(' ') : String(svc?.healthcheck?.test ?? ''));
const dflt = (name: PortName) => PORT_VARS[name][1];

// ---- what the code reads -----------------------------------------------------------------------
const configTs = read('src/common/config.ts');
const CONFIG_VARS = new Set(configTs.match(/VORA_[A-Z0-9_]+/g));

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    return d.isDirectory() ? tsFiles(p) : d.name.endsWith('.ts') ? [p] : [];
  });
}
/** Every VORA_* name any source file reads (config.ts and the few process-level knobs). */
const SRC_VARS = new Set(tsFiles(path.join(REPO_ROOT, 'src')).flatMap((f) => fs.readFileSync(f, 'utf8').match(/VORA_[A-Z0-9_]+/g) ?? []));

/** loadConfig()'s variables whose default is built from `host` (VORA_HOST). */
const HOST_DERIVED = [...configTs.matchAll(/env\.(VORA_[A-Z0-9_]+) \?\? `[^`]*\$\{host\}/g)].map((m) => m[1]!);

const INFRA = ['postgres', 'minio', 'temporal', 'clickhouse', 'varnish'];
const APPS = ['api', 'worker', 'gateway'] as const;
/** Which PORT_VARS each compose service listens on: the same split as the local stack. */
const LISTENS: Record<string, PortName[]> = {
  postgres: ['postgres'],
  minio: ['minio', 'minioConsole'],
  temporal: ['temporal', 'temporalUi'],
  clickhouse: ['clickhouseHttp', 'clickhouseTcp'],
  varnish: ['playback', 'varnishAdmin'],
  api: ['api'],
  gateway: ['gateway'],
};
/** The only ports reachable from outside, and the service that owns each. */
const PUBLISHED: Record<string, PortName> = { varnish: 'playback', api: 'api', temporal: 'temporalUi' };
/** Services that run the app image: the three processes plus the one-shot init. */
const APP_IMAGE = [...APPS, 'init'];

describe('docker/compose.yaml: services and variables', () => {
  it('has the local stack services (plus the one-shot init) and nothing else', () => {
    expect(Object.keys(services).sort()).toEqual([...INFRA, ...APP_IMAGE].sort());
  });

  it('sets only VORA_* variables that src/common/config.ts defines on the app containers', () => {
    expect(CONFIG_VARS.size).toBeGreaterThan(20);
    for (const name of APP_IMAGE) {
      const env = envOf(services[name]);
      expect(Object.keys(env).length, name).toBeGreaterThan(0);
      for (const k of Object.keys(env)) expect(CONFIG_VARS, `${name}: ${k} is not read by loadConfig()`).toContain(k);
    }
    // Third-party containers may carry their image's variables, but any VORA_* one must be real too.
    for (const [name, svc] of Object.entries(services)) {
      for (const k of Object.keys(envOf(svc)).filter((k) => k.startsWith('VORA_'))) {
        expect(CONFIG_VARS, `${name}: ${k}`).toContain(k);
      }
    }
  });

  it('interpolates only VORA_* names that the code reads (so .env uses the same names as a shell)', () => {
    const names = interpolations(composeText).map((i) => i.name).filter((n) => n.startsWith('VORA_'));
    expect(names.length).toBeGreaterThan(0);
    for (const n of names) expect(SRC_VARS, `\${${n}} in compose.yaml is read nowhere in src/`).toContain(n);
  });

  it('app containers listen on 0.0.0.0 and set every address loadConfig() would derive from VORA_HOST', () => {
    expect(HOST_DERIVED).toEqual(expect.arrayContaining(['VORA_PG_URL', 'VORA_S3_ENDPOINT', 'VORA_TEMPORAL_ADDRESS', 'VORA_CLICKHOUSE_URL']));
    for (const name of APP_IMAGE) {
      const env = envOf(resolved[name]);
      expect(env.VORA_HOST, name).toBe('0.0.0.0');
      for (const v of HOST_DERIVED) expect(env[v], `${name} must set ${v} (its default would be 0.0.0.0)`).toBeTruthy();
      const cfg = loadConfig(env);
      const urls = [cfg.postgres.url, cfg.s3.endpoint, `tcp://${cfg.temporal.address}`, cfg.clickhouse.url, cfg.apiUrl, cfg.playbackUrl, cfg.gatewayUrl, cfg.temporal.uiUrl];
      for (const u of urls) expect(u, name).not.toMatch(/\/\/(0\.0\.0\.0|127\.0\.0\.1)[:/]/);
      expect(cfg.ports, `${name} keeps the default ports`).toEqual(Object.fromEntries(Object.entries(PORT_VARS).map(([k, [, d]]) => [k, d])));
    }
  });

  it("internal addresses name a compose service and a port that service listens on", () => {
    const cfg = loadConfig(envOf(resolved.api));
    const internal: [string, string][] = [
      ['VORA_PG_URL', cfg.postgres.url],
      ['VORA_S3_ENDPOINT', cfg.s3.endpoint],
      ['VORA_TEMPORAL_ADDRESS', `grpc://${cfg.temporal.address}`],
      ['VORA_CLICKHOUSE_URL', cfg.clickhouse.url],
      ['VORA_GATEWAY_URL', cfg.gatewayUrl],
    ];
    for (const [v, raw] of internal) {
      const u = new URL(raw);
      const ports = LISTENS[u.hostname]?.map(dflt);
      expect(ports, `${v}=${raw}: host is not a compose service`).toBeDefined();
      expect(ports, `${v}=${raw}`).toContain(Number(u.port));
    }
  });

  it('PostgreSQL and MinIO credentials agree with what the apps connect with', () => {
    const cfg = loadConfig(envOf(resolved.api));
    const pg = envOf(resolved.postgres);
    const url = new URL(cfg.postgres.url);
    expect(decodeURIComponent(url.username)).toBe(pg.POSTGRES_USER);
    expect(decodeURIComponent(url.password)).toBe(pg.POSTGRES_PASSWORD);
    expect(url.pathname).toBe(`/${pg.POSTGRES_DB}`);
    expect(cfg.postgres.user).toBe(pg.POSTGRES_USER);
    expect(cfg.postgres.database).toBe(pg.POSTGRES_DB);
    const minio = envOf(resolved.minio);
    expect(cfg.s3.accessKeyId).toBe(minio.MINIO_ROOT_USER);
    expect(cfg.s3.secretAccessKey).toBe(minio.MINIO_ROOT_PASSWORD);
    // Every app-image container sees the same stack.
    for (const name of APP_IMAGE) expect(envOf(resolved[name]), name).toEqual(envOf(resolved.api));
  });

  it('refuses to start without the secrets', () => {
    expect(() => deepInterpolate(services, {})).toThrow(/POSTGRES_PASSWORD|VORA_S3_/);
  });
});

describe('docker/compose.yaml: ports', () => {
  it('publishes only playback, api and the Temporal UI, each on its PORT_VARS default', () => {
    const published: Record<string, { host: number; container: number }[]> = {};
    for (const [name, svc] of Object.entries(resolved)) {
      for (const p of svc.ports ?? []) {
        let host: number, container: number;
        if (typeof p === 'object') {
          host = Number((p as Dict).published);
          container = Number((p as Dict).target);
        } else {
          const parts = String(p).replace(/\/(tcp|udp)$/, '').split(':');
          expect(parts.length, `${name}: "${p}" must say host:container`).toBeGreaterThanOrEqual(2);
          container = Number(parts.at(-1));
          host = Number(parts.at(-2));
        }
        (published[name] ??= []).push({ host, container });
      }
    }
    expect(Object.keys(published).sort()).toEqual(Object.keys(PUBLISHED).sort());
    for (const [name, port] of Object.entries(PUBLISHED)) {
      expect(published[name], name).toEqual([{ host: dflt(port), container: dflt(port) }]);
    }
    expect(dflt('playback')).toBe(6081);
    expect(dflt('api')).toBe(8080);
    expect(dflt('temporalUi')).toBe(8233);
  });

  it('every server listens on its PORT_VARS default inside the network', () => {
    const pg = resolved.postgres!;
    expect(Number(envOf(pg).PGPORT)).toBe(dflt('postgres'));
    expect(Number(flag(pg.healthcheck!.test as string[], '-p'))).toBe(dflt('postgres'));

    const minio = commandOf(resolved.minio);
    expect(portOf(flag(minio, '--address'))).toBe(dflt('minio'));
    expect(portOf(flag(minio, '--console-address'))).toBe(dflt('minioConsole'));
    expect(hcText(resolved.minio)).toContain(`:${dflt('minio')}/`);

    const temporal = commandOf(resolved.temporal);
    expect(Number(flag(temporal, '--port'))).toBe(dflt('temporal'));
    expect(Number(flag(temporal, '--ui-port'))).toBe(dflt('temporalUi'));
    expect(flag(temporal, '--ip')).toBe('0.0.0.0');
    expect(flag(temporal, '--namespace')).toBe(loadConfig({}).temporal.namespace);
    expect(hcText(resolved.temporal)).toContain(`:${dflt('temporal')}`);

    const xmlMount = (resolved.clickhouse!.volumes ?? []).map(String).find((v) => v.includes('/config.d/'));
    expect(xmlMount, 'clickhouse mounts a config.d override').toBeDefined();
    const xml = fs.readFileSync(path.resolve(DOCKER, xmlMount!.split(':')[0]!), 'utf8');
    expect(Number(xml.match(/<http_port>(\d+)<\/http_port>/)?.[1])).toBe(dflt('clickhouseHttp'));
    expect(Number(xml.match(/<tcp_port>(\d+)<\/tcp_port>/)?.[1])).toBe(dflt('clickhouseTcp'));
    expect(xml).toMatch(/<yandex>/); // 18.16 ignores a <clickhouse> root
    expect(hcText(resolved.clickhouse)).toContain(String(dflt('clickhouseTcp')));

    const varnish = commandOf(resolved.varnish);
    expect(portOf(flag(varnish, '-a'))).toBe(dflt('playback'));
    expect(portOf(flag(varnish, '-T'))).toBe(dflt('varnishAdmin'));

    for (const name of ['api', 'gateway'] as const) {
      expect(hcText(resolved[name]), name).toContain(`127.0.0.1:${dflt(name)}/healthz`);
    }
  });
});

describe('docker/compose.yaml: start order, secrets, volumes, images', () => {
  it('every depends_on target says when it is ready: a healthcheck, or a one-shot that exits', () => {
    let edges = 0;
    for (const [name, svc] of Object.entries(services)) {
      if (!svc.depends_on) continue;
      expect(Array.isArray(svc.depends_on), `${name}: depends_on needs conditions`).toBe(false);
      for (const [target, { condition } = {}] of Object.entries(svc.depends_on as Record<string, { condition?: string }>)) {
        edges++;
        const t = services[target];
        expect(t, `${name} -> ${target}`).toBeDefined();
        if (condition === 'service_healthy') {
          expect(t!.healthcheck?.test, `${name} -> ${target}: no healthcheck`).toBeTruthy();
          expect(t!.healthcheck?.disable, target).not.toBe(true);
        } else {
          expect(condition, `${name} -> ${target}`).toBe('service_completed_successfully');
          expect(t!.restart, `${target} is waited for to exit: it must not restart`).toBe('no');
          expect(t!.ports, target).toBeUndefined();
        }
      }
    }
    expect(edges).toBeGreaterThan(10);
    // Every long-running service reports its health (the one-shot init exits instead).
    for (const [name, svc] of Object.entries(services)) {
      if (svc.restart !== 'no') expect(svc.healthcheck?.test, `${name} has no healthcheck`).toBeTruthy();
    }
    // The apps start only after the schema and bucket exist.
    for (const name of APPS) expect((services[name]!.depends_on as Dict).init, name).toEqual({ condition: 'service_completed_successfully' });
  });

  it('holds no literal secret: every *_KEY/*_SECRET/*PASSWORD value is a required interpolation', () => {
    const SECRET_NAME = /(_KEY|_SECRET|SECRET_KEY|PASSWORD|_TOKEN)$/;
    const required = new Set<string>();
    let checked = 0;
    for (const [name, svc] of Object.entries(services)) {
      for (const [k, v] of Object.entries(envOf(svc))) {
        if (SECRET_NAME.test(k)) {
          checked++;
          expect(v, `${name}: ${k} must be exactly \${VAR:?message}`).toMatch(/^\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]*\}$/);
        }
        // A password inside a URL (scheme://user:password@host) too.
        const userinfo = v.match(/^[a-z][a-z0-9+.-]*:\/\/[^/@:]*:(.*)@/i);
        if (userinfo) {
          checked++;
          expect(userinfo[1], `${name}: ${k} embeds a literal password`).toMatch(/^\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]*\}$/);
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(4);
    for (const i of interpolations(composeText)) {
      if (/KEY|SECRET|PASSWORD|TOKEN/.test(i.name)) {
        expect(i.op, `\${${i.name}} must not have a default`).toMatch(/^:?\?$/);
        required.add(i.name);
      }
    }
    // docker/.env.example names each required value, empty; the real .env is never tracked.
    const example = read('docker/.env.example');
    for (const n of required) expect(example, n).toMatch(new RegExp(`^${n}=$`, 'm'));
    for (const line of example.split('\n').filter((l) => /^[A-Z_]+=./.test(l))) {
      expect(line, 'only empty values in .env.example').not.toMatch(/KEY|SECRET|PASSWORD|TOKEN/);
    }
    expect(read('docker/.gitignore')).toMatch(/^\.env$/m);
    const tracked = execFileSync('git', ['ls-files', 'docker/.env'], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(tracked.trim()).toBe('');
  });

  it('keeps state in declared named volumes and mounts only files that exist', () => {
    const declared = Object.keys(compose.volumes ?? {});
    const used = new Set<string>();
    const stateful: Record<string, string> = {
      postgres: '/var/lib/postgresql/data',
      minio: '/data',
      temporal: '/var/lib/temporal',
      clickhouse: '/var/lib/clickhouse',
    };
    for (const [name, svc] of Object.entries(services)) {
      for (const v of svc.volumes ?? []) {
        const [source, target] = typeof v === 'string' ? v.split(':') : [v.source, v.target];
        if (!source || !target) throw new Error(`${name}: volume ${JSON.stringify(v)}`);
        if (source.startsWith('.') || source.startsWith('/')) {
          expect(fs.existsSync(path.resolve(DOCKER, source)), `${name}: bind source ${source}`).toBe(true);
        } else {
          expect(declared, `${name}: volume ${source} is not declared`).toContain(source);
          used.add(source);
          if (stateful[name]) expect(target, name).toBe(stateful[name]);
        }
      }
    }
    for (const [name] of Object.entries(stateful)) {
      const named = (services[name]!.volumes ?? []).some((v) => typeof v === 'string' && !v.startsWith('.') && v.endsWith(`:${stateful[name]}`));
      expect(named, `${name} keeps ${stateful[name]} in a named volume`).toBe(true);
    }
    expect([...used].sort()).toEqual([...declared].sort());
    // The worker's scratch (VORA_WORK_DIR) and the gateway's event spool ($VORA_DATA_DIR/spool, see
    // src/gateway/main.ts) live on volumes, and the image creates them writable for its user.
    const env = envOf(services.worker);
    expect(env.VORA_WORK_DIR).toBeTruthy();
    expect((services.worker!.volumes ?? []).map(String)).toContain(`worker-work:${env.VORA_WORK_DIR}`);
    expect(read('src/gateway/main.ts')).toMatch(/path\.join\(cfg\.dataDir, 'spool'\)/);
    expect((services.gateway!.volumes ?? []).map(String)).toContain(`gateway-spool:${env.VORA_DATA_DIR}/spool`);
    const mkdir = read('docker/Dockerfile').match(/mkdir -p ([^\\\n&]+)/)?.[1]?.split(/\s+/) ?? [];
    for (const d of [env.VORA_WORK_DIR, `${env.VORA_DATA_DIR}/spool`, `${env.VORA_DATA_DIR}/vcl`, `${env.VORA_DATA_DIR}/run`]) expect(mkdir, d).toContain(d);
  });

  it('runs the versions the local stack pins', () => {
    expect(services.postgres!.image).toMatch(/^postgres:15([.-]|$)/);
    expect(services.clickhouse!.image).toBe('yandex/clickhouse-server:18.16');
    expect(services.varnish!.image).toMatch(/^varnish:7\.1([.-]|$)/);
    for (const name of ['minio', 'temporal']) {
      expect(services[name]!.build, name).toEqual({ context: '..', dockerfile: 'docker/tools.Dockerfile', target: name });
    }
  });

  it("Varnish loads varnish/default.vcl as init renders it for the gateway's compose address", () => {
    // The template points its backend at 127.0.0.1 (the local supervisor rewrites it); inside
    // compose that is Varnish's own container, so init renders it with renderVcl() onto a volume.
    const dataDir = envOf(resolved.init).VORA_DATA_DIR!;
    const initMount = (services.init!.volumes ?? []).map(String).find((v) => v.endsWith(`:${dataDir}/vcl`));
    expect(initMount, `init mounts a volume on ${dataDir}/vcl`).toBeDefined();
    const volume = initMount!.split(':')[0]!;
    const varnishMount = (services.varnish!.volumes ?? []).map(String).find((v) => v.startsWith(`${volume}:`));
    expect(varnishMount, `varnish mounts ${volume}`).toBeDefined();
    expect(flag(commandOf(services.varnish), '-f')).toBe(`${varnishMount!.split(':')[1]}/default.vcl`);
    expect((services.varnish!.depends_on as Dict).init).toEqual({ condition: 'service_completed_successfully' });

    const init = read('docker/init.ts');
    expect(init).toContain("path.join(cfg.dataDir, 'vcl', 'default.vcl')");
    expect(init).toMatch(/renderVcl\(\{ gatewayHost: gateway\.hostname, gatewayPort: Number\(gateway\.port\)/);
    expect(init).toContain('new URL(cfg.gatewayUrl)');
  });

  it('the rendered VCL sends to the gateway service on its port', async () => {
    const { renderVcl } = (await import('../../src/gateway/vcl.ts')) as { renderVcl: (p: { gatewayHost: string; gatewayPort: number }) => string };
    const gateway = new URL(loadConfig(envOf(resolved.init)).gatewayUrl);
    const vcl = renderVcl({ gatewayHost: gateway.hostname, gatewayPort: Number(gateway.port) });
    expect(vcl).toMatch(/\.host = "gateway";/);
    expect(vcl).toMatch(new RegExp(`\\.port = "${dflt('gateway')}";`));
    expect(vcl).not.toMatch(/\.host = "127\.0\.0\.1"/);
  });
});

// ---- Dockerfiles ---------------------------------------------------------------------------------
interface Stage { name: string; from: string; lines: string[] }

function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const logical = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const l of logical) {
    const from = l.match(/^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?/i);
    if (from) {
      const image = from[1]!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a?: string, b?: string) => args[(a ?? b)!] ?? '');
      stages.push({ name: from[2] ?? String(stages.length), from: image, lines: [] });
    } else if (stages.length === 0) {
      const arg = l.match(/^ARG\s+(\w+)=(\S+)/i);
      if (arg) args[arg[1]!] = arg[2]!;
    } else {
      stages.at(-1)!.lines.push(l);
    }
  }
  return { args, stages };
}

const dockerfile = parseDockerfile(read('docker/Dockerfile'));
const toolsDockerfile = parseDockerfile(read('docker/tools.Dockerfile'));
const stage = (df: typeof dockerfile, name: string) => {
  const s = df.stages.find((x) => x.name === name);
  if (!s) throw new Error(`no stage ${name}`);
  return s;
};
/** A stage's stage chain, from itself back to the first stage not based on another one. */
function chain(df: typeof dockerfile, name: string): Stage[] {
  const out: Stage[] = [];
  for (let s: Stage | undefined = stage(df, name); s; s = df.stages.find((x) => x.name === s!.from)) out.push(s);
  return out;
}
const cmdOf = (df: typeof dockerfile, name: string): string[] | undefined => {
  for (const s of chain(df, name)) {
    const cmd = s.lines.findLast((l) => /^CMD\s/i.test(l));
    if (cmd) return JSON.parse(cmd.replace(/^CMD\s+/i, '')) as string[];
  }
  return undefined;
};
const userOf = (df: typeof dockerfile, name: string): string | undefined => {
  for (const s of chain(df, name)) {
    const u = s.lines.findLast((l) => /^USER\s/i.test(l));
    if (u) return u.replace(/^USER\s+/i, '');
  }
  return undefined;
};
const aptPackages = (s: Stage) =>
  s.lines.filter((l) => /apt-get install/.test(l)).flatMap((l) => l.split(/\s+/)).filter((w) => /^[a-z0-9][a-z0-9+.-]+$/.test(w));

describe('docker/Dockerfile', () => {
  const ENTRY: Record<string, string> = { api: 'src/api/main.ts', worker: 'src/worker/main.ts', gateway: 'src/gateway/main.ts', init: 'docker/init.ts' };

  it('each app-image service builds its own target, whose CMD runs the file the service is named for', () => {
    for (const name of APP_IMAGE) {
      const b = services[name]!.build!;
      expect(path.resolve(DOCKER, b.context!), name).toBe(REPO_ROOT);
      expect(b.dockerfile, name).toBe('docker/Dockerfile');
      expect(b.target, name).toBe(name);
      expect(services[name]!.command, `${name}: the image CMD is the entry point`).toBeUndefined();
      // The same node flags as the stack gives the process (src/stack/servers.ts).
      const args = name === 'init' ? ['--import', 'tsx', ENTRY[name]!] : appNodeArgs(name as 'api').map((a) => (path.isAbsolute(a) ? path.relative(REPO_ROOT, a) : a));
      expect(cmdOf(dockerfile, name), name).toEqual(['node', ...args]);
      expect(chain(dockerfile, name).map((s) => s.name), name).toContain('runtime');
    }
  });

  for (const [name, file] of Object.entries({ api: 'src/api/main.ts', worker: 'src/worker/main.ts', gateway: 'src/gateway/main.ts', init: 'docker/init.ts' })) {
    // api/gateway entry files are being written alongside this folder; checked as soon as they land.
    const exists = fs.existsSync(path.join(REPO_ROOT, file));
    it.skipIf(!exists && name !== 'init')(`${name}: ${file} exists`, () => {
      expect(fs.existsSync(path.join(REPO_ROOT, file))).toBe(true);
    });
  }

  it('copies into the runtime what the app reads, and the ignore file lets it through', () => {
    const runtime = stage(dockerfile, 'runtime');
    const ignore = read('docker/Dockerfile.dockerignore').split('\n').map((l) => l.trim());
    const sources = runtime.lines
      .filter((l) => /^COPY\s/i.test(l) && !/--from=/.test(l))
      .flatMap((l) => l.replace(/^COPY\s+(--\S+\s+)*/i, '').split(/\s+/).slice(0, -1));
    for (const needed of ['src', 'migrations', 'clickhouse', 'varnish', 'package.json', 'docker/init.ts']) expect(sources).toContain(needed);
    for (const src of sources) {
      expect(fs.existsSync(path.join(REPO_ROOT, src)), src).toBe(true);
      expect(ignore.some((l) => l === `!${src}` || l === `!${src}/`), `${src} is excluded by Dockerfile.dockerignore`).toBe(true);
    }
    expect(ignore[0] === '**' || ignore.includes('**'), 'the ignore file starts from nothing').toBe(true);
    // The native module built in the builder comes along.
    expect(runtime.lines.some((l) => /^COPY\s+--from=builder\s+\/app\/native\s/i.test(l))).toBe(true);
  });

  it('builder: node:20-bookworm + Rust + clang/pkg-config; runs npm ci and build:native', () => {
    const b = stage(dockerfile, 'builder');
    const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
    expect(b.from).toBe(`node:${engines.match(/\d+/)![0]}-bookworm`);
    expect(stage(dockerfile, 'runtime').from).toBe(`node:${engines.match(/\d+/)![0]}-bookworm-slim`);
    const pkgs = aptPackages(b);
    for (const p of ['clang', 'libclang-dev', 'pkg-config']) expect(pkgs).toContain(p);
    const text = b.lines.join('\n');
    expect(text).toMatch(/rustup|sh\.rustup\.rs/);
    expect(text).toMatch(/\bnpm ci\b/);
    expect(text).toMatch(/npm run build:native/);
    expect((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts['build:native']).toBeTruthy();
    const rust = read('docker/Dockerfile').match(/ARG RUST_VERSION=(\d+)\.(\d+)/);
    const needs = read('native/Cargo.toml').match(/rust-version\s*=\s*"(\d+)\.(\d+)/);
    expect(rust && needs, 'pinned Rust and native rust-version').toBeTruthy();
    expect(Number(rust![1]) * 1000 + Number(rust![2])).toBeGreaterThanOrEqual(Number(needs![1]) * 1000 + Number(needs![2]));
  });

  it('runs as a non-root user', () => {
    for (const name of APP_IMAGE) expect(userOf(dockerfile, name), name).toMatch(/^(?!root$|0$|0:)\S+/);
    for (const name of ['minio', 'temporal']) expect(userOf(toolsDockerfile, name), name).toMatch(/^(?!root$|0$|0:)\S+/);
  });

  it('docker/init.ts imports functions that exist where it imports them from', async () => {
    const text = read('docker/init.ts');
    const imports = [...text.matchAll(/import \{([^}]+)\} from '(\.\.\/src\/[^']+)'/g)];
    expect(imports.length).toBeGreaterThanOrEqual(4);
    for (const [, names, rel] of imports) {
      const file = path.resolve(DOCKER, rel!);
      expect(fs.existsSync(file), rel).toBe(true);
      const mod = (await import(file)) as Record<string, unknown>;
      for (const n of names!.split(',').map((s) => s.trim().replace(/^type\s+/, '')).filter(Boolean)) {
        expect(typeof mod[n], `${rel} exports ${n}`).toBe('function');
      }
    }
  });
});

describe('FFmpeg: Debian runtime libraries match the dev libraries the native module links', () => {
  /** FFmpeg 5.1 (Debian bookworm) library sonames. */
  const FFMPEG_5_1: Record<string, number> = { avcodec: 59, avformat: 59, avfilter: 8, avdevice: 59, avutil: 57, swresample: 4, swscale: 6, postproc: 56 };
  /** ffmpeg-next features -> the library each one links. */
  const FEATURE_LIB: Record<string, string> = { codec: 'avcodec', format: 'avformat', filter: 'avfilter', device: 'avdevice', 'software-resampling': 'swresample', 'software-scaling': 'swscale', postprocessing: 'postproc' };
  const LIB = /^lib(av[a-z]+|sw[a-z]+|postproc)/;

  const dev = new Set(aptPackages(stage(dockerfile, 'builder')).map((p) => p.match(new RegExp(LIB.source + '-dev$'))?.[1]).filter(Boolean) as string[]);
  const runtime = new Map(
    aptPackages(stage(dockerfile, 'runtime'))
      .map((p) => p.match(new RegExp(LIB.source + '(\\d+)$')))
      .filter(Boolean)
      .map((m) => [m![1]!, Number(m![2])] as const),
  );

  it('the same libraries on both sides, covering the native crate\'s ffmpeg-next features', () => {
    const cargo = read('native/Cargo.toml');
    const features = cargo.match(/ffmpeg-next\s*=\s*\{[^}]*features\s*=\s*\[([^\]]*)\]/)?.[1];
    expect(features, 'ffmpeg-next features in native/Cargo.toml').toBeDefined();
    const needed = new Set(['avutil', ...[...features!.matchAll(/"([^"]+)"/g)].map((m) => FEATURE_LIB[m[1]!]).filter(Boolean) as string[]]);
    expect(needed.size).toBeGreaterThan(1);
    for (const lib of needed) expect(dev, `lib${lib}-dev in the builder`).toContain(lib);
    expect([...runtime.keys()].sort()).toEqual([...dev].sort());
  });

  it('runtime sonames are FFmpeg 5.1\'s (libavcodec59 ...), the release bookworm ships', () => {
    expect(runtime.get('avcodec')).toBe(59);
    for (const [lib, major] of runtime) expect(`lib${lib}${major}`).toBe(`lib${lib}${FFMPEG_5_1[lib]}`);
    for (const s of ['builder', 'runtime']) expect(stage(dockerfile, s).from, s).toMatch(/bookworm/);
  });

  // Where the dev libraries are installed (this machine, CI), their pkg-config version decides.
  let pkgConfig = false;
  try {
    execFileSync('pkg-config', ['--exists', 'libavcodec'], { stdio: 'ignore' });
    pkgConfig = true;
  } catch {}
  it.skipIf(!pkgConfig)('runtime sonames equal the installed dev libraries\' major versions (pkg-config)', () => {
    for (const [lib, major] of runtime) {
      const version = execFileSync('pkg-config', ['--modversion', `lib${lib}`], { encoding: 'utf8' }).trim();
      expect(`lib${lib}${major}`).toBe(`lib${lib}${version.split('.')[0]}`);
    }
  });
  // Where the native module has been built (npm run build:native), the sonames it really links.
  const built = fs.existsSync(path.join(REPO_ROOT, 'native'))
    ? fs.readdirSync(path.join(REPO_ROOT, 'native')).filter((f) => f.endsWith('.node')).map((f) => path.join(REPO_ROOT, 'native', f))
    : [];
  let readelf = false;
  try {
    execFileSync('readelf', ['--version'], { stdio: 'ignore' });
    readelf = true;
  } catch {}
  it.skipIf(!built.length || !readelf)('the built native module links only FFmpeg libraries the runtime installs (readelf)', () => {
    for (const file of built) {
      const needed = [...execFileSync('readelf', ['-d', file], { encoding: 'utf8' }).matchAll(/\[lib((?:av|sw)[a-z]+|postproc)\.so\.(\d+)\]/g)];
      expect(needed.length, file).toBeGreaterThan(0);
      for (const [, lib, major] of needed) expect(`lib${lib}${runtime.get(lib!)}`, path.basename(file)).toBe(`lib${lib}${major}`);
    }
  });
});

describe('docker/tools.Dockerfile: MinIO and Temporal from the pinned Go modules', () => {
  it('builds the packages tools/build.sh builds, from tools/<name>, with a Go new enough for go.mod', () => {
    const buildSh = read('tools/build.sh');
    for (const name of ['temporal', 'minio']) {
      // `build NAME [MODULE] PACKAGE BINARY`: the package is the word before the binary name.
      const words = buildSh.split('\n').find((l) => l.trim().startsWith(`${name})`))?.split(/\s+/) ?? [];
      const pkg = words.includes('build') ? words[words.lastIndexOf(name) - 1] : undefined;
      expect(pkg, `tools/build.sh builds ${name}`).toBeDefined();
      const b = stage(toolsDockerfile, `${name}-build`);
      const text = b.lines.join('\n');
      expect(text).toContain(`COPY tools/${name}/ ./`);
      expect(text).toMatch(new RegExp(`go build .* ${pkg!.replace(/[.]/g, '\\.')}(\\s|$)`));
      const goMod = read(`tools/${name}/go.mod`).match(/^go (\d+)\.(\d+)/m)!;
      const goImage = b.from.match(/golang:(\d+)\.(\d+)/)!;
      expect(Number(goImage[1]) * 1000 + Number(goImage[2]), name).toBeGreaterThanOrEqual(Number(goMod[1]) * 1000 + Number(goMod[2]));
      expect(stage(toolsDockerfile, name).lines.join('\n')).toContain(`COPY --from=${name}-build /out/${name} /usr/local/bin/${name}`);
    }
    const ignore = read('docker/tools.Dockerfile.dockerignore');
    for (const name of ['temporal', 'minio']) expect(ignore).toMatch(new RegExp(`^!tools/${name}/?$`, 'm'));
  });

  it('the healthcheck tools exist in the images that run them', () => {
    expect(hcText(services.minio)).toMatch(/^CMD curl /);
    expect(aptPackages(stage(toolsDockerfile, 'minio'))).toContain('curl');
    expect(hcText(services.temporal)).toMatch(/^CMD temporal /);
    for (const name of APP_IMAGE.filter((n) => services[n]!.healthcheck)) expect(hcText(services[name])).toMatch(/^CMD node /);
  });
});
