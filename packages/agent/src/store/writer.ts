/**
 * The write path: each flushed window appended to the head as one row (head.ts), with the rows of
 * series seen for the first time and the instances' last sign of life, in one transaction. A window
 * costs one sequential append whatever its series count; a crash loses at most the window being written.
 */
import type Database from 'better-sqlite3';
import { unitOf } from 'ekg-vitals';
import type { Flushed, FlushResult, SeriesKind, WindowCols } from '../aggregate/aggregator.js';
import { KIND_DISTRIBUTION } from '../aggregate/aggregator.js';
import { normalizeTags } from '../model/tags.js';
import type { Core, SeriesMeta } from './core.js';
import { HeadBuilder } from './head.js';
import { instanceKey, parseTags } from './reader.js';

/**
 * A window's blob is written in parts of at most this many bytes (`head_part`), its head row's `data` then empty.
 * SQLite copies a bound blob twice on insert (the bound value, the record); for a ~4 MB blob each copy is a block
 * glibc takes from mmap, where the bin fixes its threshold at 128 KiB: ~2,000 fresh pages faulted in and given back
 * each window (the agent's store write cost 2-4x its CPU in bench/flush.js, which runs with glibc's moving threshold).
 * Parts of 64 KiB come from the heap, reused window after window.
 */
export const HEAD_PART = 65_536;

/** `tags` with `kind:<kind>` added in its sorted place. */
function kindTags(tags: string, kind: string): string {
  return normalizeTags(tags ? `${tags},kind:${kind}` : `kind:${kind}`) ?? tags;
}

export class Writer {
  private readonly hb = new HeadBuilder();
  /** series made by the transaction under way: forgotten again if it rolls back */
  private readonly made: SeriesMeta[] = [];
  /** the series of the last window, by position */
  private order: SeriesMeta[] = [];
  /** the window's blob, in a slab of the core's pool: given back if the transaction fails */
  private blob: Uint8Array | undefined;
  private readonly st: {
    insertSeries: Database.Statement;
    touchSeries: Database.Statement;
    upsertInstance: Database.Statement;
    instanceHealth: Database.Statement;
    addHead: Database.Statement;
    addPart: Database.Statement;
  };

