// Bounded event buffer between the gateway's POST /v1/events and ClickHouse.
//
// - push() never waits: the gateway answers 202 at once. Each accepted event is written right away
//   as a TabSeparated row into byte slabs of the open batch, which has its batch id from the start
//   (event ids are `{batch_id}:{index}`). Buffered events are bytes off the V8 heap, not objects:
//   100,000 buffered event objects were what the young-generation GC kept copying and promoting,
//   the stalls behind the gateway's slowest 202s, and building rows for a 20,000-event batch in
//   one go stalled it again.
// - The open batch is sealed by size (batchSize) or age (flushIntervalMs); sealed batches go to the
//   sink one at a time, oldest first, as one TabSeparated INSERT.
// - A failed batch is retried with exponential backoff with the same rows (same ids); the
//   ClickHouse sink makes retries idempotent (see clickhouse/001_events.sql).
// - While ClickHouse is down the buffer fills; past maxBuffered the oldest sealed batches are
//   spilled to files under spoolDir (one batch per file, written atomically) and replayed once the
//   sink works again, also after a restart. Past maxSpoolBytes events are dropped and counted.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../common/log.ts';
import { eventRowToTsv, parseTsvRows, tsvRowRoom, writeTsvRow, type EventRow, type PlaybackEvent } from './events.ts';

/** What the sink writes: TabSeparated rows (EVENT_TSV_COLUMNS) of one or more accept-time batches. */
export interface Batch {
  /** The batch's id; several joined by '+' when a backlog is drained in one insert. */
  batchId: string;
  /** The batch_id values of its rows (a retry asks ClickHouse how many of them are stored). */
  batchIds: string[];
  rows: number;
  tsv: Buffer[];
  /** Distinct video ids of its rows (video_id leads the sorting key: the retry check names them). */
  videoIds: string[];
}
/**
 * Writes a batch; `retry` is true when the same batch may already be (partly) stored. The buffers
 * of `batch.tsv` are reused once the promise settles: a sink must not keep them.
 */
export type Sink = (batch: Batch, opts: { retry: boolean }) => Promise<void>;

/** The rows of a batch, decoded (tests and tools; the buffer itself never decodes). */
export const batchRows = (b: Batch): EventRow[] => parseTsvRows(Buffer.concat(b.tsv));

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

/** Slab size: a 20,000-event batch is ~2.6 MB of rows, about ten slabs. */
const SLAB_BYTES = 256 * 1024;

/**
 * Slabs are reused once their batch is stored or spilled. Fresh ones are external memory to V8, and
 * V8 starts a full mark-compact after every ~13 MB of new external memory: at 110,000 events/s
 * that was one every 500 ms, each stalling the 202s by up to 10 ms, with a 21 MB heap.
 */
class SlabPool {
  private readonly free: Buffer[] = [];
  constructor(private readonly max: number) {}
  take(bytes: number): Buffer {
    return bytes <= SLAB_BYTES ? (this.free.pop() ?? Buffer.allocUnsafeSlow(SLAB_BYTES)) : Buffer.allocUnsafeSlow(bytes);
  }
  /** Gives back the slabs under a sealed batch's row buffers (others, e.g. spool files, are left). */
  give(tsv: readonly Buffer[]): void {
    for (const b of tsv) {
      if (b.buffer.byteLength === SLAB_BYTES && b.byteOffset === 0 && this.free.length < this.max) this.free.push(Buffer.from(b.buffer));
    }
  }
}

/** The batch events are being accepted into: rows appended to byte slabs. */
class OpenBatch {
  readonly batchId = newBatchId();
  private readonly idBytes = Buffer.from(this.batchId, 'latin1');
  rows = 0;
  private readonly slabs: Buffer[] = [];
  private slab: Buffer | null = null;
  private pos = 0;
  private readonly videos = new Set<string>();
  constructor(
    readonly firstAt: number,
    private readonly pool: SlabPool,
  ) {}

  append(e: PlaybackEvent, receivedAtSec: number): void {
    const room = tsvRowRoom(e, this.idBytes.length);
    if (!this.slab || this.pos + room > this.slab.length) {
      if (this.slab) this.slabs.push(this.slab.subarray(0, this.pos));
      this.slab = this.pool.take(room);
      this.pos = 0;
    }
    this.pos = writeTsvRow(this.slab, this.pos, e, receivedAtSec, this.idBytes, this.rows);
    this.videos.add(e.videoId);
    this.rows++;
  }

