/**
 * The WAL's checkpoint and restart, one piece of code for both places it runs: the checkpoint thread's own
 * connection (checkpoint-worker.ts) and, where no thread can be had, the store's connection (checkpoint.ts).
 * Imports nothing of the store: the thread loads this module alone.
 */
import type Database from 'better-sqlite3';

/** Whether `err` is SQLite's "the lock is taken" (SQLITE_BUSY and its extended codes): try again, not a failure. */
export function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

/**
 * `wal_checkpoint(PASSIVE)` (it takes no writer lock: window writes go on meanwhile), then a one-row write that
 * restarts the WAL after a complete checkpoint — the first write after one rewinds the WAL and fsyncs its new header
 * (0.5 ms idle, 66 ms to 1 s beside other writers), which would otherwise be the next window's write, in the flush.
 * The write takes the lock first (IMMEDIATE: a deferred transaction upgrading its read fails at once, SQLite's busy
 * handler not called for the upgrade) and waits as long as the connection's busy timeout (the thread's 2 s, the
 * store's 0); a lock held past that leaves the restart to the next write (it is an optimisation).
 */
export function checkpointAndRestart(db: Database.Database): { log: number; checkpointed: number } {
  const [r] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
  try {
    db.transaction(() => {
      const n = Number((db.prepare("SELECT value FROM meta WHERE key = 'checkpoints'").pluck().get() as string | undefined) ?? 0);
      db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('checkpoints', ?)").run(String(n + 1));
    }).immediate();
  } catch (err) {
    if (!isBusy(err)) throw err;
  }
  return { log: r?.log ?? 0, checkpointed: r?.checkpointed ?? 0 };
}