  constructor(private readonly core: Core) {
    const db = core.db;
    this.st = {
      insertSeries: db.prepare(
        // a plain insert: every row of the file is in core.ids, so a series missing there is new. (An upsert
        // with RETURNING cost 10–13 µs a row against 2–3; 100k new series in one window held the first
        // flush for 1.5 s, long enough for the kernel to drop StatsD datagrams.)
        'INSERT INTO series (name, tags, kind, unit, instance, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      touchSeries: db.prepare('UPDATE series SET last_seen = ? WHERE id = ?'),
      upsertInstance: db.prepare(
        'INSERT INTO instances (key, first_seen, last_seen, interval_ms) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen), interval_ms = CASE WHEN excluded.interval_ms > 0 THEN excluded.interval_ms ELSE interval_ms END',
      ),
      instanceHealth: db.prepare('UPDATE instances SET health = ?, reason = ?, health_at = ? WHERE key = ?'),
      addHead: db.prepare('INSERT INTO head (t, d, n, data) VALUES (?, ?, ?, ?)'),
      addPart: db.prepare('INSERT INTO head_part (seq, k, data) VALUES (?, ?, ?)'),
    };
  }

  /** Writes the window; throws (having written nothing) when the file cannot take it. */
  write(w: FlushResult): void {
    this.made.length = 0;
    this.blob = undefined;
    let done: { seq: number; t: number; d: number; bytes: Uint8Array };
    try {
      // the write lock taken first (BEGIN IMMEDIATE): a lock held by the checkpoint thread fails it at once, before
      // the window is encoded (the store holds it and tries again shortly)
      done = this.tx(w);
    } catch (err) {
      for (const m of this.made) {
        this.core.ids.delete(m.name, m.tags);
        this.core.byId.delete(m.id);
      }
      this.order = [];
      // (set by the transaction: TypeScript does not see it)
      const blob = this.blob as Uint8Array | undefined;
      if (blob) this.core.release(blob.buffer as ArrayBuffer);
      throw err;
    } finally {
      this.hb.reset();
    }
    this.core.addHead(done.seq, done.t, done.d, done.bytes);
  }

  private readonly alloc = (size: number): Uint8Array => this.core.slab(size);

  private readonly tx = (w: FlushResult) =>
    this.core.db
      .transaction((win: FlushResult) => {
        const t = Math.round(win.end / 1000);
        const d = Math.max(1, Math.round(win.end - win.start));
        const hb = this.hb;
        // the aggregator's windows are read column by column (no object per series); others by their objects
        const rows: Rows = win.cols ? new ColRows(win.cols) : new ObjectRows(win.series);
        // per instance that sent something: its `up` gauge, if it sent one
        const seen = new Map<string, { value: number; tags: string } | undefined>();
        // the longest interval an instance's samples describe in this window: how long until it is due again
        const intervals = new Map<string, number>();
        const n = rows.n;
        const last = this.order;
        for (let i = 0; i < n; i++) {
          // a level carried past its sample's interval is not an observation (docs/time-model.md)
          if (rows.carried(i)) continue;
          const name = rows.name(i);
          const tags = rows.tags(i);
          const kind = rows.kind(i);
          // the aggregator lists its series in the same order window after window: the series at this
          // position last time is checked first, one compare instead of two map lookups
          const p = last[i];
          const k =
            p !== undefined && p.name === name && p.tags === tags && p.kind === kind
              ? this.touch(p, win.end)
              : this.known(name, tags, kind, win.end);
          last[i] = k;
          if (k.inst !== undefined) {
            // an instance is seen when it sent something: a gauge carried at its last level is not a sign of life
            if (name === 'up') seen.set(k.inst, { value: rows.value(i), tags });
            else if (!seen.has(k.inst)) seen.set(k.inst, undefined);
            const iv = rows.interval(i);
            if (iv > 0 && iv > (intervals.get(k.inst) ?? 0)) intervals.set(k.inst, iv);
          }
          if (kind === 'distribution') rows.dist(i, k.id, hb);
          else hb.level(k.id, rows.value(i));
        }
        if (last.length > n) last.length = n;
        // written straight into a slab the core's cache reuses window after window: no 4 MB blob allocated
        // a window (better-sqlite3 binds the view's bytes only, and SQLite copies them)
        const bytes = hb.encode(this.alloc);
        this.blob = bytes;
        const parted = bytes.length > HEAD_PART;
        const seq = Number(this.st.addHead.run(t, d, hb.nl + hb.nd, parted ? EMPTY : bytes).lastInsertRowid);
        if (parted)
          for (let at = 0, k = 0; at < bytes.length; at += HEAD_PART, k++) this.st.addPart.run(seq, k, bytes.subarray(at, at + HEAD_PART));
        for (const [key, up] of seen) {
          this.st.upsertInstance.run(key, win.end, win.end, intervals.get(key) ?? 0);
          if (up) {
            const reason = parseTags(up.tags).reason;
            this.st.instanceHealth.run(up.value >= 1 ? 'up' : 'down', reason ?? null, win.end, key);
          }
        }
        return { seq, t, d, bytes };
      })
      .immediate(w);

  /** Its last_seen touched every five minutes. */
  private touch(k: SeriesMeta, now: number): SeriesMeta {
    if (now - k.seen * 1000 > 300_000) {
      this.st.touchSeries.run(now, k.id);
      k.seen = Math.floor(now / 1000);
    }
    return k;
  }

  /** The series' row, made on first sight. */
  private known(name: string, tags: string, kind: SeriesKind, now: number): SeriesMeta {
    let k = this.core.ids.get(name, tags);
    // a name that carries a second kind (barnes' GC.count: a counter and a gauge) keeps it under the
    // same name with the tag `kind:<kind>` (docs/time-model.md)
    if (k !== undefined && k.kind !== kind) {
      const kt = kindTags(tags, kind);
      k = this.core.ids.get(name, kt);
      if (k === undefined) return this.known(name, kt, kind, now);
    }
    if (k !== undefined) return this.touch(k, now);
    const inst = tags ? instanceKey(parseTags(tags)) : undefined;
    const id = Number(this.st.insertSeries.run(name, tags, kind, unitOf(name) ?? null, inst ?? null, now, now).lastInsertRowid);
    const made: SeriesMeta = { id, name, tags, kind, inst, seen: Math.floor(now / 1000), scopes: undefined };
    this.core.remember(made);
    this.made.push(made);
    return made;
  }
}

const EMPTY = new Uint8Array(0);

/** A window's series as the writer reads them, by position. */
interface Rows {
  readonly n: number;
  name(i: number): string;
  tags(i: number): string;
  kind(i: number): SeriesKind;
  value(i: number): number;
  carried(i: number): boolean;
  /** ms its last sample described, else 0 */
  interval(i: number): number;
  /** distribution `i` into the head as series `id` */
  dist(i: number, id: number, hb: HeadBuilder): void;
}

/** The aggregator's window, read from its columns: its sketches are copied as the window holds them, bytes to bytes. */
class ColRows implements Rows {
  readonly n: number;
  constructor(private readonly c: WindowCols) {
    this.n = c.n;
  }
  name(i: number): string {
    return this.c.names[i] as string;
  }
  tags(i: number): string {
    return this.c.tags[i] as string;
  }
  kind(i: number): SeriesKind {
    return this.c.kindName(i);
  }
  value(i: number): number {
    return this.c.value(i);
  }
  carried(i: number): boolean {
    return this.c.carried(i);
  }
  interval(i: number): number {
    return this.c.interval(i);
  }
  dist(i: number, id: number, hb: HeadBuilder): void {
    const c = this.c;
    if (c.kinds[i] !== KIND_DISTRIBUTION) return;
    const count = c.dist(i, 0);
    // (count 0: no sketch, as `distBytes` is given null)
    hb.distRange(id, count, c.dist(i, 1), c.dist(i, 2), c.dist(i, 3), c.c.sk, c.dist(i, 6), count > 0 ? c.dist(i, 7) : c.dist(i, 6));
  }
}

/** Any other window (tests, a replay, a migration): its series objects. */
class ObjectRows implements Rows {
  readonly n: number;
  constructor(private readonly s: Flushed[]) {
    this.n = s.length;
  }
  private f(i: number): Flushed {
    return this.s[i] as Flushed;
  }
  name(i: number): string {
    return this.f(i).name;
  }
  tags(i: number): string {
    return this.f(i).tags;
  }
  kind(i: number): SeriesKind {
    return this.f(i).kind;
  }
  value(i: number): number {
    return this.f(i).value;
  }
  carried(i: number): boolean {
    return this.f(i).carried === true;
  }
  interval(i: number): number {
    return this.f(i).interval ?? 0;
  }
  dist(i: number, id: number, hb: HeadBuilder): void {
    const f = this.f(i);
    // the aggregator's windows hold their sketches as bytes already: copied, not decoded and encoded again
    const bytes = f.sketchBytes;
    if (bytes !== undefined)
      hb.distBytes(id, f.count ?? 0, f.sum ?? 0, f.min ?? Number.NaN, f.max ?? Number.NaN, (f.count ?? 0) > 0 ? bytes : null);
    else hb.dist(id, f.count ?? 0, f.sum ?? 0, f.min ?? Number.NaN, f.max ?? Number.NaN, f.sketch);
  }
}