  seal(): Batch {
    const tsv = this.slab ? [...this.slabs, this.slab.subarray(0, this.pos)] : this.slabs;
    return { batchId: this.batchId, batchIds: [this.batchId], rows: this.rows, tsv, videoIds: [...this.videos] };
  }
}

/** A batch of `events` as the buffer would seal it (tools and tests that call a sink directly). */
export function batchOf(events: readonly PlaybackEvent[], receivedAt = Date.now()): Batch {
  const b = new OpenBatch(receivedAt, new SlabPool(0));
  for (const e of events) b.append(e, Math.floor(receivedAt / 1000));
  return b.seal();
}

/** Several sealed batches as one insert (a backlog drains in fewer, larger inserts). */
function merge(batches: Batch[]): Batch {
  if (batches.length === 1) return batches[0]!;
  const batchIds = batches.flatMap((b) => b.batchIds);
  return {
    batchId: batchIds.join('+'),
    batchIds,
    rows: batches.reduce((n, b) => n + b.rows, 0),
    tsv: batches.flatMap((b) => b.tsv),
    videoIds: [...new Set(batches.flatMap((b) => b.videoIds))],
  };
}

export class EventBuffer {
  readonly counters: BufferCounters = { accepted: 0, flushed: 0, spilled: 0, replayed: 0, dropped: 0, failures: 0 };
  private open: OpenBatch | null = null;
  /** Sealed batches waiting for the sink, oldest first, and their rows. */
  private sealed: Batch[] = [];
  private sealedRows = 0;
  private inflight: InFlight | null = null;
  private pumping: Promise<void> | null = null;
  private retryAt = 0;
  private backoff: number;
  private timer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private spoolBytes = 0;
  private replayAttempts = new Map<string, number>();
  private readonly slabs: SlabPool;
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
    // Enough slabs for what may be buffered (~130 bytes a row), so a steady load allocates none.
    this.slabs = new SlabPool(Math.ceil((this.o.maxBuffered * 160) / SLAB_BYTES) + 2);
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
  push(events: readonly PlaybackEvent[], receivedAt = Date.now()): number {
    const sec = Math.floor(receivedAt / 1000);
    if (this.closed) {
      const b = new OpenBatch(receivedAt, this.slabs);
      for (const e of events) b.append(e, sec);
      this.spillBatch(b.seal());
      this.counters.accepted += events.length;
      return events.length;
    }
    for (const e of events) {
      this.open ??= new OpenBatch(receivedAt, this.slabs);
      this.open.append(e, sec);
      if (this.open.rows >= this.o.batchSize) this.sealOpen();
    }
    this.counters.accepted += events.length;
    // Memory stays bounded: the oldest sealed batches go to disk, one file each.
    while (this.sealedRows + (this.open?.rows ?? 0) > this.o.maxBuffered) {
      if (this.sealed.length === 0) this.sealOpen();
      const oldest = this.sealed.shift()!;
      this.sealedRows -= oldest.rows;
      this.spillBatch(oldest, true);
    }
    if (this.sealed.length > 0) this.kick();
    return events.length;
  }

  get buffered(): number {
    return this.sealedRows + (this.open?.rows ?? 0) + (this.inflight && !this.inflight.spoolFile ? this.inflight.rows : 0);
  }

  stats() {
    return { ...this.counters, buffered: this.buffered, spoolBytes: this.spoolBytes };
  }

  /** Sends everything buffered now (ignoring the age rule); resolves when the pump is idle. */
  async flush(): Promise<void> {
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
    while (Date.now() < until && (this.open || this.sealed.length > 0 || this.inflight) && this.failingSince() === 0) {
      await Promise.race([this.flush(), sleep(until - Date.now())]);
    }
    this.closed = true;
    if (this.inflight && !this.inflight.spoolFile) this.spillBatch(this.inflight);
    this.inflight = null;
    if (this.open) this.sealOpen();
    for (const b of this.sealed) this.spillBatch(b);
    this.sealed = [];
    this.sealedRows = 0;
  }

  // --- internals -------------------------------------------------------------------------------

