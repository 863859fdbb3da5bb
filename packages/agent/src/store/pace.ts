/**
 * Pacing for the store's maintenance: it runs on the event loop beside ingest, so it works in slices
 * of about `SLICE_MS` and gives the loop a turn between them. At 100k metrics/s a UDP receive buffer
 * holds ~80 ms of datagrams: a slice far shorter than that leaves the sockets read in time.
 */
import { openSync, readSync } from 'node:fs';

/** ms of maintenance before a turn of the event loop (a slice checks it between series, so it ends a little past) */
export const SLICE_MS = 12;

/**
 * ms of maintenance between two checkpoints of the WAL (on their thread, in place of a turn). A pass over
 * 100k series writes ~2,000 pages of WAL in ~6 s; left to grow, the WAL reached the auto-checkpoint's
 * 4,096 pages and the commit that crossed it copied them back on the event loop (150 ms of system CPU).
 */
export const CHECKPOINT_EVERY_MS = 2000;

/**
 * ms before a slice or a window write that found SQLite's write lock taken (the checkpoint thread's restart write,
 * 66 ms to 1 s on a busy disk) tries again: a few tries a lock, each a BEGIN IMMEDIATE that fails at once.
 */
export const BUSY_RETRY_MS = 25;

/**
 * ms the write lock may stay taken before the store says so: the checkpoint thread holds it ~1 s at most (its restart
 * write's commit on a busy disk), so a lock held longer is another process's (a `sqlite3` shell in a transaction, a
 * backup tool): a window write then fails as on a full disk (held, `store.ok` false, one stderr line, /heartbeat
 * degraded), and a maintenance pass ends with the reason in `store.error`, to be tried again at the next pass.
 */
export const LOCK_PATIENCE_MS = 5000;

/** How long the write lock has been found taken, try after try: past `LOCK_PATIENCE_MS`, a failure to say. */
export class LockPatience {
  private since: number | undefined;

  /** The lock found taken: undefined while that is within patience, else the error to say (`EKG_STORE_LOCKED`). */
  taken(now = Date.now()): (Error & { code: string }) | undefined {
    this.since ??= now;
    const ms = now - this.since;
    if (ms < LOCK_PATIENCE_MS) return undefined;
    return Object.assign(new Error(`another connection has held the file's write lock for ${(ms / 1000).toFixed(1)} s`), {
      code: 'EKG_STORE_LOCKED',
    });
  }

  /** The lock was had: patience starts over. */
  had(): void {
    this.since = undefined;
  }
}

export class Pacer {
  private from = performance.now();
  private cpuFrom = threadCpu();
  /** the longest stretch without a turn so far, wall ms, and the step it was in */
  longest = 0;
  longestIn = '';
  /**
   * the most CPU of the event loop's thread one stretch took, ms: the stretch's length on a core of its own (wall
   * time on a shared machine adds the time other processes had the core)
   */
  longestCpu = 0;

  private checkpointed = performance.now();
  private readonly patience = new LockPatience();

  constructor(
    /** the WAL's checkpoint (store/checkpoint.ts), run at a turn once `CHECKPOINT_EVERY_MS` have passed since the last */
    private readonly checkpoint?: () => Promise<unknown>,
    private readonly slice = SLICE_MS,
  ) {}

  /** Whether this slice is spent: end the transaction and call `turn`. */
  due(): boolean {
    return performance.now() - this.from >= this.slice;
  }

  /**
   * Ends the slice (noting its length against `step`) and gives the event loop as long as the slice took: one turn
   * (`setImmediate`) reads at most 32 datagrams a socket (libuv), ~12 ms of them at 100k metrics/s in 20-line packets,
   * so slices with a turn between kept the loop busy with maintenance while the receive buffer filled (9,000 of
   * 100,000 metrics/s dropped during a pass in the agent bench). Half the loop's time at most goes to maintenance.
   */
  async turn(step: string): Promise<void> {
    const spent = this.note(step);
    if (this.checkpoint && performance.now() - this.checkpointed >= CHECKPOINT_EVERY_MS) {
      // between two transactions: the checkpoint thread's write can restart the WAL, no reader holding it
      await this.checkpoint();
      this.checkpointed = performance.now();
    } else if (spent >= 1) await new Promise<void>((r) => setTimeout(r, Math.min(spent, 2 * this.slice)));
    else await new Promise<void>((r) => setImmediate(r));
    this.restart();
  }

  /**
   * The slice found the write lock taken (it ran nothing): ended, and tried again after `BUSY_RETRY_MS`; throws
   * (`LockPatience`) once the lock has stayed taken `LOCK_PATIENCE_MS`, the pass then ending.
   */
  async busy(step: string): Promise<void> {
    this.mark(step);
    const held = this.patience.taken();
    if (held) {
      this.patience.had();
      throw held;
    }
    await new Promise<void>((r) => setTimeout(r, BUSY_RETRY_MS));
    this.restart();
  }

  /** Ends the slice without a turn (the pass is over, or an await follows that is a turn already); its length, ms. */
  note(step: string): number {
    // a step done: the lock was had
    this.patience.had();
    return this.mark(step);
  }

  private mark(step: string): number {
    const d = performance.now() - this.from;
    if (d > this.longest) {
      this.longest = d;
      this.longestIn = step;
    }
    const c = threadCpu() - this.cpuFrom;
    if (c > this.longestCpu) this.longestCpu = c;
    return d;
  }

  /** A new slice starts (after an await of something else, e.g. the checkpoint thread). */
  restart(): void {
    this.from = performance.now();
    this.cpuFrom = threadCpu();
  }
}

let schedstat: number | undefined | null;
const buf = Buffer.alloc(64);

/**
 * CPU ms of the event loop's thread alone (Linux: its schedstat, in ns, read through a file kept open: ~6 µs);
 * elsewhere the process's, which adds other threads' (GC helpers, the checkpoint thread).
 */
export function threadCpu(): number {
  if (schedstat === undefined) {
    try {
      // the main thread's id is the process id
      schedstat = openSync(`/proc/self/task/${process.pid}/schedstat`, 'r');
    } catch {
      schedstat = null;
    }
  }
  if (schedstat !== null) {
    try {
      const n = readSync(schedstat, buf, 0, buf.length, 0);
      return Number.parseInt(buf.toString('latin1', 0, n), 10) / 1e6;
    } catch {
      schedstat = null;
    }
  }
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
