/**
 * The WAL checkpoint's thread (store/checkpoint.ts): its own connection to the store's file, so the copy of
 * the WAL into the database (71–120 ms at 100k series, more on a busy disk) never holds the event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const port = parentPort;
if (!port) throw new Error('checkpoint-worker: run as a worker thread');
const db = new Database((workerData as { path: string }).path);
db.pragma('busy_timeout = 2000');
// as the store's own connection: its commit is not fsynced (the WAL's new header is), so it holds the lock less long
db.pragma('synchronous = NORMAL');
const getMeta = db.prepare("SELECT value FROM meta WHERE key = 'checkpoints'").pluck();
const setMeta = db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('checkpoints', ?)");
const bump = db.transaction(() => setMeta.run(String(Number(getMeta.get() ?? 0) + 1)));

port.on('message', (m: 'checkpoint' | 'close') => {
  if (m === 'close') {
    db.close();
    port.close();
    return;
  }
  const t0 = performance.now();
  try {
    // PASSIVE: it takes no writer lock, so the agent's window writes go on meanwhile
    const [r] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
    // a one-row write restarts the WAL after a complete checkpoint: the next write after one rewinds the WAL
    // and fsyncs its new header (0.5 ms idle, 66 ms to 1 s beside other writers), which was the next
    // window's write, in the flush. Here the agent's write waits on it only if it comes in that moment.
    try {
      // IMMEDIATE: the lock taken first, waited for (busy_timeout) while a window's write holds it; a deferred transaction
      // upgrading its read to a write fails at once instead, the busy handler not called for that upgrade
      bump.immediate();
    } catch (err) {
      // the lock held past the busy timeout (another connection's long write): the restart is an optimisation, left
      // to the next write
      if (!String((err as { code?: unknown }).code).startsWith('SQLITE_BUSY')) throw err;
    }
    port.postMessage({ ms: performance.now() - t0, log: r?.log ?? 0, checkpointed: r?.checkpointed ?? 0 });
  } catch (err) {
    const e = err as Error & { code?: string };
    port.postMessage({ ms: performance.now() - t0, error: `${e.code ?? 'error'}: ${e.message}` });
  }
});
