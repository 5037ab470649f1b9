// Bounded in-memory event buffer between the gateway's POST /v1/events and ClickHouse.
//
// - push() never waits: the gateway answers 202 at once.
// - Batches go to the sink by size (batchSize) or age (flushIntervalMs), one at a time, oldest first.
// - A failed batch is retried with exponential backoff under the same batch_id (the ClickHouse sink
//   makes retries idempotent, see clickhouse/001_events.sql).
// - While ClickHouse is down the buffer fills; past maxBuffered the buffered events are spilled to
//   files under spoolDir (one batch per file, written atomically) and replayed once the sink works
//   again, also after a restart. Past maxSpoolBytes events are dropped and counted.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../common/log.ts';
import { toRow, type EventRow, type PlaybackEvent } from './events.ts';

export interface Batch {
  batchId: string;
  rows: EventRow[];
}
/** Writes a batch; `retry` is true when the same batch may already be (partly) stored. */
export type Sink = (batch: Batch, opts: { retry: boolean }) => Promise<void>;

export interface EventBufferOptions {
  sink: Sink;
  spoolDir: string;
  maxBuffered?: number;
  batchSize?: number;
  /** Largest insert while a backlog is drained (at least 3 x batchSize pending); default 5 x batchSize. */
  maxBatchRows?: number;
  flushIntervalMs?: number;
  maxSpoolBytes?: number;
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** A batch failing this often is parked in the spool so a poison batch cannot block the rest. */
  maxAttempts?: number;
  /** A spool file rejected this often (permanent errors only) is renamed *.bad, its events dropped. */
  maxReplayAttempts?: number;
  /** Whether an error means the data itself is refused (retrying cannot help), not an outage. */
  isPermanent?: (err: unknown) => boolean;
  log?: Pick<Logger, 'warn' | 'info' | 'error'>;
}

export interface BufferCounters {
  accepted: number;
  flushed: number;
  spilled: number;
  replayed: number;
  dropped: number;
  failures: number;
}

interface InFlight extends Batch {
  attempts: number;
  spoolFile?: string; // set when the batch came from the spool
}

