import { statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { copyOf, type FlushResult, keepable } from '../aggregate/aggregator.js';
import { Sketch } from '../aggregate/sketch.js';
import { report } from '../errors.js';
import type { StatsdEvent } from '../ingest/statsd-parse.js';
import type { Sink } from '../sinks/sink.js';
import { Checkpointer } from './checkpoint.js';
import { Compactor } from './compactor.js';
import { Core } from './core.js';
import { Events } from './events.js';
import { BUSY_RETRY_MS, LockPatience, Pacer, threadCpu } from './pace.js';
import { listInstances, listSeries, pick, runQuery } from './query.js';
import {
  type Instance,
  type InstanceFilter,
  parseTags,
  type Query,
  type QueryBudgetLike,
  type QueryResult,
  type SeriesInfo,
  type StoredEvent,
  type StoreReader,
  tagsMatch,
} from './reader.js';
import { isBusy, type Level, levelsFor, openStore } from './schema.js';
import { Writer } from './writer.js';

export { StoreError } from './schema.js';

export interface Retention {
  /** ms each resolution is kept: raw windows, 1-minute and 1-hour rollups */
  raw: number;
  m1: number;
  h1: number;
}

export const DEFAULT_RETENTION: Retention = { raw: 24 * 3600_000, m1: 15 * 86400_000, h1: 365 * 86400_000 };

export interface SqliteStoreOptions {
  path: string;
  /** the agent's window, ms: the raw resolution */
  flushInterval: number;
  retention?: Retention;
  /** ms an instance may be silent before it is gone: left out of `instances()` and deleted (default 1 h) */
  instanceRetention?: number;
  /** a cap on the file's size in bytes: past it, writes fail as a full disk would and windows are held */
  maxBytes?: number;
  /** windows held in memory while the database cannot be written (default 360: an hour at 10 s) */
  maxHeld?: number;
  /**
   * SQLite's page cache, KiB (default 8 MiB: the chunks are read in series order and the head appended, so a
   * bigger cache bought no speed in the store bench, and a 64 MiB one, filled by compaction, held ~60 MB more RSS)
   */
  cacheKiB?: number;
  /** bytes of head windows kept in memory for queries (default 16 MiB; tests set a few windows' worth, to make the slabs reused) */
  headCacheBytes?: number;
  /**
   * at most this many points a compaction transaction (default 3000: 500 series × a minute of 10 s windows); a
   * transaction ends sooner when ~12 ms are spent (store/pace.ts), with a turn of the event loop between
   */
  batch?: number;
}

/** The store's state, for /api/v1/self and /heartbeat. */
export interface StoreStatus {
  ok: boolean;
  /** the last write error, while writes fail */
  error?: string;
  windows_written: number;
  points_written: number;
  /** windows waiting in memory for the database to take writes again */
  windows_held: number;
  /** windows dropped because the hold was full */
  windows_dropped: number;
  /**
   * window writes that found SQLite's write lock taken (by the checkpoint thread's restart write): not an error, the
   * window held and written again ~25 ms later, before newer ones
   */
  writes_deferred: number;
  /** DogStatsD events dropped while the write lock stayed taken (past the 100 held) */
  events_dropped: number;
  /** maintenance slices that found the lock taken: nothing done, tried again ~25 ms later */
  maintain_deferred: number;
  last_write_ms: number;
  /**
   * the same write's CPU (user + system), minor page faults, voluntary context switches (waits: I/O, locks) and
   * involuntary ones (the CPU taken by another process): what makes its wall time more than its CPU
   */
  last_write_cpu_ms: number;
  last_write_minflt: number;
  last_write_vcsw: number;
  last_write_ivcsw: number;
  /**
   * the same write's CPU on the event loop's thread alone: `last_write_cpu_ms` is the process's, which adds what other
   * threads (V8's concurrent GC, the checkpoint thread) ran meanwhile on the same cores
   */
  last_write_thread_cpu_ms: number;
  /**
   * the last maintenance pass (compaction, rollup, retention, checkpoint): wall from start to end; of it the checkpoint
   * (on its own thread); its longest stretch on the event loop without a turn (wall), the step it was in, and the most
   * CPU of the event loop's thread one stretch took (its length on a core of its own)
   */
  last_maintain_ms: number;
  last_checkpoint_ms: number;
  last_maintain_block_ms: number;
  last_maintain_block_in: string;
  last_maintain_block_cpu_ms: number;
  /** compaction passes and hourly rollups done */
  rollups: number;
  file_bytes: number;
}

/**
 * The embedded store: one SQLite file (WAL) under the data dir, laid out like a TSDB (see
 * docs/agent-store.md). Each window is appended to the head as one row holding every series
 * (writer.ts, head.ts); a background compactor folds head windows into per-series chunks —
 * delta-of-delta times, decimal or XOR'd values, sketches packed (codec.ts) — and rolls them up
 * to minutes and hours, merging each service's and host's sketches on the way (compactor.ts).
 * Queries read chunks plus the head (query.ts).
 */
export class SqliteStore implements Sink, StoreReader {
  readonly name = 'sqlite';
  readonly kind = 'sqlite';
  readonly db: Database.Database;
  readonly levels: Level[];
  private readonly core: Core;
  private readonly writer: Writer;
  private readonly compactor: Compactor;
  private readonly eventLog: Events;
  private readonly checkpointer: Checkpointer;
  private readonly held: FlushResult[] = [];
  private readonly maxHeld: number;
  private timer: NodeJS.Timeout | undefined;
  /** the next try of windows (and events) held because the write lock was taken */
  private retry: NodeJS.Timeout | undefined;
  /** whether the last failed write found the lock taken (tried again on a timer) rather than failed */
  private busy = false;
  /** how long window writes have found the lock taken, one after another */
  private readonly patience = new LockPatience();
  /** events that found the lock taken, added again with the held windows */
  private readonly heldEvents: StatsdEvent[] = [];
  private maintaining = false;
  private loggedAt = 0;
  private closed = false;
  readonly status: StoreStatus = {
    ok: true,
    windows_written: 0,
    points_written: 0,
    windows_held: 0,
    windows_dropped: 0,
    writes_deferred: 0,
    events_dropped: 0,
    maintain_deferred: 0,
    last_write_ms: 0,
    last_write_cpu_ms: 0,
    last_write_minflt: 0,
    last_write_vcsw: 0,
    last_write_ivcsw: 0,
    last_write_thread_cpu_ms: 0,
    last_maintain_ms: 0,
    last_checkpoint_ms: 0,
    last_maintain_block_ms: 0,
    last_maintain_block_in: '',
    last_maintain_block_cpu_ms: 0,
    rollups: 0,
    file_bytes: 0,
  };

  constructor(private readonly o: SqliteStoreOptions) {
    this.levels = levelsFor(o.flushInterval, o.retention ?? DEFAULT_RETENTION);
    this.maxHeld = o.maxHeld ?? 360;
    this.db = openStore(o.path, this.levels);
    const db = this.db;
    db.pragma(`cache_size = -${o.cacheKiB ?? 8192}`);
    if (o.maxBytes) {
      const page = db.pragma('page_size', { simple: true }) as number;
      db.pragma(`max_page_count = ${Math.max(16, Math.floor(o.maxBytes / page))}`);
    }
    this.core = new Core(db, this.levels, o.headCacheBytes);
    this.writer = new Writer(this.core);
    this.core.onBusy = () => this.status.maintain_deferred++;
    this.compactor = new Compactor(this.core, o.batch ?? 3000, () => this.closed);
    this.eventLog = new Events(db);
    this.checkpointer = new Checkpointer(o.path, db);
    this.status.file_bytes = fileBytes(o.path);
  }

  /** Starts compaction, rollup and retention on a timer (unref'd): every `every` ms, in batches. */
  start(every = 15_000): void {
    this.timer = setInterval(() => void this.maintain(), every);
    this.timer.unref();
  }

  // ---------------------------------------------------------------- writing

  write(w: FlushResult): void {
    if (this.closed) return;
    if (!this.drain() || !this.tryWrite(w)) this.hold(w);
    this.settle();
  }

  /** Writes the held windows, in order, until one fails; whether none is left. */
  private drain(): boolean {
    while (this.held.length > 0) {
      if (!this.tryWrite(this.held[0] as FlushResult)) return false;
      this.held.shift();
    }
    while (this.heldEvents.length > 0) {
      if (!this.addEvent(this.heldEvents[0] as StatsdEvent)) return false;
      this.heldEvents.shift();
    }
    return true;
  }

  /**
   * After a write: the hold's count, and a try again soon when the lock was taken (the checkpoint thread's restart
   * write ends within a second); a failing file is tried again with the next window, as before.
   */
  private settle(): void {
    this.status.windows_held = this.held.length;
    if (!this.busy || this.retry || this.closed || (this.held.length === 0 && this.heldEvents.length === 0)) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (this.closed) return;
      this.drain();
      this.settle();
    }, BUSY_RETRY_MS);
    this.retry.unref();
  }

  private hold(w: FlushResult): void {
    // the aggregator's window holds its sketches as bytes, in buffers a later window reuses once the
    // agent retires it: copied into its own (only here, on a failed write). Any other window's sketches
    // are released by the agent after this call: a serialised copy is kept.
    const copy: FlushResult = w.cols
      ? keepable(w)
      : {
          start: w.start,
          end: w.end,
          // (a window's series are read-only views of its numbers: only a sketch needs copying)
          series: w.series.map((f) => {
            if (!f.sketch) return f;
            const c = copyOf(f);
            c.sketch = Sketch.decode(f.sketch.encode(), f.sketch);
            return c;
          }),
        };
    this.held.push(copy);
    if (this.held.length > this.maxHeld) {
      this.held.shift();
      this.status.windows_dropped++;
    }
  }

  private tryWrite(w: FlushResult): boolean {
    this.busy = false;
    const t0 = performance.now();
    const r0 = process.resourceUsage();
    const c0 = threadCpu();
    try {
      this.writer.write(w);
      this.patience.had();
      if (!this.status.ok && this.held.length <= 1) report('EKG_AGENT_ERR_STORE', `store: writing again after: ${this.status.error}`);
      this.status.ok = true;
      this.status.error = undefined;
      this.status.windows_written++;
      this.status.points_written += w.cols?.n ?? w.series.length;
      const t1 = performance.now();
      const r1 = process.resourceUsage();
      this.status.last_write_thread_cpu_ms = Math.round((threadCpu() - c0) * 1000) / 1000;
      this.status.last_write_ms = Math.round((t1 - t0) * 1000) / 1000;
      this.status.last_write_cpu_ms = (r1.userCPUTime - r0.userCPUTime + r1.systemCPUTime - r0.systemCPUTime) / 1000;
      this.status.last_write_minflt = r1.minorPageFault - r0.minorPageFault;
      this.status.last_write_vcsw = r1.voluntaryContextSwitches - r0.voluntaryContextSwitches;
      this.status.last_write_ivcsw = r1.involuntaryContextSwitches - r0.involuntaryContextSwitches;
      return true;
    } catch (err) {
      let e = err as Error & { code?: string };
      if (isBusy(err)) {
        // the lock taken (never waited for: schema.ts): not an error, the window is written again shortly
        this.busy = true;
        this.status.writes_deferred++;
        // unless it stays taken: not the checkpoint thread's (pace.ts), and said as any failure is
        const held = this.patience.taken();
        if (!held) return false;
        e = held;
      }
      const msg = `${e.code ?? 'error'}: ${e.message}`;
      // one line on the way down, and at most one a minute while it flaps
      if (this.status.ok && Date.now() - this.loggedAt > 60_000) {
        this.loggedAt = Date.now();
        report('EKG_AGENT_ERR_STORE', `store: cannot write ${this.o.path} (${msg}); holding windows in memory`);
      }
      this.status.ok = false;
      this.status.error = msg;
      return false;
    }
  }

  // ---------------------------------------------------------------- compaction, rollup and retention

  /**
   * Folds complete minutes of head windows into chunks and rolls them up (raw → 1 min → 1 h), then
   * deletes what is past retention (at most every 10 minutes): a transaction a slice of ~12 ms (or
   * `batch` points) with a turn of the event loop between; then checkpoints the WAL on a thread of its own.
   * Idempotent: a crash midway redoes the step it was in.
   */
  async maintain(now = Date.now()): Promise<void> {
    if (this.maintaining || this.closed) return;
    this.maintaining = true;
    const t0 = performance.now();
    // (no checkpoint once the store is closing: its thread is ended, and one started now would hold the lock)
    const pace = new Pacer(() => (this.closed ? Promise.resolve() : this.checkpointer.run()));
    try {
      this.status.rollups += await this.compactor.run(now, pace);
      if (!this.closed && now - this.core.meta('pruned_at') > 600_000) {
        await this.compactor.prune(now, pace);
        while (!this.closed && !this.core.tryTx(() => this.core.setMeta('pruned_at', now))) await pace.busy('prune');
      }
      if (!this.closed) {
        // gone instances' rows are deleted so restarts do not pile up (the answers leave them out already)
        const gone = this.goneBefore(now);
        const del = this.db.prepare('DELETE FROM instances WHERE last_seen < ? AND (health_at IS NULL OR health_at < ?)');
        while (!this.closed && this.core.tryRun(del, gone, gone) === undefined) await pace.busy('instances');
        pace.note('instances');
        // the WAL copied back, off the write path (a window's commit rarely reaches the auto-checkpoint), and restarted
        // (checkpoint-worker.ts) on the checkpoint's thread: 71–120 ms at 100k series, which held the event loop here
        const c = await this.checkpointer.run();
        pace.restart();
        if (!c.threaded && c.ms > pace.longest) {
          pace.longest = c.ms;
          pace.longestIn = 'checkpoint';
          pace.longestCpu = Math.max(pace.longestCpu, c.ms);
        }
        this.status.last_checkpoint_ms = Math.round(c.ms * 1000) / 1000;
        this.status.file_bytes = fileBytes(this.o.path);
      }
    } catch (err) {
      const e = err as Error & { code?: string };
      // (a pass the store's close interrupted has no error to tell)
      if (!this.closed) this.status.error = `maintenance: ${e.code ?? 'error'}: ${e.message}`;
    } finally {
      pace.note('end');
      // the checkpoint thread ends with the pass (it would hold ~9 MB until the next)
      await this.checkpointer.close();
      this.maintaining = false;
      this.status.last_maintain_ms = Math.round((performance.now() - t0) * 1000) / 1000;
      this.status.last_maintain_block_ms = Math.round(pace.longest * 1000) / 1000;
      this.status.last_maintain_block_in = pace.longestIn;
      this.status.last_maintain_block_cpu_ms = Math.round(pace.longestCpu * 1000) / 1000;
    }
  }

  // ---------------------------------------------------------------- reading

  async instances(now = Date.now()): Promise<Instance[]> {
    return listInstances(this.db, this.o.flushInterval, this.goneBefore(now), now).instances;
  }

  async listInstances(filter: InstanceFilter, now = Date.now()): Promise<{ instances: Instance[]; total: number }> {
    return listInstances(this.db, this.o.flushInterval, this.goneBefore(now), now, filter);
  }

  /** Gone: silent past --instance-retention (docs/time-model.md); the time before which an instance is gone. */
  private goneBefore(now: number): number {
    return now - (this.o.instanceRetention ?? 3_600_000);
  }

  /** The series listing leaves out the series of gone instances; their data stays queryable by name until retention. */
  async series(
    match: string,
    tags: Record<string, string>,
    limit = 10_000,
    now = Date.now(),
    budget?: QueryBudgetLike,
  ): Promise<SeriesInfo[]> {
    return listSeries(this.core, match, tags, limit, this.goneBefore(now), budget);
  }

  /** The resolution a query reads: the coarsest one no wider than the step that still covers `from`. */
  pick(q: Pick<Query, 'from' | 'to' | 'step'>, now = Date.now()): { level: Level; step: number } {
    return pick(this.levels, q, now);
  }

  /** The query API's default aggregation needs the kind of one name: its series, not every series. */
  async seriesKind(name: string, tags: Record<string, string>): Promise<SeriesInfo['kind'] | undefined> {
    for (const m of this.core.ids.of(name)) if (tagsMatch(parseTags(m.tags), tags)) return m.kind;
    return undefined;
  }

  /** `now` (epoch ms, default the clock) decides which resolutions still cover `from`; tests pass the time their data is placed at. */
  async query(q: Query, now = Date.now()): Promise<QueryResult> {
    return runQuery(this.core, q, now);
  }

  /** Points stored at raw resolution: in head windows and in chunks (for tests and benchmarks). */
  points(): number {
    const head = this.db.prepare('SELECT ifnull(sum(n), 0) FROM head').pluck().get() as number;
    const chunks = this.db.prepare('SELECT ifnull(sum(n), 0) FROM chunks WHERE res = 0 AND series > 0').pluck().get() as number;
    return head + chunks;
  }

  /** Keeps a DogStatsD event (a stall) with the instance its tags name; the last 10,000 are kept. */
  event(e: StatsdEvent): void {
    if (this.closed) return;
    if (this.heldEvents.length > 0 || !this.addEvent(e)) {
      // the lock taken: kept (a few) and added with the held windows
      if (this.heldEvents.length < 100) this.heldEvents.push(e);
      else this.status.events_dropped++;
      this.settle();
    }
  }

  /** Adds the event; false when the write lock was taken. */
  private addEvent(e: StatsdEvent): boolean {
    try {
      this.eventLog.add(e);
      return true;
    } catch (err) {
      if (!isBusy(err)) throw err;
      this.busy = true;
      return false;
    }
  }

  async events(from: number, to: number, key?: string, service?: string): Promise<StoredEvent[]> {
    return this.eventLog.list(from, to, key, service);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // the last window (the agent flushes it before closing sinks) is written first
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.retry) clearTimeout(this.retry);
    await this.checkpointer.close();
    // the checkpoint thread gone, nothing holds the lock: windows held for it are written now
    if (this.busy) this.drain();
    this.status.windows_held = this.held.length;
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // a checkpoint is an optimisation; the WAL is replayed at the next open
    }
    this.db.close();
  }
}

function fileBytes(path: string): number {
  let n = 0;
  for (const p of [path, `${path}-wal`]) {
    try {
      n += statSync(p).size;
    } catch {
      // not there (yet)
    }
  }
  return n;
}
