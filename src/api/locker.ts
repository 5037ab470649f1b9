// tus upload lock shared by every API process: a PostgreSQL session advisory lock per upload id,
// held on a dedicated connection for as long as the request holds it. tus-node-server's lock
// protocol also lets a newcomer ask the holder to let go (a client that reconnects after a drop
// must not wait for the dead request): waiting requests NOTIFY `vora_upload_release` with the
// upload id, and the process holding it calls that request's release callback.
import type { Lock, Locker, RequestRelease } from '@tus/utils';
import { ERRORS } from '@tus/utils';
import type pg from 'pg';
import type { Logger } from '../common/log.ts';

const CHANNEL = 'vora_upload_release';

export class PgLocker implements Locker {
  readonly held = new Map<string, RequestRelease>();
  private listener: pg.PoolClient | null = null;
  private listening: Promise<void> | null = null;
  private closed = false;

  constructor(
    readonly pool: pg.Pool,
    readonly log: Logger,
    readonly acquireTimeoutMs = 30_000,
    readonly pollMs = 100,
  ) {}

  newLock(id: string): Lock {
    return new PgLock(this, id);
  }

  /** One LISTEN connection per process, (re)opened lazily. */
  ensureListening(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.listening ??= (async () => {
      const client = await this.pool.connect();
      client.on('notification', (msg) => {
        const release = msg.payload ? this.held.get(msg.payload) : undefined;
        if (release) Promise.resolve(release()).catch(() => {});
      });
      client.on('error', () => {
        // The LISTEN connection broke (e.g. PostgreSQL restarted): the next lock opens a new one.
        if (this.listener !== client) return; // already handed back by close()
        this.listener = null;
        this.listening = null;
        client.release(true);
      });
      try {
        await client.query(`LISTEN ${CHANNEL}`);
      } catch (err) {
        client.release(true);
        throw err;
      }
      this.listener = client;
    })().catch((err) => {
      this.listening = null;
      throw err;
    });
    return this.listening;
  }

  async requestRelease(id: string): Promise<void> {
    const local = this.held.get(id);
    if (local) {
      await local();
      return;
    }
    await this.pool.query('SELECT pg_notify($1, $2)', [CHANNEL, id]);
  }

  async close(): Promise<void> {
    this.closed = true;
    const l = this.listener;
    this.listener = null;
    if (l) {
      await l.query(`UNLISTEN ${CHANNEL}`).catch(() => {});
      l.removeAllListeners('notification');
      l.release();
    }
    this.listening = null;
  }
}

class PgLock implements Lock {
  private client: pg.PoolClient | null = null;

  constructor(
    private readonly locker: PgLocker,
    private readonly id: string,
  ) {}

  async lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    await this.locker.ensureListening();
    const deadline = Date.now() + this.locker.acquireTimeoutMs;
    const client = await this.locker.pool.connect();
    try {
      let asked = false;
      for (;;) {
        if (signal.aborted) throw ERRORS.ABORTED;
        const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [
          this.id,
        ]);
        if (rows[0]?.ok) break;
        if (!asked) {
          // Ask the holder (here or in another process) to wind down its request.
          await this.locker.requestRelease(this.id).catch(() => {});
          asked = true;
        }
        if (Date.now() > deadline) throw ERRORS.ERR_LOCK_TIMEOUT;
        await new Promise((r) => setTimeout(r, this.locker.pollMs));
      }
    } catch (err) {
      client.release();
      throw err;
    }
    this.client = client;
    this.locker.held.set(this.id, requestRelease);
  }

  async unlock(): Promise<void> {
    const client = this.client;
    if (!client) throw new Error('Releasing an unlocked lock!');
    this.client = null;
    this.locker.held.delete(this.id);
    try {
      await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [this.id]);
      client.release();
    } catch (err) {
      // A broken connection drops its advisory locks with it.
      client.release(true);
      this.locker.log.warn({ err, id: this.id }, 'advisory unlock failed; connection discarded');
    }
  }
}