  private sealOpen(): void {
    if (!this.open) return;
    const b = this.open.seal();
    this.open = null;
    if (b.rows === 0) return;
    this.sealed.push(b);
    this.sealedRows += b.rows;
  }

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
      this.inflight ??= this.nextBatch(force);
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
          this.spillBatch(b, true);
          this.inflight = null;
        }
        return;
      }
      this.retryAt = 0;
      this.backoff = this.o.backoffMinMs;
      this.counters.flushed += b.rows;
      if (b.spoolFile) {
        this.counters.replayed += b.rows;
        this.removeSpoolFile(b.spoolFile);
      } else {
        this.slabs.give(b.tsv);
      }
      this.inflight = null;
    }
  }

  private nextBatch(force: boolean): InFlight | null {
    if (this.sealed.length === 0 && this.open && (force || Date.now() - this.open.firstAt >= this.o.flushIntervalMs)) this.sealOpen();
    if (this.sealed.length > 0) {
      // A backlog (ClickHouse was slow or down) goes in larger inserts: fewer parts, more rows/s.
      const take = [this.sealed.shift()!];
      let rows = take[0]!.rows;
      if (this.sealedRows >= 3 * this.o.batchSize) {
        while (this.sealed.length > 0 && rows + this.sealed[0]!.rows <= this.o.maxBatchRows) {
          const b = this.sealed.shift()!;
          take.push(b);
          rows += b.rows;
        }
      }
      this.sealedRows -= rows;
      return { ...merge(take), attempts: 0 };
    }
    // Spooled batches go after fresh ones, and only while nothing fresh is due.
    if (!this.open || !force) {
      for (const f of this.spoolFiles()) {
        const loaded = this.loadSpool(f);
        if (loaded) return { ...loaded, attempts: 0, spoolFile: f };
      }
    }
    return null;
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

  /** One batch per file, written to a temp name and renamed, so a crash never leaves half a batch. */
  /** `recycle`: the batch's slabs may be reused afterwards (never while a sink may still read them). */
  private spillBatch(b: Batch, recycle = false): void {
    if (b.rows === 0) return;
    const data = Buffer.concat(b.tsv);
    if (recycle) this.slabs.give(b.tsv);
    if (this.spoolBytes + data.length > this.o.maxSpoolBytes) {
      this.counters.dropped += b.rows;
      this.o.log?.error({ batchId: b.batchId, events: b.rows }, 'event spool full; events dropped');
      return;
    }
    const name = `${Date.now().toString().padStart(15, '0')}-${b.batchIds[0]}.tsv`;
    const file = path.join(this.o.spoolDir, name);
    try {
      fs.writeFileSync(file + '.tmp', data);
      fs.renameSync(file + '.tmp', file);
      this.spoolBytes += data.length;
      this.counters.spilled += b.rows;
    } catch (err) {
      this.counters.dropped += b.rows;
      this.o.log?.error({ err: String(err), batchId: b.batchId }, 'cannot write event spool; events dropped');
    }
  }

  private spoolFiles(): string[] {
    try {
      // .jsonl: JSONEachRow files spooled by versions before the TabSeparated buffer.
      return fs.readdirSync(this.o.spoolDir).filter((f) => f.endsWith('.tsv') || f.endsWith('.jsonl')).sort();
    } catch {
      return [];
    }
  }

  private loadSpool(f: string): Batch | null {
    try {
      const raw = fs.readFileSync(path.join(this.o.spoolDir, f));
      const tsv = f.endsWith('.jsonl')
        ? Buffer.from(raw.toString('utf8').split('\n').filter(Boolean).map((l) => eventRowToTsv(JSON.parse(l) as Partial<EventRow>)).join(''), 'utf8')
        : raw;
      const rows = parseTsvRows(tsv);
      if (rows.length === 0) throw new Error('empty spool file');
      const batchIds = [...new Set(rows.map((r) => r.batch_id))];
      return { batchId: batchIds.join('+'), batchIds, rows: rows.length, tsv: [tsv], videoIds: [...new Set(rows.map((r) => r.video_id))] };
    } catch (err) {
      this.o.log?.error({ err: String(err), file: f }, 'unreadable spool file set aside');
      this.renameBad(f);
      return null;
    }
  }

  private quarantine(b: InFlight): void {
    this.counters.dropped += b.rows;
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
