/**
 * The file: opened only if it is ekg-agent's (or new), its tables, and the upgrade of a version-1
 * file (one row per point) to version 2 (a time-first head and per-series chunks), in place, at start.
 */
import { closeSync, existsSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { bucketEnd, CHUNK_POINTS, flagsFor, type Kind } from './chunks.js';
import { type Columns, emptyColumns, encodeChunk, FULL, SK, V } from './codec.js';
import { HeadBuilder } from './head.js';

/** 'EKG1': marks the file as ekg-agent's, so a foreign database is never written to. */
export const APPLICATION_ID = 0x454b4731;
/** 1: a row per point (points_raw, points_1m, points_1h); 2: head windows and chunks. */
export const SCHEMA_VERSION = 3;
/** Large enough that chunks of distributions (360 windows, ~10 KB) fill pages with little left over. */
const PAGE_SIZE = 32_768;

export class StoreError extends Error {}

/** A stored resolution: 0 raw windows, 1 minutes, 2 hours. */
export interface Level {
  res: 0 | 1 | 2;
  /** bucket width, s (raw: the window) */
  seconds: number;
  /** retention, ms */
  keep: number;
  /** what a chunk spans, s */
  span: number;
}

export function levelsFor(windowMs: number, keep: { raw: number; m1: number; h1: number }): Level[] {
  const raw = Math.max(1, Math.round(windowMs / 1000));
  return [
    { res: 0, seconds: raw, keep: keep.raw, span: CHUNK_POINTS * raw },
    { res: 1, seconds: 60, keep: keep.m1, span: CHUNK_POINTS * 60 },
    { res: 2, seconds: 3600, keep: keep.h1, span: CHUNK_POINTS * 3600 },
  ];
}

const TABLES = `
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    tags TEXT NOT NULL,
    kind TEXT NOT NULL,
    unit TEXT,
    instance TEXT,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    UNIQUE (name, tags)
  );
  CREATE TABLE IF NOT EXISTS events (
    t INTEGER NOT NULL,
    key TEXT,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    alert TEXT,
    tags TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS events_by_time ON events (t);
  CREATE TABLE IF NOT EXISTS instances (
    key TEXT PRIMARY KEY,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    health TEXT,
    reason TEXT,
    health_at INTEGER,
    interval_ms INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  -- one row per flushed window, every series in it (head.ts); folded into chunks, then deleted
  CREATE TABLE IF NOT EXISTS head (
    seq INTEGER PRIMARY KEY,
    t INTEGER NOT NULL,
    d INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL
  );
  -- a head window's blob past HEAD_PART bytes, in parts (its head row's data then empty): see writer.ts
  CREATE TABLE IF NOT EXISTS head_part (
    seq INTEGER NOT NULL,
    k INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (seq, k)
  );
  -- one series at one resolution over an aligned span (codec.ts); series < 0: a fleet's merged sketches
  CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    series INTEGER NOT NULL,
    res INTEGER NOT NULL,
    b INTEGER NOT NULL,
    n INTEGER NOT NULL,
    t1 INTEGER NOT NULL,
    data BLOB NOT NULL,
    UNIQUE (series, res, b)
  );
  CREATE INDEX IF NOT EXISTS chunks_by_age ON chunks (res, b);
  -- the fleets whose distributions are merged at rollup time: a name within a service or a host
  CREATE TABLE IF NOT EXISTS fleet (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    since INTEGER NOT NULL,
    UNIQUE (name, scope)
  );
`;

/** Opens (or makes) the file, checks it is ekg-agent's, upgrades a version-1 file and makes the tables. */
export function openStore(path: string, levels: Level[]): Database.Database {
  const db = openChecked(path);
  const version = db.pragma('user_version', { simple: true }) as number;
  const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n;
  if (tables === 0) {
    // a new file: the page size is set before anything is written (WAL fixes it afterwards)
    db.pragma(`page_size = ${PAGE_SIZE}`);
    db.exec('VACUUM');
  }
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  // the compactor checkpoints every 15 s, off the write path; this bound (4096 pages of 32 KiB: 128 MiB of WAL) is only a backstop
  db.pragma('wal_autocheckpoint = 4096');
  db.pragma('busy_timeout = 2000');
  db.exec(TABLES);
  // files made by the first cut of version 2 lack these columns
  for (const [table, col] of [
    ['chunks', 't1'],
    ['fleet', 'since'],
    // the interval the instance's samples describe (docs/time-model.md): 0 where unknown
    ['instances', 'interval_ms'],
  ] as const) {
    const cols = db.prepare(`SELECT name FROM pragma_table_info('${table}')`).pluck().all() as string[];
    if (!cols.includes(col)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${col} INTEGER NOT NULL DEFAULT 0`);
  }
  if (version === 1) migrateV1(db, levels);
  // fleets made by the first cut of version 2 held minutes only: made again, with their windows, from now on
  if (db.prepare("SELECT 1 FROM meta WHERE key = 'fleet:windows'").get() === undefined) {
    db.exec(`DELETE FROM chunks WHERE series < 0; DELETE FROM fleet; INSERT INTO meta (key, value) VALUES ('fleet:windows', '1')`);
  }
  db.pragma(`application_id = ${APPLICATION_ID}`);
  db.pragma(`user_version = ${SCHEMA_VERSION}`);
  // from here on the event loop never waits for SQLite's write lock: the only other writer is the checkpoint
  // thread (checkpoint-worker.ts), whose WAL-restart write holds the lock for its fsync (66 ms to 1 s on a busy
  // disk), a wait longer than the UDP receive buffer holds. A write that finds the lock taken fails at once with
  // SQLITE_BUSY and is tried again shortly (sqlite.ts `write`, the compactor's `Core.tryTx`). Opening may wait.
  db.pragma('busy_timeout = 0');
  return db;
}

export { isBusy } from './wal.js';

/**
 * Version 1 → 2, in one transaction: rows up to the 1-minute rollup's watermark become raw chunks,
 * later rows head windows (which the compactor then folds as it would any window), minutes and hours
 * become chunks of their own; the old tables are dropped and the file rewritten (VACUUM) at the new
 * page size. A crash before the commit leaves the version-1 file as it was.
 */
function migrateV1(db: Database.Database, levels: Level[]): void {
  const has = (t: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(t) !== undefined;
  if (!has('points_raw')) return;
  const meta = (k: string) =>
    Number((db.prepare('SELECT value FROM meta WHERE key = ?').get(k) as { value: string } | undefined)?.value ?? 0);
  const wm1m = meta('rolled:points_1m');
  const wm1h = meta('rolled:points_1h');
  const kinds = new Map<number, Kind>();
  for (const r of db.prepare('SELECT id, kind FROM series').iterate() as Iterable<{ id: number; kind: Kind }>) kinds.set(r.id, r.kind);
  const put = db.prepare('INSERT OR REPLACE INTO chunks (series, res, b, n, t1, data) VALUES (?, ?, ?, ?, ?, ?)');
  interface V1Row {
    series: number;
    t: number;
    v: number | null;
    n: number | null;
    s: number | null;
    lo: number | null;
    hi: number | null;
    d: number | null;
    sk: Uint8Array | null;
  }
  const nan = (x: number | null) => (x === null ? Number.NaN : x);
  db.transaction(() => {
    const tables = ['points_raw', 'points_1m', 'points_1h'] as const;
    for (const [li, table] of tables.entries()) {
      const level = levels[li] as Level;
      let series = -1;
      let b = -1;
      let cols: Columns | undefined;
      const flush = () => {
        if (cols && cols.t.length > 0) put.run(series, level.res, b, cols.t.length, cols.t[cols.t.length - 1], encodeChunk(cols));
        cols = undefined;
      };
      const until = li === 0 ? wm1m : Number.MAX_SAFE_INTEGER;
      // one series at a time (rows cannot be written while a statement iterates)
      const read = db.prepare(`SELECT series, t, v, n, s, lo, hi, d, sk FROM ${table} WHERE series = ? AND t <= ? ORDER BY t`);
      for (const [id, kind] of kinds) {
        for (const r of read.all(id, until) as V1Row[]) {
          const rb = bucketEnd(r.t, level.span);
          if (r.series !== series || rb !== b) {
            flush();
            series = r.series;
            b = rb;
          }
          cols ??= emptyColumns(flagsFor(kind, li === 0));
          cols.t.push(r.t);
          cols.d.push(r.d ?? level.seconds * 1000);
          if (cols.flags & V) cols.v.push(r.v ?? Number.NaN);
          if (cols.flags & FULL) {
            cols.n.push(r.n ?? 1);
            cols.s.push(r.s ?? r.v ?? 0);
            cols.lo.push(r.n === null ? nan(r.v) : nan(r.lo));
            cols.hi.push(r.n === null ? nan(r.v) : nan(r.hi));
          }
          if (cols.flags & SK) cols.sk.push(r.sk ? Uint8Array.from(r.sk) : null);
        }
      }
      flush();
    }
    // raw rows past the minute watermark: head windows, one per window end
    const addHead = db.prepare('INSERT INTO head (t, d, n, data) VALUES (?, ?, ?, ?)');
    const hb = new HeadBuilder();
    let t = -1;
    let d = 0;
    const flush = () => {
      if (t >= 0) addHead.run(t, d, hb.nl + hb.nd, hb.encode());
      hb.reset();
    };
    const times = db.prepare('SELECT DISTINCT t FROM points_raw WHERE t > ? ORDER BY t').pluck().all(wm1m) as number[];
    const at = db.prepare('SELECT series, t, v, n, s, lo, hi, d, sk FROM points_raw WHERE t = ?');
    for (const wt of times) {
      for (const r of at.all(wt) as V1Row[]) {
        const kind = kinds.get(r.series);
        if (!kind) continue;
        if (r.t !== t) {
          flush();
          t = r.t;
          d = r.d ?? (levels[0]?.seconds ?? 10) * 1000;
        }
        if (kind === 'distribution') hb.distBytes(r.series, r.n ?? 0, r.s ?? 0, nan(r.lo), nan(r.hi), r.sk ? Uint8Array.from(r.sk) : null);
        else hb.level(r.series, r.v ?? Number.NaN);
      }
    }
    flush();
    const setMeta = db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
    setMeta.run('compacted', String(wm1m));
    setMeta.run('rolled:1h', String(wm1h));
    db.exec(`DELETE FROM meta WHERE key IN ('rolled:points_1m', 'rolled:points_1h');
      DROP TABLE points_raw; DROP TABLE points_1m; DROP TABLE points_1h;`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
  // the old tables' pages back to the file system, at the new page size (set outside WAL)
  db.pragma('journal_mode = DELETE');
  db.pragma(`page_size = ${PAGE_SIZE}`);
  db.exec('VACUUM');
  db.pragma('journal_mode = WAL');
}

/**
 * Opens the file only if it is ekg-agent's or new: a file that is not SQLite, or a SQLite
 * database of another application, is refused with a message and never written to.
 */
function openChecked(path: string): Database.Database {
  mkdirSync(dirname(path), { recursive: true });
  if (existsSync(path) && statSync(path).size > 0) {
    const head = Buffer.alloc(16);
    const fd = openSync(path, 'r');
    try {
      readSync(fd, head, 0, 16, 0);
    } finally {
      closeSync(fd);
    }
    if (head.toString('latin1') !== 'SQLite format 3\0') {
      throw new StoreError(
        `${path} is not a SQLite database (corrupt, or another program's file); ekg-agent will not overwrite it — move it away or choose another --data directory`,
      );
    }
  }
  let db: Database.Database;
  try {
    db = new Database(path);
  } catch (err) {
    throw new StoreError(`cannot open ${path}: ${(err as Error).message}`);
  }
  try {
    const app = db.pragma('application_id', { simple: true }) as number;
    const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n;
    if (app !== APPLICATION_ID && (app !== 0 || tables > 0)) {
      db.close();
      throw new StoreError(
        `${path} is a SQLite database of another application (application_id ${app}, ${tables} tables); ekg-agent will not write to it — choose another --data directory`,
      );
    }
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      db.close();
      throw new StoreError(
        `${path} was written by a newer ekg-agent (schema ${version}; this one knows ${SCHEMA_VERSION}); upgrade the agent`,
      );
    }
    if (tables > 0) {
      const check = db.pragma('quick_check', { simple: true }) as string;
      if (check !== 'ok') {
        db.close();
        throw new StoreError(`${path} is damaged (quick_check: ${check}); ekg-agent will not overwrite it — move it away to start afresh`);
      }
    }
  } catch (err) {
    if (err instanceof StoreError) throw err;
    try {
      db.close();
    } catch {
      // already closed
    }
    throw new StoreError(
      `${path} cannot be read as a database (${(err as Error).message}); ekg-agent will not overwrite it — move it away`,
    );
  }
  return db;
}
