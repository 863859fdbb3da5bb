/**
 * The WAL checkpoint, off the event loop: a worker thread (checkpoint-worker.ts) with its own
 * connection to the file runs `wal_checkpoint(PASSIVE)` and the write that restarts the WAL. Started
 * at a maintenance pass's first checkpoint and ended with the pass (`close`): a thread kept between passes
 * held ~9 MB of RSS, one started each pass costs a few ms of CPU on its own thread. Where a thread cannot be
 * had, the store's own connection does the same on the event loop.
 */
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { checkpointAndRestart } from './wal.js';

export interface CheckpointResult {
  /** ms the checkpoint and the restart write took, on whichever thread ran them */
  ms: number;
  /** whether they ran on the checkpoint thread */
  threaded: boolean;
}

export class Checkpointer {
  private worker: Worker | undefined;
  private failed = false;
  private closing: Promise<void> | undefined;
  private pending: { resolve: (r: CheckpointResult) => void; reject: (e: Error) => void } | undefined;

  constructor(
    private readonly path: string,
    private readonly db: Database.Database,
    /** the thread's script (tests pass one that cannot start, to run the fallback) */
    private readonly script = new URL('./checkpoint-worker.js', import.meta.url),
  ) {}

  async run(): Promise<CheckpointResult> {
    if (this.closing) await this.closing;
    const w = this.thread();
    if (!w) return this.here();
    return new Promise<CheckpointResult>((resolve, reject) => {
      this.pending = { resolve, reject };
      w.ref();
      w.postMessage('checkpoint');
    });
  }

  /**
   * The checkpoint on the store's connection, on the event loop (no thread to be had). The connection never waits
   * for the lock (schema.ts): taken by another connection, the restart write is left out (the next window's write
   * restarts the WAL instead).
   */
  private here(): CheckpointResult {
    const t0 = performance.now();
    checkpointAndRestart(this.db);
    return { ms: performance.now() - t0, threaded: false };
  }

  private thread(): Worker | undefined {
    if (this.worker || this.failed) return this.worker;
    try {
      const w = new Worker(this.script, {
        workerData: { path: this.path },
        // it holds a connection and a few objects: a small heap
        resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 },
      });
      w.unref();
      w.on('message', (m: { ms: number; error?: string }) => {
        const p = this.pending;
        this.pending = undefined;
        w.unref();
        if (!p) return;
        if (m.error) p.reject(new Error(m.error));
        else p.resolve({ ms: m.ms, threaded: true });
      });
      const gone = (err?: Error) => {
        if (this.worker !== w) return;
        this.worker = undefined;
        // a thread that could not start (or died) is not tried again: the checkpoint runs here from now on,
        // the one asked of it too
        if (err) this.failed = true;
        const p = this.pending;
        this.pending = undefined;
        if (!p) return;
        if (!err) p.reject(new Error('checkpoint thread exited'));
        else
          try {
            p.resolve(this.here());
          } catch (e) {
            p.reject(e as Error);
          }
      };
      w.on('error', gone);
      w.on('exit', () => gone());
      this.worker = w;
      return w;
    } catch {
      this.failed = true;
      return undefined;
    }
  }

  /** Ends the thread (after the checkpoint it may be running) and closes its connection. */
  async close(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    if (!this.closing) {
      this.closing = new Promise<void>((r) =>
        w.once('exit', () => {
          this.closing = undefined;
          r();
        }),
      );
      w.ref();
      w.postMessage('close');
    }
    await this.closing;
  }
}
