// Starts the stack's services in order (infra in parallel, then setup, then the apps), watches them,
// restarts app processes that die, and stops everything in reverse order. Used by `vora up` and by
// the integration test harness (same code, own data dir and ports).
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { PORT_VARS, loadConfig, type VoraConfig } from '../common/config.ts';
import { portFree } from './ports.ts';
import { loadOrCreateSecrets } from './secrets.ts';
import { SERVICES, type Command, type ServiceDef, type StackContext } from './servers.ts';

export class StackError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

function launch(cmd: Command, logFile: string, stopSignal: NodeJS.Signals) {
  return execa(cmd.file, cmd.args, {
    env: { ...cmd.env },
    extendEnv: true,
    stdin: 'ignore',
    stdout: { file: logFile, append: true },
    stderr: { file: logFile, append: true },
    reject: false,
    cleanup: true, // killed if this process exits
    killSignal: stopSignal,
    forceKillAfterDelay: 20_000,
  });
}
type Proc = ReturnType<typeof launch>;

interface Running {
  def: ServiceDef;
  proc: Proc;
  restarts: number[];
}

export interface StackOptions {
  /** Subset of service names to run (default: all). */
  only?: string[];
  log?: (line: string) => void;
}

/** The resolved config as environment variables, so child processes see exactly this stack. */
export function configEnv(
  cfg: VoraConfig,
  secrets: { minioUser: string; minioPassword: string; playbackSecret?: string },
): Record<string, string> {
  const env: Record<string, string> = {
    VORA_HOST: cfg.host,
    VORA_DATA_DIR: cfg.dataDir,
    VORA_S3_ACCESS_KEY: secrets.minioUser,
    VORA_S3_SECRET_KEY: secrets.minioPassword,
    VORA_S3_BUCKET: cfg.s3.bucket,
    VORA_LOG_LEVEL: cfg.logLevel,
    // Signs (api) and checks (gateway) private videos' playback tokens.
    VORA_PLAYBACK_SECRET: cfg.playbackSecret || secrets.playbackSecret || '',
  };
  for (const [name, [variable]] of Object.entries(PORT_VARS)) env[variable] = String(cfg.ports[name as keyof typeof PORT_VARS]);
  return env;
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, isDead: () => string | null): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 100; ; delay = Math.min(delay * 1.5, 1000)) {
    if (await check()) return;
    const dead = isDead();
    if (dead) throw new Error(dead);
    if (Date.now() > deadline) throw new Error(`not ready after ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

export class Stack {
  readonly cfg: VoraConfig;
  readonly ctx: StackContext;
  private running = new Map<string, Running>();
  private stopping = false;
  private readonly log: (line: string) => void;
  private readonly services: ServiceDef[];

  constructor(env: Record<string, string | undefined> = process.env, opts: StackOptions = {}) {
    this.cfg = loadConfig(env);
    const secrets = loadOrCreateSecrets(this.cfg.dataDir);
    // Keys given from outside (e.g. a managed MinIO) win over the generated dev ones.
    if (env.VORA_S3_ACCESS_KEY && env.VORA_S3_SECRET_KEY) {
      secrets.minioUser = env.VORA_S3_ACCESS_KEY;
      secrets.minioPassword = env.VORA_S3_SECRET_KEY;
    }
    this.cfg.s3.accessKeyId = secrets.minioUser;
    this.cfg.s3.secretAccessKey = secrets.minioPassword;
    this.cfg.playbackSecret ||= secrets.playbackSecret;
    // Children get every VORA_* knob this stack was given (ladder, preset, ...), then the resolved config.
    const passThrough = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[0].startsWith('VORA_') && e[1] !== undefined));
    this.ctx = { cfg: this.cfg, secrets, appEnv: { ...passThrough, ...configEnv(this.cfg, secrets) } };
    this.log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
    this.services = SERVICES.filter((s) => !opts.only || opts.only.includes(s.name));
  }

  get env(): Record<string, string> {
    return this.ctx.appEnv;
  }

  logFile(name: string): string {
    return path.join(this.cfg.dataDir, 'logs', `${name}.log`);
  }

  /** Fails fast, naming the service and the variable to change, when one of its ports is taken. */
  private async checkPorts(defs: ServiceDef[]): Promise<void> {
    for (const def of defs) {
      for (const p of def.ports) {
        const port = this.cfg.ports[p];
        if (!(await portFree(this.cfg.host, port))) {
          throw new StackError(
            'PORT_TAKEN',
            `${def.name}: port ${this.cfg.host}:${port} is already in use; stop what holds it or set ${PORT_VARS[p][0]} to a free port`,
          );
        }
      }
    }
  }

  private spawn(def: ServiceDef): Proc {
    const cmd = def.command(this.ctx);
    fs.mkdirSync(path.dirname(this.logFile(def.name)), { recursive: true });
    const proc = launch(cmd, this.logFile(def.name), def.stopSignal);
    fs.mkdirSync(path.join(this.cfg.dataDir, 'run'), { recursive: true });
    if (proc.pid) fs.writeFileSync(path.join(this.cfg.dataDir, 'run', `${def.name}.pid`), String(proc.pid));
    const entry: Running = this.running.get(def.name) ?? { def, proc, restarts: [] };
    entry.proc = proc;
    this.running.set(def.name, entry);
    void proc.then((res) => this.onExit(def, proc, res.exitCode ?? null, res.signal ?? null));
    return proc;
  }

  private onExit(def: ServiceDef, proc: Proc, code: number | null, signal: string | null): void {
    const entry = this.running.get(def.name);
    if (this.stopping || !entry || entry.proc !== proc) return;
    this.log(`[vora] ${def.name} exited (code ${code}, signal ${signal}); see ${this.logFile(def.name)}`);
    if (!def.restart) return;
    const now = Date.now();
    entry.restarts = entry.restarts.filter((t) => now - t < 60_000);
    if (entry.restarts.length >= 5) {
      this.log(`[vora] ${def.name} died 5 times in a minute; not restarting it`);
      return;
    }
    entry.restarts.push(now);
    const delay = 500 * 2 ** (entry.restarts.length - 1);
    setTimeout(() => {
      if (!this.stopping) {
        this.log(`[vora] restarting ${def.name}`);
        this.spawn(def);
      }
    }, delay);
  }

  private async startOne(def: ServiceDef): Promise<void> {
    const t0 = Date.now();
    await def.prepare?.(this.ctx);
    const proc = this.spawn(def);
    await waitUntil(
      () => def.ready(this.ctx, proc.pid ?? -1),
      def.readyTimeoutMs,
      () => (proc.exitCode !== undefined && proc.exitCode !== null ? `exited with code ${proc.exitCode}` : null),
    ).catch((err: Error) => {
      const tail = readTail(this.logFile(def.name), 15);
      throw new StackError('SERVICE_FAILED', `${def.name} failed to start: ${err.message}; last log lines from ${this.logFile(def.name)}:\n${tail}`);
    });
    await def.init?.(this.ctx);
    this.log(`[vora] ${def.name} ready in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  }

  async start(): Promise<void> {
    fs.mkdirSync(this.cfg.dataDir, { recursive: true, mode: 0o755 });
    await this.checkPorts(this.services);
    try {
      for (const stage of ['infra', 'app'] as const) {
        await Promise.all(this.services.filter((s) => s.stage === stage).map((s) => this.startOne(s)));
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Names of running services and their pids. */
  status(): Array<{ name: string; pid: number | undefined; alive: boolean }> {
    return [...this.running.values()].map((r) => ({
      name: r.def.name,
      pid: r.proc.pid,
      alive: r.proc.exitCode === null || r.proc.exitCode === undefined,
    }));
  }

  /** Stops one service (tests use this to simulate crashes) and waits until it has exited. */
  async stopService(name: string, signal?: NodeJS.Signals): Promise<void> {
    const entry = this.running.get(name);
    if (!entry) return;
    this.running.delete(name);
    entry.proc.kill(signal ?? entry.def.stopSignal);
    await entry.proc;
    fs.rmSync(path.join(this.cfg.dataDir, 'run', `${name}.pid`), { force: true });
  }

  /** Starts a service again after stopService (same data, same ports). */
  async startService(name: string): Promise<void> {
    const def = this.services.find((s) => s.name === name);
    if (!def) throw new Error(`unknown service ${name}`);
    await this.startOne(def);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    // Apps first (they drain), then the servers they use.
    const order = [...this.services].reverse();
    for (const stage of ['app', 'infra'] as const) {
      await Promise.all(order.filter((s) => s.stage === stage).map((s) => this.stopService(s.name)));
    }
  }
}

function readTail(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