export const newBatchId = () => `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;

export class EventBuffer {
  readonly counters: BufferCounters = { accepted: 0, flushed: 0, spilled: 0, replayed: 0, dropped: 0, failures: 0 };
  private pending: { e: PlaybackEvent; at: number }[] = [];
  private oldestAt = 0;
  private inflight: InFlight | null = null;
  /** Events taken for the next batch while its rows are built (in slices, see buildBatch). */
  private building: { e: PlaybackEvent; at: number }[] | null = null;
  private pumping: Promise<void> | null = null;
  private retryAt = 0;
  private backoff: number;
  private timer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private spoolBytes = 0;
  private replayAttempts = new Map<string, number>();
  private closed = false;
  private again = false;
  private readonly o: Required<Omit<EventBufferOptions, 'log'>> & Pick<EventBufferOptions, 'log'>;

  constructor(opts: EventBufferOptions) {
    this.o = {
      maxBuffered: 100_000,
      batchSize: 20_000, // ClickHouse wants few, large inserts (each makes parts per partition)
      flushIntervalMs: 1_000,
      maxSpoolBytes: 256 * 1024 * 1024,
      backoffMinMs: 250,
      backoffMaxMs: 30_000,
      maxAttempts: 8,
      maxReplayAttempts: 3,
      isPermanent: (err: unknown) => (err as { permanent?: boolean } | null)?.permanent === true,
      maxBatchRows: 5 * (opts.batchSize ?? 20_000),
      ...opts,
    };
    this.backoff = this.o.backoffMinMs;
    fs.mkdirSync(this.o.spoolDir, { recursive: true });
    for (const f of this.spoolFiles()) this.spoolBytes += fileSize(path.join(this.o.spoolDir, f));
  }

  /** Starts the flush timer; spool files left by an earlier run are replayed from here on. */
  start(): this {
    if (!this.timer) {
      this.timer = setInterval(() => this.kick(), Math.max(50, Math.floor(this.o.flushIntervalMs / 2)));
      this.timer.unref();
    }
    this.kick();
    return this;
  }

  /** Takes validated events; returns how many were accepted (all of them: overflow goes to disk). */
  push(events: PlaybackEvent[], receivedAt = Date.now()): number {
    if (this.closed) {
      this.spill(events.map((e) => ({ e, at: receivedAt })));
      this.counters.accepted += events.length;
      return events.length;
    }
    if (this.pending.length === 0) this.oldestAt = receivedAt;
    for (const e of events) this.pending.push({ e, at: receivedAt });
    this.counters.accepted += events.length;
    // Memory stays bounded: the oldest events go to disk, one batch-sized file at a time (each a
    // short synchronous write, instead of one long stall for the whole buffer).
    while (this.pending.length > this.o.maxBuffered) {
      this.spill(this.pending.splice(0, Math.min(this.o.batchSize, this.pending.length - this.o.maxBuffered + this.o.batchSize)));
      this.oldestAt = this.pending[0]?.at ?? 0;
    }
    if (this.pending.length >= this.o.batchSize) this.kick();
    return events.length;
  }

  get buffered(): number {
    return this.pending.length + (this.inflight?.rows.length ?? 0) + (this.building?.length ?? 0);
  }

  stats() {
    return { ...this.counters, buffered: this.buffered, spoolBytes: this.spoolBytes };
  }

  /** Sends everything buffered now (ignoring the age rule); resolves when the pump is idle. */
  async flush(): Promise<void> {
    this.oldestAt = 0;
    this.kick(true);
    while (this.pumping) await this.pumping;
  }

  /**
   * Stops the timer, tries to deliver what is buffered for up to `deadlineMs`, then spills the rest
   * (including a batch still in flight: retries are idempotent) so nothing is lost on shutdown.
   */
  async close(deadlineMs = 5_000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.timer = this.retryTimer = null;
    const until = Date.now() + deadlineMs;
    while (Date.now() < until && (this.pending.length > 0 || this.inflight) && this.failingSince() === 0) {
      await Promise.race([this.flush(), sleep(until - Date.now())]);
    }
    this.closed = true;
    if (this.inflight && !this.inflight.spoolFile) this.spillBatch(this.inflight);
    this.inflight = null;
    if (this.building) this.spill(this.building);
    this.building = null;
    const rest = this.pending;
    this.pending = [];
    this.spill(rest);
  }

  // --- internals -------------------------------------------------------------------------------

  private failingSince(): number {
    return this.retryAt;
  }

  private kick(force = false): void {
    if (this.closed && !force) return;
    if (this.pumping) {
      // A pump is finishing: look again right after it, or a size trigger would wait for the timer.
      this.again = true;
      return;
    }
    if (Date.now() < this.retryAt) return;
    this.pumping = this.pump(force).finally(() => {
      this.pumping = null;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  private async pump(force: boolean): Promise<void> {
    for (;;) {
      if (this.closed) return;
      if (!this.inflight) {
        const next = this.nextBatch(force);
        if (next && 'items' in next) {
          // Rows are built in slices with the event loop running in between: a 20,000-event
          // batch built at once would stall the gateway's 202 answers for tens of milliseconds.
          this.building = next.items;
          const built = await this.buildBatch(next.items);
          if (this.closed || this.building !== next.items) return; // close() spilled them
          this.building = null;
          this.inflight = { ...built, attempts: 0 };
        } else {
          this.inflight = next;
        }
      }
      const b = this.inflight;
      if (!b) return;
      try {
        await this.o.sink(b, { retry: b.attempts > 0 || b.spoolFile !== undefined });
      } catch (err) {
        b.attempts++;
        this.counters.failures++;
        this.retryAt = Date.now() + this.backoff;
        this.o.log?.warn({ err: String(err), batchId: b.batchId, attempts: b.attempts, retryInMs: this.backoff }, 'event batch not stored; will retry');
        this.scheduleRetry(this.backoff);
        this.backoff = Math.min(this.o.backoffMaxMs, this.backoff * 2);
        if (b.spoolFile) {
          // An outage must not condemn spooled data: only refusals of the data itself count.
          if (this.o.isPermanent(err)) {
            const n = (this.replayAttempts.get(b.spoolFile) ?? 0) + 1;
            this.replayAttempts.set(b.spoolFile, n);
            if (n >= this.o.maxReplayAttempts) this.quarantine(b);
          }
          this.inflight = null; // the file stays; it is picked up again later
        } else if (b.attempts >= this.o.maxAttempts) {
          this.spillBatch(b);
          this.inflight = null;
        }
        return;
      }
      this.retryAt = 0;
      this.backoff = this.o.backoffMinMs;
      this.counters.flushed += b.rows.length;
      if (b.spoolFile) {
        this.counters.replayed += b.rows.length;
        this.removeSpoolFile(b.spoolFile);
      }
      this.inflight = null;
    }
  }

  private nextBatch(force: boolean): InFlight | { items: { e: PlaybackEvent; at: number }[] } | null {
    const due = force || this.pending.length >= this.o.batchSize || Date.now() - this.oldestAt >= this.o.flushIntervalMs;
    if (this.pending.length > 0 && due) {
      // A backlog (ClickHouse was slow or down) goes in larger inserts: fewer parts, more rows/s.
      // (whole multiples of batchSize, so what is left keeps the size/age rule).
      const bs = this.o.batchSize;
      const size = this.pending.length >= 3 * bs ? Math.max(bs, Math.floor(Math.min(this.pending.length, this.o.maxBatchRows) / bs) * bs) : bs;
      const take = this.pending.splice(0, size);
      this.oldestAt = this.pending[0]?.at ?? 0;
      return { items: take };
    }
    // Spooled batches go after fresh ones, and only while the sink is not failing.
    if (this.pending.length === 0 || !due) {
      for (const f of this.spoolFiles()) {
        const loaded = this.loadSpool(f);
        if (loaded) return { ...loaded, attempts: 0, spoolFile: f };
      }
    }
    return null;
  }

  private async buildBatch(items: { e: PlaybackEvent; at: number }[], slice = 2_000): Promise<Batch> {
    const batchId = newBatchId();
    const rows: EventRow[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      if (i > 0 && i % slice === 0) await new Promise((r) => setImmediate(r));
      rows[i] = toRow(items[i]!.e, items[i]!.at, batchId, i);
    }
    return { batchId, rows };
  }

  private makeBatch(items: { e: PlaybackEvent; at: number }[]): Batch {
    const batchId = newBatchId();
    return { batchId, rows: items.map((it, i) => toRow(it.e, it.at, batchId, i)) };
  }

  private scheduleRetry(ms: number): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.retryAt = 0;
      this.kick();
    }, ms);
    this.retryTimer.unref();
  }

  private spill(items: { e: PlaybackEvent; at: number }[]): void {
    for (let i = 0; i < items.length; i += this.o.batchSize) {
      this.spillBatch(this.makeBatch(items.slice(i, i + this.o.batchSize)));
    }
  }

  /** One batch per file, written to a temp name and renamed, so a crash never leaves half a batch. */
  private spillBatch(b: Batch): void {
    if (b.rows.length === 0) return;
    const data = b.rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
    if (this.spoolBytes + data.length > this.o.maxSpoolBytes) {
      this.counters.dropped += b.rows.length;
      this.o.log?.error({ batchId: b.batchId, events: b.rows.length }, 'event spool full; events dropped');
      return;
    }
    const name = `${Date.now().toString().padStart(15, '0')}-${b.batchId}.jsonl`;
    const file = path.join(this.o.spoolDir, name);
    try {
      fs.writeFileSync(file + '.tmp', data);
      fs.renameSync(file + '.tmp', file);
      this.spoolBytes += data.length;
      this.counters.spilled += b.rows.length;
    } catch (err) {
      this.counters.dropped += b.rows.length;
      this.o.log?.error({ err: String(err), batchId: b.batchId }, 'cannot write event spool; events dropped');
    }
  }

  private spoolFiles(): string[] {
    try {
      return fs.readdirSync(this.o.spoolDir).filter((f) => f.endsWith('.jsonl')).sort();
    } catch {
      return [];
    }
  }

  private loadSpool(f: string): Batch | null {
    try {
      const text = fs.readFileSync(path.join(this.o.spoolDir, f), 'utf8');
      const rows = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as EventRow);
      if (rows.length === 0) throw new Error('empty spool file');
      return { batchId: rows[0]!.batch_id, rows };
    } catch (err) {
      this.o.log?.error({ err: String(err), file: f }, 'unreadable spool file set aside');
      this.renameBad(f);
      return null;
    }
  }

  private quarantine(b: InFlight): void {
    this.counters.dropped += b.rows.length;
    this.o.log?.error({ batchId: b.batchId, file: b.spoolFile }, 'spooled batch keeps failing; set aside as .bad');
    this.renameBad(b.spoolFile!);
  }

  private renameBad(f: string): void {
    const p = path.join(this.o.spoolDir, f);
    this.spoolBytes = Math.max(0, this.spoolBytes - fileSize(p));
    try {
      fs.renameSync(p, p + '.bad');
    } catch {
      /* already gone */
    }
    this.replayAttempts.delete(f);
  }

  private removeSpoolFile(f: string): void {
    const p = path.join(this.o.spoolDir, f);
    this.spoolBytes = Math.max(0, this.spoolBytes - fileSize(p));
    fs.rmSync(p, { force: true });
    this.replayAttempts.delete(f);
  }
}

function fileSize(p: string): number {
  try {
    return fs.statSync(p).size;
  } catch {
    return 0;
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
