/**
 * The WAL checkpoint's thread (store/checkpoint.ts): its own connection to the store's file, so the copy of
 * the WAL into the database (71–120 ms at 100k series, more on a busy disk) never holds the event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { checkpointAndRestart } from './wal.js';

const port = parentPort;
if (!port) throw new Error('checkpoint-worker: run as a worker thread');
const db = new Database((workerData as { path: string }).path);
db.pragma('busy_timeout = 2000');
// as the store's own connection: its commit is not fsynced (the WAL's new header is), so it holds the lock less long
db.pragma('synchronous = NORMAL');
port.on('message', (m: 'checkpoint' | 'close') => {
  if (m === 'close') {
    db.close();
    port.close();
    return;
  }
  const t0 = performance.now();
  try {
    const r = checkpointAndRestart(db);
    port.postMessage({ ms: performance.now() - t0, ...r });
  } catch (err) {
    const e = err as Error & { code?: string };
    port.postMessage({ ms: performance.now() - t0, error: `${e.code ?? 'error'}: ${e.message}` });
  }
});
