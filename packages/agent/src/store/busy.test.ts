import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { Aggregator, type FlushResult } from '../aggregate/aggregator.js';
import { Checkpointer } from './checkpoint.js';
import { SqliteStore } from './sqlite.js';

// The store's connection never waits for SQLite's write lock (schema.ts): another connection holding it stands for
// the checkpoint thread's WAL-restart write. Both connections are on this thread, so a store call that waited for
// the lock could never see it released: it returns while the lock is still held only by not waiting at all.

const dir = mkdtempSync(join(tmpdir(), 'ekg-busy-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const path = () => join(dir, `t${n++}`, 'ekg.db');

/** `count` windows of 10 s ending at `firstEnd`, `firstEnd + 10 s`, …: a gauge and a timer. */
function windows(firstEnd: number, count: number): FlushResult[] {
  const agg = new Aggregator();
  agg.flush(firstEnd - 10_000);
  const out: FlushResult[] = [];
  for (let i = 0; i < count; i++) {
    agg.add({ name: 'heap', tags: 'pid:100,service:api', type: 'g', value: 1000 + i, weight: 1 });
    for (let k = 1; k <= 10; k++) agg.add({ name: 'lat', tags: 'pid:100,service:api', type: 'ms', value: k, weight: 1 });
    out.push(agg.flush(firstEnd + i * 10_000));
  }
  return out;
}

/** Turns of the event loop until `cond` holds (the test's own timeout bounds it). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

test('a window write that finds the write lock taken returns at once: held and counted, not an error; written in order once the lock is free', async () => {
  const p = path();
  const store = new SqliteStore({ path: p, flushInterval: 10_000 });
  after(() => store.close());
  const first = Math.floor(Date.now() / 10_000) * 10_000 - 600_000;
  const ws = windows(first, 4);
  // no wait at all for the lock: a wait of any length returns while the lock is held too (with SQLITE_BUSY at its end)
  assert.equal(store.db.pragma('busy_timeout', { simple: true }), 0);
  store.write(ws[0] as FlushResult);
  const other = new Database(p);
  after(() => other.close());
  other.exec('BEGIN IMMEDIATE');
  store.write(ws[1] as FlushResult);
  store.event({ title: 'stall', text: 'loop blocked', ts: Math.round(first / 1000), tags: 'pid:100,service:api' });
  store.write(ws[2] as FlushResult);
  // back while the lock is still held: nothing waited for it, and nothing failed
  assert.equal(other.inTransaction, true);
  assert.equal(store.status.ok, true);
  assert.equal(store.status.error, undefined);
  assert.equal(store.status.windows_held, 2);
  assert.equal(store.status.writes_deferred, 2);
  assert.equal(store.status.windows_written, 1);
  assert.equal(other.prepare('SELECT count(*) FROM head').pluck().get(), 1);
  other.exec('COMMIT');
  // written again on the store's timer, before any newer window
  await until(() => store.status.windows_held === 0);
  store.write(ws[3] as FlushResult);
  assert.equal(store.status.windows_written, 4);
  assert.equal(store.status.ok, true);
  assert.deepEqual(
    (await store.events(first - 10_000, first + 30_000)).map((e) => e.title),
    ['stall'],
  );
  const ts = store.db.prepare('SELECT t FROM head ORDER BY seq').pluck().all() as number[];
  assert.deepEqual(
    ts,
    ws.map((w) => Math.round(w.end / 1000)),
  );
  const r = await store.query(
    { name: 'heap', tags: {}, from: first - 10_000, to: first + 30_000, step: 10_000, agg: 'avg', by: undefined },
    first + 30_000,
  );
  assert.deepEqual(
    r.series[0]?.values.filter((v) => v !== null),
    [1000, 1001, 1002, 1003],
  );
});

test('a maintenance pass that finds the write lock taken waits on the event loop, not in SQLite, and completes once it is free', async () => {
  const p = path();
  const store = new SqliteStore({ path: p, flushInterval: 10_000 });
  after(() => store.close());
  const now = Math.ceil(Date.now() / 600_000) * 600_000;
  for (const w of windows(now - 1800_000 + 5000, 30)) store.write(w);
  const other = new Database(p);
  after(() => other.close());
  other.exec('BEGIN IMMEDIATE');
  let over = false;
  const pass = store.maintain(now).finally(() => {
    over = true;
  });
  // the event loop turns meanwhile, the pass retrying (one that waited in SQLite's busy handler would hold the loop,
  // then fail)
  await until(() => store.status.maintain_deferred > 0 || over);
  assert.equal(over, false);
  assert.equal(store.status.error, undefined);
  assert.equal(other.prepare('SELECT count(*) FROM head').pluck().get(), 30);
  assert.equal(other.prepare('SELECT count(*) FROM chunks').pluck().get(), 0);
  other.exec('COMMIT');
  await pass;
  assert.equal(store.status.error, undefined);
  assert.ok(store.status.rollups > 0);
  assert.equal(store.db.prepare('SELECT count(*) FROM head').pluck().get(), 0);
  assert.equal(store.points(), 60);
});

test('with no checkpoint thread to be had, the checkpoint and the WAL restart run on the store’s connection, and never wait for the lock', async () => {
  const p = path();
  const store = new SqliteStore({ path: p, flushInterval: 10_000 });
  after(() => store.close());
  for (const w of windows(Math.floor(Date.now() / 10_000) * 10_000, 2)) store.write(w);
  const count = () => Number(store.db.prepare("SELECT value FROM meta WHERE key = 'checkpoints'").pluck().get() ?? 0);
  const cp = new Checkpointer(p, store.db, new URL('./no-such-worker.js', import.meta.url));
  const a = await cp.run();
  assert.equal(a.threaded, false);
  assert.equal(count(), 1);
  // the WAL copied back whole: the restart write's frame is all it holds
  const [wal] = store.db.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number; checkpointed: number }>;
  assert.ok(wal && wal.log <= 2);
  const other = new Database(p);
  after(() => other.close());
  other.exec('BEGIN IMMEDIATE');
  const b = await cp.run();
  assert.equal(b.threaded, false);
  assert.equal(other.inTransaction, true);
  // the restart left to the next write
  assert.equal(count(), 1);
  other.exec('COMMIT');
  assert.equal((await cp.run()).threaded, false);
  assert.equal(count(), 2);
  await cp.close();
});

test('a write lock another process keeps past 5 s is said as a failure: the store not ok, the pass ended with the reason; all written once it lets go', {
  timeout: 60_000,
}, async () => {
  const p = path();
  const store = new SqliteStore({ path: p, flushInterval: 10_000 });
  after(() => store.close());
  const now = Math.ceil(Date.now() / 600_000) * 600_000;
  const ws = windows(now - 1800_000 + 5000, 31);
  for (const w of ws.slice(0, 30)) store.write(w);
  const other = new Database(p);
  after(() => other.close());
  // a `sqlite3` shell left in a transaction: not the checkpoint thread, which holds the lock ~1 s at most
  other.exec('BEGIN IMMEDIATE');
  store.write(ws[30] as FlushResult);
  assert.equal(store.status.ok, true, 'a lock just taken is not yet a failure');
  const pass = store.maintain(now);
  await until(() => !store.status.ok);
  await pass;
  assert.match(store.status.error ?? '', /EKG_STORE_LOCKED: another connection has held the file's write lock for \d+\.\d s/);
  assert.equal(store.status.windows_held, 1, 'the window is held, as on a full disk');
  assert.equal(other.prepare('SELECT count(*) FROM chunks').pluck().get(), 0);
  other.exec('COMMIT');
  await until(() => store.status.windows_held === 0);
  assert.equal(store.status.ok, true);
  assert.equal(store.status.error, undefined);
  assert.equal(store.status.windows_written, 31);
  // the next pass does what the ended one could not
  await store.maintain(now);
  assert.equal(store.status.error, undefined);
  assert.equal(store.db.prepare('SELECT count(*) FROM head').pluck().get(), 0);
  assert.equal(store.points(), 62);
});
