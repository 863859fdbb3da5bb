/**
 * The baseline: ekg-agent's SQLite store as it was at schema 1 (commit e0b0e2a), one row per point
 * keyed (series, t), kept verbatim (imports aside) so `npm run bench -- store` measures the
 * time-first layout against it on the same machine in the same run. Not used by the agent.
 */
import { closeSync, existsSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { type Flushed, type FlushResult, Sketch } from 'ekg-agent';
import { unitOf } from 'ekg-vitals';
// the agent's own query reduction and tag helpers, as the store of schema 1 used them
import { type Row, reduce } from '../../packages/agent/dist/store/aggregate.js';
import {
  DEFAULT_POINTS,
  globToRegExp,
  type Instance,
  instanceFields,
  instanceKey,
  parseTags,
  type Query,
  type QueryResult,
  type SeriesInfo,
  type StoredEvent,
  type StoreReader,
  tagsMatch,
} from '../../packages/agent/dist/store/reader.js';

type StatsdEvent = { ts?: number; title: string; text: string; alert?: string; tags: string };

/** 'EKG1': marks the file as ekg-agent's, so a foreign database is never written to. */
const APPLICATION_ID = 0x454b4731;
const SCHEMA_VERSION = 1;
/** gauge, counter and set rows bound per INSERT statement */
const LEVEL_ROWS = 64;

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
  /** a cap on the file's size in bytes: past it, writes fail as a full disk would and windows are held */
  maxBytes?: number;
  /** windows held in memory while the database cannot be written (default 360: an hour at 10 s) */
  maxHeld?: number;
  /** SQLite's page cache, KiB (default 64 MiB) */
  cacheKiB?: number;
  /** series per maintenance batch (default 500): one short transaction between turns of the event loop */
  batch?: number;
}

export class StoreError extends Error {}

/** One stored resolution: its table, its bucket width (seconds; raw is the window) and retention. */
interface Level {
  table: 'points_raw' | 'points_1m' | 'points_1h';
  seconds: number;
  keep: number;
}

/** A row of a points table. */
export interface PointRow {
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

/** A series the store has a row for, as the write path needs it. */
interface Known {
  id: number;
  kind: SeriesInfo['kind'];
  /** the instance it belongs to, if any */
  inst: string | undefined;
  /** last_seen as written, so a series' row is touched once every few minutes, not every window */
  seen: number;
}

interface SeriesRow {
  id: number;
  name: string;
  tags: string;
  kind: SeriesInfo['kind'];
  unit: string | null;
  first_seen: number;
  last_seen: number;
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
  last_write_ms: number;
  rollups: number;
  file_bytes: number;
}

/**
 * The embedded store: one SQLite file (WAL) under the data dir. A `series` table (name, sorted
 * tags, kind, unit) and three points tables keyed by (series, t) WITHOUT ROWID — raw windows,
 * 1-minute and 1-hour rollups — with count, sum, min, max and, for distributions, the window's
 * sketch, so rollups and fleet percentiles merge sketches instead of averaging percentiles. One
 * transaction per window. Rollup and retention run in small batches between turns of the event loop.
 */
export class SqliteStoreV1 implements StoreReader {
  readonly name = 'sqlite';
  readonly kind = 'sqlite';
  readonly db: Database.Database;
  readonly levels: Level[];
  /**
   * name → tags → the series' row: two levels, so the aggregator's own name and tag strings (whose
   * hashes V8 keeps) find it without building a key per series per window
   */
  private readonly ids = new Map<string, Map<string, Known>>();
  private readonly kinds = new Map<number, SeriesInfo['kind']>();
  private readonly levelArgs = new Array<number>(LEVEL_ROWS * 4);
  private readonly held: FlushResult[] = [];
  private eventsSince = 0;
  private readonly maxHeld: number;
  private readonly batch: number;
  private timer: NodeJS.Timeout | undefined;
  private maintaining = false;
  private loggedAt = 0;
  private closed = false;
  readonly status: StoreStatus = {
    ok: true,
    windows_written: 0,
    points_written: 0,
    windows_held: 0,
    windows_dropped: 0,
    last_write_ms: 0,
    rollups: 0,
    file_bytes: 0,
  };
  private readonly stmt: {
    insertSeries: Database.Statement;
    touchSeries: Database.Statement;
    upsertInstance: Database.Statement;
    instanceHealth: Database.Statement;
    insert: Record<Level['table'], Database.Statement>;
    insertLevel: Database.Statement;
    insertLevels: Database.Statement;
    range: Record<Level['table'], Database.Statement>;
    readJson: Record<Level['table'], Database.Statement>;
    readSketches: Record<Level['table'], Database.Statement>;
    prune: Record<Level['table'], Database.Statement>;
    setMeta: Database.Statement;
    getMeta: Database.Statement;
  };

  constructor(private readonly o: SqliteStoreOptions) {
    const r = o.retention ?? DEFAULT_RETENTION;
    this.levels = [
      { table: 'points_raw', seconds: Math.max(1, Math.round(o.flushInterval / 1000)), keep: r.raw },
      { table: 'points_1m', seconds: 60, keep: r.m1 },
      { table: 'points_1h', seconds: 3600, keep: r.h1 },
    ];
    this.maxHeld = o.maxHeld ?? 360;
    this.batch = o.batch ?? 500;
    this.db = openChecked(o.path);
    const db = this.db;
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 2000');
    // a window touches one leaf page per series (rows are keyed series first): a cache that holds
    // them keeps a 100k-series window from re-reading pages (SQLite's default is 2 MB)
    db.pragma(`cache_size = -${o.cacheKiB ?? 65_536}`);
    if (o.maxBytes) {
      const page = db.pragma('page_size', { simple: true }) as number;
      db.pragma(`max_page_count = ${Math.max(16, Math.floor(o.maxBytes / page))}`);
    }
    db.exec(`
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
        health_at INTEGER
      ) WITHOUT ROWID;
      ${this.levels
        .map(
          (l) => `CREATE TABLE IF NOT EXISTS ${l.table} (
        series INTEGER NOT NULL,
        t INTEGER NOT NULL,
        v REAL, n REAL, s REAL, lo REAL, hi REAL, d INTEGER, sk BLOB,
        PRIMARY KEY (series, t)
      ) WITHOUT ROWID;`,
        )
        .join('\n')}
    `);
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
    const cols = 'series, t, v, n, s, lo, hi, d, sk';
    const per = <T>(f: (t: Level['table']) => T) =>
      Object.fromEntries(this.levels.map((l) => [l.table, f(l.table)])) as Record<Level['table'], T>;
    this.stmt = {
      insertSeries: db.prepare(
        'INSERT INTO series (name, tags, kind, unit, instance, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name, tags) DO UPDATE SET last_seen = excluded.last_seen RETURNING id, kind',
      ),
      touchSeries: db.prepare('UPDATE series SET last_seen = ? WHERE id = ?'),
      upsertInstance: db.prepare(
        'INSERT INTO instances (key, first_seen, last_seen) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)',
      ),
      instanceHealth: db.prepare('UPDATE instances SET health = ?, reason = ?, health_at = ? WHERE key = ?'),
      insert: per((t) => db.prepare(`INSERT OR REPLACE INTO ${t} (${cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)),
      insertLevel: db.prepare('INSERT OR REPLACE INTO points_raw (series, t, v, d) VALUES (?, ?, ?, ?)'),
      // many rows a statement: one call into SQLite for LEVEL_ROWS points instead of one each
      insertLevels: db.prepare(
        `INSERT OR REPLACE INTO points_raw (series, t, v, d) VALUES ${new Array(LEVEL_ROWS).fill('(?, ?, ?, ?)').join(', ')}`,
      ),
      // a raw gauge, counter or set row holds v alone: one sample whose sum, min and max are v
      range: per((t) =>
        db.prepare(
          `SELECT series, t, v, ifnull(n, 1) AS n, iif(n IS NULL, v, s) AS s, iif(n IS NULL, v, lo) AS lo, iif(n IS NULL, v, hi) AS hi, d, sk FROM ${t} WHERE series = ? AND t > ? AND t <= ? ORDER BY t`,
        ),
      ),
      // what a query reads, as one JSON text per series: JSON.parse makes the arrays faster than
      // rows can be fetched one by one (a day of raw windows is 8,640 rows; a fleet p99, 150k
      // sketches, which come as hex so that no Buffer is made per row)
      readJson: per((t) =>
        db
          .prepare(
            `SELECT json_group_array(json_array(t, v, n, s, lo, hi, d)) FROM (SELECT t, v, n, s, lo, hi, d FROM ${t} WHERE series = ? AND t > ? AND t <= ? ORDER BY t)`,
          )
          .pluck(),
      ),
      // for percentiles: times and sketch lengths as JSON (integers: quick to write and parse) and
      // the sketches back to back in one blob (group_concat keeps a blob's bytes), cut apart with
      // subarray — no Buffer per row, and no floats printed (a fleet p99 over a day reads 150k rows)
      readSketches: per((t) =>
        db
          .prepare(
            `SELECT json_group_array(t), json_group_array(length(sk)), CAST(group_concat(sk, '') AS BLOB) FROM (SELECT t, sk FROM ${t} WHERE series = ? AND t > ? AND t <= ? AND sk IS NOT NULL ORDER BY t)`,
          )
          .raw(true),
      ),
      prune: per((t) => db.prepare(`DELETE FROM ${t} WHERE series = ? AND t <= ?`)),
      setMeta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
    };
    for (const row of db.prepare('SELECT id, name, tags, kind, instance, last_seen FROM series').iterate() as Iterable<
      SeriesRow & { instance: string | null }
    >) {
      this.remember(row.name, row.tags, { id: row.id, kind: row.kind, inst: row.instance ?? undefined, seen: row.last_seen });
    }
    this.status.file_bytes = fileBytes(o.path);
  }

  /** Starts rollup and retention on a timer (unref'd): every `every` ms, in batches. */
  start(every = 15_000): void {
    this.timer = setInterval(() => void this.maintain(), every);
    this.timer.unref();
  }

  // ---------------------------------------------------------------- writing

  write(w: FlushResult): void {
    if (this.closed) return;
    // windows held while the file could not be written go first, in order
    if (this.held.length > 0) {
      while (this.held.length > 0) {
        if (!this.tryWrite(this.held[0] as FlushResult)) break;
        this.held.shift();
      }
    }
    if (this.held.length > 0 || !this.tryWrite(w)) this.hold(w);
    this.status.windows_held = this.held.length;
  }

  private hold(w: FlushResult): void {
    // the sketches are released by the agent after this call: keep a serialised copy
    const copy: FlushResult = {
      start: w.start,
      end: w.end,
      series: w.series.map((f) => (f.sketch ? { ...f, sketch: Sketch.decode(f.sketch.encode(), f.sketch) } : f)),
    };
    this.held.push(copy);
    if (this.held.length > this.maxHeld) {
      this.held.shift();
      this.status.windows_dropped++;
    }
  }

  private tryWrite(w: FlushResult): boolean {
    const t0 = performance.now();
    try {
      this.writeTx(w);
      if (!this.status.ok && this.held.length <= 1) process.stderr.write(`ekg-agent: store: writing again after: ${this.status.error}\n`);
      this.status.ok = true;
      this.status.error = undefined;
      this.status.windows_written++;
      this.status.points_written += w.series.length;
      this.status.last_write_ms = Math.round((performance.now() - t0) * 1000) / 1000;
      return true;
    } catch (err) {
      const e = err as Error & { code?: string };
      const msg = `${e.code ?? 'error'}: ${e.message}`;
      // one line on the way down, and at most one a minute while it flaps
      if (this.status.ok && Date.now() - this.loggedAt > 60_000) {
        this.loggedAt = Date.now();
        process.stderr.write(`ekg-agent: store: cannot write ${this.o.path} (${msg}); holding windows in memory\n`);
      }
      this.status.ok = false;
      this.status.error = msg;
      return false;
    }
  }

  private readonly writeTx = (w: FlushResult) =>
    this.db.transaction((win: FlushResult) => {
      const t = Math.round(win.end / 1000);
      const d = Math.max(1, Math.round(win.end - win.start));
      const full = this.stmt.insert.points_raw;
      const args = this.levelArgs;
      let a = 0;
      const seen = new Map<string, Flushed | undefined>();
      for (const f of win.series) {
        const k = this.known(f, win.end);
        // an instance is seen when it sent something: a gauge carried at its last level is not a sign of life
        if (k.inst !== undefined && !f.carried && (f.name === 'up' || !seen.has(k.inst)))
          seen.set(k.inst, f.name === 'up' ? f : seen.get(k.inst));
        if (f.kind === 'distribution') {
          full.run(k.id, t, f.count ?? 0, f.count ?? 0, f.sum ?? 0, f.min ?? null, f.max ?? null, d, f.sketch ? f.sketch.encode() : null);
        } else {
          // a gauge, counter or set is one value: count, sum, min and max are implied (see range)
          args[a++] = k.id;
          args[a++] = t;
          args[a++] = f.value;
          args[a++] = d;
          if (a === args.length) {
            this.stmt.insertLevels.run(args);
            a = 0;
          }
        }
      }
      for (let i = 0; i < a; i += 4) this.stmt.insertLevel.run(args[i], args[i + 1], args[i + 2], args[i + 3]);
      for (const [key, up] of seen) {
        this.stmt.upsertInstance.run(key, win.end, win.end);
        if (up) {
          const reason = parseTags(up.tags).reason;
          this.stmt.instanceHealth.run(up.value >= 1 ? 'up' : 'down', reason ?? null, win.end, key);
        }
      }
    })(w);

  private remember(name: string, tags: string, k: Known): void {
    let byTags = this.ids.get(name);
    if (!byTags) {
      byTags = new Map();
      this.ids.set(name, byTags);
    }
    byTags.set(tags, k);
    this.kinds.set(k.id, k.kind);
  }

  /** The series' row, made on first sight; its last_seen touched every five minutes. */
  private known(f: Flushed, now: number): Known {
    const k = this.ids.get(f.name)?.get(f.tags);
    if (k !== undefined) {
      if (now - k.seen > 300_000) {
        this.stmt.touchSeries.run(now, k.id);
        k.seen = now;
      }
      return k;
    }
    const inst = f.tags ? instanceKey(parseTags(f.tags)) : undefined;
    const r = this.stmt.insertSeries.get(f.name, f.tags, f.kind, unitOf(f.name) ?? null, inst ?? null, now, now) as {
      id: number;
      kind: SeriesInfo['kind'];
    };
    const made: Known = { id: r.id, kind: r.kind, inst, seen: now };
    this.remember(f.name, f.tags, made);
    return made;
  }

  // ---------------------------------------------------------------- rollup and retention

  /**
   * Rolls complete buckets up (raw → 1 min → 1 h) and deletes what is past retention, a batch of
   * series per transaction with a turn of the event loop between. Idempotent: a crash midway
   * re-runs from the last watermark.
   */
  async maintain(now = Date.now()): Promise<void> {
    if (this.maintaining || this.closed) return;
    this.maintaining = true;
    try {
      const ids = [...this.kinds.keys()];
      for (let li = 1; li < this.levels.length; li++) {
        const from = this.levels[li - 1] as Level;
        const to = this.levels[li] as Level;
        const key = `rolled:${to.table}`;
        const doneUntil = Number((this.stmt.getMeta.get(key) as { value: string } | undefined)?.value ?? 0);
        // a bucket is complete once the source's last point for it can no longer arrive
        const lag = li === 1 ? from.seconds + 5 : 0;
        // only whole buckets: an hour rolls up once its source has rolled past the hour's end
        const until = li === 1 ? now / 1000 - lag : this.rolledUntil(from);
        const limit = Math.floor(until / to.seconds) * to.seconds;
        // the first run starts at the oldest row of the source
        const oldest = doneUntil
          ? 0
          : ((this.db.prepare(`SELECT min(t) AS t FROM ${from.table}`).get() as { t: number | null }).t ?? limit);
        const since = doneUntil || Math.floor((oldest - 1) / to.seconds) * to.seconds;
        if (limit <= since) continue;
        for (let i = 0; i < ids.length && !this.closed; i += this.batch) {
          this.rollBatch(ids.slice(i, i + this.batch), from, to, since, limit);
          await new Promise<void>((r) => setImmediate(r));
        }
        if (this.closed) return;
        this.stmt.setMeta.run(key, String(limit));
        this.status.rollups++;
      }
      const pruneKey = 'pruned_at';
      const last = Number((this.stmt.getMeta.get(pruneKey) as { value: string } | undefined)?.value ?? 0);
      if (now - last > 600_000) {
        for (let i = 0; i < ids.length && !this.closed; i += this.batch) {
          const batch = ids.slice(i, i + this.batch);
          this.db.transaction(() => {
            for (const l of this.levels) {
              const cutoff = Math.floor((now - l.keep) / 1000);
              for (const id of batch) this.stmt.prune[l.table].run(id, cutoff);
            }
          })();
          await new Promise<void>((r) => setImmediate(r));
        }
        if (!this.closed) this.stmt.setMeta.run(pruneKey, String(now));
      }
      if (!this.closed) this.status.file_bytes = fileBytes(this.o.path);
    } catch (err) {
      const e = err as Error & { code?: string };
      this.status.error = `maintenance: ${e.code ?? 'error'}: ${e.message}`;
    } finally {
      this.maintaining = false;
    }
  }

  private rolledUntil(l: Level): number {
    return Number((this.stmt.getMeta.get(`rolled:${l.table}`) as { value: string } | undefined)?.value ?? 0);
  }

  private rollBatch(ids: number[], from: Level, to: Level, since: number, limit: number): void {
    this.db.transaction(() => {
      for (const id of ids) {
        const kind = this.kinds.get(id) as SeriesInfo['kind'];
        const rows = this.stmt.range[from.table].all(id, since, limit) as PointRow[];
        if (rows.length === 0) continue;
        let bucket = -1;
        let group: PointRow[] = [];
        const emit = () => {
          if (group.length === 0) return;
          const m = mergeRows(group, kind);
          this.stmt.insert[to.table].run(id, bucket, m.v, m.n, m.s, m.lo, m.hi, m.d, m.sk);
        };
        for (const r of rows) {
          const b = Math.ceil(r.t / to.seconds) * to.seconds;
          if (b !== bucket) {
            emit();
            bucket = b;
            group = [];
          }
          group.push(r);
        }
        emit();
      }
    })();
  }

  // ---------------------------------------------------------------- reading

  async instances(now = Date.now()): Promise<Instance[]> {
    const rows = this.db
      .prepare('SELECT key, first_seen, last_seen, health, reason, health_at FROM instances ORDER BY key')
      .all() as Array<{
      key: string;
      first_seen: number;
      last_seen: number;
      health: string | null;
      reason: string | null;
      health_at: number | null;
    }>;
    const fresh = 3 * this.o.flushInterval + 1000;
    return rows.map((r) => {
      const probed = r.health && r.health_at && now - r.health_at <= fresh;
      const health: Instance['health'] = probed ? (r.health as 'up' | 'down') : now - r.last_seen <= fresh ? 'reporting' : 'stale';
      return {
        key: r.key,
        ...instanceFields(r.key),
        first_seen: r.first_seen,
        last_seen: r.last_seen,
        health,
        ...(health === 'down' && r.reason ? { reason: r.reason } : {}),
      };
    });
  }

  async series(match: string, tags: Record<string, string>, limit = 10_000): Promise<SeriesInfo[]> {
    const re = match ? globToRegExp(match) : undefined;
    const out: SeriesInfo[] = [];
    const stmt = this.db.prepare('SELECT id, name, tags, kind, unit, first_seen, last_seen FROM series ORDER BY name, tags');
    for (const r of stmt.iterate() as Iterable<SeriesRow>) {
      if (re && !re.test(r.name)) continue;
      const t = parseTags(r.tags);
      if (!tagsMatch(t, tags)) continue;
      out.push({
        name: r.name,
        tags: t,
        kind: r.kind,
        ...(r.unit ? { unit: r.unit } : {}),
        first_seen: r.first_seen,
        last_seen: r.last_seen,
      });
      if (out.length >= limit) break;
    }
    return out;
  }

  /** The resolution a query reads: the coarsest one no wider than the step that still covers `from`. */
  pick(q: Pick<Query, 'from' | 'to' | 'step'>, now = Date.now()): { level: Level; step: number } {
    const range = q.to - q.from;
    const covering = this.levels.filter((l) => q.from >= now - l.keep - l.seconds * 1000);
    const usable = covering.length > 0 ? covering : [this.levels.at(-1) as Level];
    // no step: about DEFAULT_POINTS over the range, at the finest resolution that covers it
    const want = q.step ?? Math.max(range / DEFAULT_POINTS, (usable[0] as Level).seconds * 1000);
    let level = usable[0] as Level;
    for (const l of usable) if (l.seconds * 1000 <= want) level = l;
    const step = Math.max(level.seconds * 1000, Math.ceil(want / (level.seconds * 1000)) * level.seconds * 1000);
    return { level, step };
  }

  async query(q: Query): Promise<QueryResult> {
    const { level, step } = this.pick(q);
    const rows = this.db.prepare('SELECT id, name, tags, kind FROM series WHERE name = ?').all(q.name) as SeriesRow[];
    const matched = rows.filter((r) => tagsMatch(parseTags(r.tags), q.tags));
    const kind = matched[0]?.kind;
    const fromS = Math.floor(q.from / 1000);
    const toS = Math.ceil(q.to / 1000);
    // a rollup lags its source by a bucket or so: past its watermark, rows come from the finer levels
    const parts: Array<{ table: Level['table']; from: number; to: number }> = [];
    const cover = (li: number, from: number, to: number): void => {
      const l = this.levels[li] as Level;
      if (li === 0) {
        parts.push({ table: l.table, from, to });
        return;
      }
      const wm = this.rolledUntil(l);
      if (wm > from) parts.push({ table: l.table, from, to: Math.min(wm, to) });
      if (wm < to) cover(li - 1, Math.max(from, wm), to);
    };
    cover(this.levels.indexOf(level), fromS - level.seconds, toS);
    return reduce(
      q,
      kind,
      step / 1000,
      level.seconds,
      matched.map((r) => ({
        tags: parseTags(r.tags),
        rows: (withSketches: boolean) =>
          parts.flatMap((p) => {
            if (!withSketches) return JSON.parse(this.stmt.readJson[p.table].get(r.id, p.from, p.to) as string) as Row[];
            const [ts, lens, blob] = this.stmt.readSketches[p.table].get(r.id, p.from, p.to) as [string, string, Uint8Array | null];
            const t = JSON.parse(ts) as number[];
            const len = JSON.parse(lens) as number[];
            const rows: Row[] = new Array(t.length);
            let at = 0;
            for (let i = 0; i < t.length; i++) {
              const end = at + (len[i] as number);
              rows[i] = [t[i] as number, null, null, null, null, null, null, (blob as Uint8Array).subarray(at, end)];
              at = end;
            }
            return rows as Row[];
          }),
      })),
    );
  }

  /** Keeps a DogStatsD event (a stall) with the instance its tags name; the last 10,000 are kept. */
  event(e: StatsdEvent): void {
    if (this.closed) return;
    const t = Math.round(e.ts ?? Date.now() / 1000);
    const key = e.tags ? instanceKey(parseTags(e.tags)) : undefined;
    this.db
      .prepare('INSERT INTO events (t, key, title, text, alert, tags) VALUES (?, ?, ?, ?, ?, ?)')
      .run(t, key ?? null, e.title.slice(0, 200), e.text.slice(0, 4000), e.alert ?? null, e.tags);
    if (++this.eventsSince > 1000) {
      this.eventsSince = 0;
      this.db.exec('DELETE FROM events WHERE rowid <= (SELECT max(rowid) FROM events) - 10000');
    }
  }

  async events(from: number, to: number, key?: string, service?: string): Promise<StoredEvent[]> {
    const rows = this.db
      .prepare('SELECT t, key, title, text, alert, tags FROM events WHERE t >= ? AND t <= ? ORDER BY t LIMIT 1000')
      .all(Math.floor(from / 1000), Math.ceil(to / 1000)) as Array<{
      t: number;
      key: string | null;
      title: string;
      text: string;
      alert: string | null;
      tags: string;
    }>;
    return rows
      .filter((r) => (!key || r.key === key) && (!service || parseTags(r.tags).service === service))
      .map((r) => ({
        t: r.t,
        ...(r.key ? { instance: r.key } : {}),
        title: r.title,
        text: r.text,
        ...(r.alert ? { alert: r.alert } : {}),
        tags: parseTags(r.tags),
      }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // the last window (the agent flushes it before closing sinks) is written first
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // a checkpoint is an optimisation; the WAL is replayed at the next open
    }
    this.db.close();
  }
}

/** Rows of one series merged into one: counts and sums add, min and max hold, sketches merge, v is the last. */
export function mergeRows(rows: PointRow[], kind: SeriesInfo['kind']): Omit<PointRow, 'series' | 't'> {
  let n = 0;
  let s = 0;
  let d = 0;
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  let sketch: Sketch | undefined;
  for (const r of rows) {
    n += r.n ?? 0;
    s += r.s ?? 0;
    d += r.d ?? 0;
    if (r.lo !== null && r.lo < lo) lo = r.lo;
    if (r.hi !== null && r.hi > hi) hi = r.hi;
    if (kind === 'distribution' && r.sk) {
      const k = Sketch.decode(r.sk, { count: r.n ?? 0, sum: r.s ?? 0, min: r.lo ?? 0, max: r.hi ?? 0 });
      if (sketch) sketch.merge(k);
      else sketch = k;
    }
  }
  const last = rows[rows.length - 1] as PointRow;
  return {
    v: kind === 'distribution' ? n : kind === 'counter' ? s : last.v,
    n,
    s,
    lo: Number.isFinite(lo) ? lo : null,
    hi: Number.isFinite(hi) ? hi : null,
    d,
    sk: sketch ? sketch.encode() : null,
  };
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
