/**
 * What the writer, the compactor and the query path share: the open file, its resolutions, the
 * series known by name and by id, the fleets, the head windows not yet folded into chunks, and
 * reading and writing chunks.
 */
import type Database from 'better-sqlite3';
import { bucketEnd, type Kind, mergeColumns } from './chunks.js';
import { type Columns, decodeAny, emptyColumns, encodeChunk, joinParts, partCount, pointCount, splitParts } from './codec.js';
import { HeadWindow } from './head.js';
import type { Pacer } from './pace.js';
import { parseTags } from './reader.js';
import { isBusy, type Level } from './schema.js';

/** A series the store has a row for. */
export interface SeriesMeta {
  id: number;
  name: string;
  tags: string;
  kind: Kind;
  /** the instance it belongs to, if any */
  inst: string | undefined;
  /**
   * last_seen as written, in whole seconds (a small integer V8 keeps in the object, where epoch ms would
   * be a 16-byte boxed number per series), so a series' row is touched once every few minutes, not every window
   */
  seen: number;
  /** distributions: the fleets it is merged into (`service:api`, `host:web-1`) */
  scopes: string[] | undefined;
}

/** Tag keys whose values make a fleet: a p99 over a whole service or host is precomputed. */
export const FLEET_KEYS = ['service', 'host'] as const;

/** A head window: always its time and size; its blob while the memory budget allows. */
export interface HeadEntry {
  seq: number;
  t: number;
  d: number;
  n: number;
  win: HeadWindow | undefined;
  /** its blob is in one of the core's slabs (`Core.slab`), which goes back to the pool when the window is let go */
  pooled?: boolean;
}

/**
 * Bytes of head windows kept in memory for queries of the newest minutes; older ones are read back.
 * 16 MiB: four windows of 100k series. The compactor folds the head every minute, so at 64 MiB a
 * large agent held ~6–10 windows (25–40 MB) for queries that read them back from SQLite's cache in ms.
 */
const HEAD_CACHE = 16 * 1024 * 1024;

/**
 * name → tags → series: two levels, so the aggregator's own strings find it without a key per series
 * per window. A name with one tag set (most: 100k untagged names are 100k series) holds its series
 * directly; a Map is made only for a second tag set (a Map per name cost ~280 B a series).
 */
export class SeriesIndex {
  private readonly byName = new Map<string, SeriesMeta | Map<string, SeriesMeta>>();

  get(name: string, tags: string): SeriesMeta | undefined {
    const e = this.byName.get(name);
    if (e === undefined) return undefined;
    if (e instanceof Map) return e.get(tags);
    return e.tags === tags ? e : undefined;
  }

  /** Every name, in no particular order. */
  names(): Iterable<string> {
    return this.byName.keys();
  }

  /** Every series of one name. */
  of(name: string): Iterable<SeriesMeta> {
    const e = this.byName.get(name);
    if (e === undefined) return [];
    return e instanceof Map ? e.values() : [e];
  }

  set(m: SeriesMeta): void {
    const e = this.byName.get(m.name);
    if (e === undefined || (!(e instanceof Map) && e.tags === m.tags)) this.byName.set(m.name, m);
    else if (e instanceof Map) e.set(m.tags, m);
    else
      this.byName.set(
        m.name,
        new Map([
          [e.tags, e],
          [m.tags, m],
        ]),
      );
  }

  delete(name: string, tags: string): void {
    const e = this.byName.get(name);
    if (e === undefined) return;
    if (!(e instanceof Map)) {
      if (e.tags === tags) this.byName.delete(name);
      return;
    }
    e.delete(tags);
    if (e.size === 1) this.byName.set(name, e.values().next().value as SeriesMeta);
    else if (e.size === 0) this.byName.delete(name);
  }
}

/**
 * Series by id. The ids are SQLite rowids, dense from 1: an array indexed by id costs 8 bytes a series
 * where a Map cost ~36, and lists its ids in ascending order without a sort.
 */
export class SeriesById {
  private readonly a: Array<SeriesMeta | undefined> = [];
  private n = 0;

  get size(): number {
    return this.n;
  }

  get(id: number): SeriesMeta | undefined {
    return this.a[id];
  }

  set(id: number, m: SeriesMeta): void {
    if (this.a[id] === undefined) this.n++;
    this.a[id] = m;
  }

  delete(id: number): void {
    if (this.a[id] === undefined) return;
    this.a[id] = undefined;
    this.n--;
  }

  /** The ids in use, ascending. */
  ids(): number[] {
    const out: number[] = [];
    const a = this.a;
    for (let i = 0; i < a.length; i++) if (a[i] !== undefined) out.push(i);
    return out;
  }
}

export class Core {
  readonly ids = new SeriesIndex();
  readonly byId = new SeriesById();
  /** `name\nscope` → the fleet (its chunks are stored under -id), merged from minutes after `since` */
  readonly fleet = new Map<string, { id: number; since: number }>();
  /** `name\nscope` → distributions in it: a fleet of one is not kept (the series is its own fleet) */
  readonly members = new Map<string, number>();
  /** head windows in the order written */
  head: HeadEntry[] = [];
  private cached = 0;
  /**
   * Slabs free for the next window's blob. A window's blob is ~4 MB at 100k series: allocated afresh each
   * window, the dropped ones (~70 MB) stayed in memory until V8's next full collection, which external
   * memory starts only after tens of MB of growth. Kept while they and the cached windows fit the cache's
   * budget (at least one, for the next window).
   */
  private readonly spare: ArrayBuffer[] = [];
  /** windows a caller holds across an await (the compactor's pass): seq → holders */
  private readonly pins = new Map<number, number>();
  /** slabs of pinned windows let go meanwhile: back to the pool at the last unpin */
  private readonly held = new Map<number, ArrayBuffer>();
  private readonly st: {
    getMeta: Database.Statement;
    setMeta: Database.Statement;
    chunk: Database.Statement;
    chunks: Database.Statement;
    putChunk: Database.Statement;
    headRow: Database.Statement;
    headParts: Database.Statement;
    headPartsFrom: Database.Statement;
    delHead: Database.Statement;
    delParts: Database.Statement;
    addFleet: Database.Statement;
  };

  constructor(
    readonly db: Database.Database,
    readonly levels: Level[],
    /** bytes of head windows kept in memory (`HEAD_CACHE`) */
    private readonly budget = HEAD_CACHE,
  ) {
    this.st = {
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?').pluck(),
      setMeta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
      chunk: db.prepare('SELECT n, t1, data FROM chunks WHERE series = ? AND res = ? AND b = ?'),
      chunks: db.prepare('SELECT data FROM chunks WHERE series = ? AND res = ? AND b > ? AND b < ? ORDER BY b').pluck(),
      putChunk: db.prepare('INSERT OR REPLACE INTO chunks (series, res, b, n, t1, data) VALUES (?, ?, ?, ?, ?, ?)'),
      headRow: db.prepare('SELECT data FROM head WHERE seq = ?').pluck(),
      headParts: db.prepare('SELECT data FROM head_part WHERE seq = ? ORDER BY k').pluck(),
      headPartsFrom: db.prepare('SELECT data FROM head_part WHERE seq = ? AND k >= ? ORDER BY k LIMIT ?').pluck(),
      delHead: db.prepare('DELETE FROM head WHERE seq = ?'),
      delParts: db.prepare('DELETE FROM head_part WHERE seq = ?'),
      addFleet: db.prepare('INSERT INTO fleet (name, scope, since) VALUES (?, ?, ?) RETURNING id').pluck(),
    };
    for (const r of db.prepare('SELECT id, name, tags, kind, instance, last_seen FROM series').iterate() as Iterable<{
      id: number;
      name: string;
      tags: string;
      kind: Kind;
      instance: string | null;
      last_seen: number;
    }>) {
      this.remember({
        id: r.id,
        name: r.name,
        tags: r.tags,
        kind: r.kind,
        inst: r.instance ?? undefined,
        seen: Math.floor(r.last_seen / 1000),
        scopes: undefined,
      });
    }
    for (const r of db.prepare('SELECT id, name, scope, since FROM fleet').iterate() as Iterable<{
      id: number;
      name: string;
      scope: string;
      since: number;
    }>)
      this.fleet.set(`${r.name}\n${r.scope}`, { id: r.id, since: r.since });
    for (const r of db.prepare('SELECT seq, t, d, n FROM head ORDER BY seq').iterate() as Iterable<Omit<HeadEntry, 'win'>>)
      this.head.push({ ...r, win: undefined });
  }

  remember(m: SeriesMeta): void {
    if (m.kind === 'distribution' && m.tags) {
      const tags = parseTags(m.tags);
      const scopes = FLEET_KEYS.filter((k) => tags[k] !== undefined).map((k) => `${k}:${tags[k]}`);
      if (scopes.length > 0) m.scopes = scopes;
      for (const sc of scopes) {
        const key = `${m.name}\n${sc}`;
        this.members.set(key, (this.members.get(key) ?? 0) + 1);
      }
    }
    this.ids.set(m);
    this.byId.set(m.id, m);
  }

  meta(key: string): number {
    return Number((this.st.getMeta.get(key) as string | undefined) ?? 0);
  }

  hasMeta(key: string): boolean {
    return this.st.getMeta.get(key) !== undefined;
  }

  /**
   * `fn` in a transaction that takes the write lock first (BEGIN IMMEDIATE): false, with nothing run, when the lock
   * is taken (the checkpoint thread's restart write) — the caller tries again at its next turn. Other errors throw.
   */
  tryTx(fn: () => void): boolean {
    try {
      this.db.transaction(fn).immediate();
      return true;
    } catch (err) {
      if (!isBusy(err)) throw err;
      this.onBusy?.();
      return false;
    }
  }

  /** `stmt.run(...args)` on its own (autocommit): undefined, with nothing done, when the lock is taken */
  tryRun(stmt: Database.Statement, ...args: unknown[]): Database.RunResult | undefined {
    try {
      return stmt.run(...args);
    } catch (err) {
      if (!isBusy(err)) throw err;
      this.onBusy?.();
      return undefined;
    }
  }

  /** called each time `tryTx` or `tryRun` finds the lock taken (the store counts it) */
  onBusy: (() => void) | undefined;

  setMeta(key: string, value: number): void {
    this.st.setMeta.run(key, String(value));
  }

  /** The fleet's id, made on first use with the minutes after `since` (the compacted watermark) in it. */
  fleetId(key: string, since: number): number {
    let f = this.fleet.get(key);
    if (f === undefined) {
      const [name, scope] = key.split('\n') as [string, string];
      f = { id: this.st.addFleet.get(name, scope, since) as number, since };
      this.fleet.set(key, f);
    }
    return f.id;
  }

  // ---------------------------------------------------------------- head

  /**
   * `size` bytes for a window's blob, from a slab of the pool (the smallest that fits) or a new one with
   * some room to grow. Give it to `addHead`, or back with `release` if the window is not written.
   */
  slab(size: number): Uint8Array {
    let best = -1;
    for (let i = 0; i < this.spare.length; i++) {
      const b = (this.spare[i] as ArrayBuffer).byteLength;
      if (b >= size && (best < 0 || b < (this.spare[best] as ArrayBuffer).byteLength)) best = i;
    }
    if (best >= 0) return new Uint8Array(this.spare.splice(best, 1)[0] as ArrayBuffer, 0, size);
    this.slabsMade++;
    // 1/16 more, in 64 KiB steps: the next windows, a few series more, fit it too
    return new Uint8Array(new ArrayBuffer(Math.ceil((size + (size >> 4) + 1) / 65536) * 65536), 0, size);
  }

  /** A slab (from `slab`) no window uses any more, back to the pool; past the budget the smallest is dropped. */
  release(slab: ArrayBuffer): void {
    this.spare.push(slab);
    let spare = 0;
    for (const b of this.spare) spare += b.byteLength;
    while (this.spare.length > 1 && this.cached + spare > this.budget) {
      let k = 0;
      for (let i = 1; i < this.spare.length; i++)
        if ((this.spare[i] as ArrayBuffer).byteLength < (this.spare[k] as ArrayBuffer).byteLength) k = i;
      spare -= (this.spare.splice(k, 1)[0] as ArrayBuffer).byteLength;
    }
  }

  /**
   * Windows `seqs` stay as they are until `unpin`: for a caller that holds them (`window`) across an
   * await, while writes may let them go and their slabs would be written over by the next window.
   */
  pin(seqs: Iterable<number>): void {
    for (const s of seqs) this.pins.set(s, (this.pins.get(s) ?? 0) + 1);
  }

  unpin(seqs: Iterable<number>): void {
    for (const s of seqs) {
      const n = (this.pins.get(s) ?? 0) - 1;
      if (n > 0) {
        this.pins.set(s, n);
        continue;
      }
      this.pins.delete(s);
      const slab = this.held.get(s);
      if (slab) {
        this.held.delete(s);
        this.release(slab);
      }
    }
  }

  /** slabs allocated so far (tests check that slabs are reused) */
  slabsMade = 0;

  /** A window just written, its blob in a slab from `slab`: kept in memory for queries until folded into chunks. */
  addHead(seq: number, t: number, d: number, bytes: Uint8Array): void {
    const win = new HeadWindow(seq, t, d, bytes);
    const pooled = win.bytes.buffer === bytes.buffer;
    // (a blob at an unaligned offset was copied: its slab is free already)
    if (!pooled) this.release(bytes.buffer as ArrayBuffer);
    this.head.push({ seq, t, d, n: win.points, win, pooled });
    this.cached += bytes.length;
    // past the budget the oldest blobs are let go (they are read back if a query needs them)
    for (let i = 0; this.cached > this.budget && i < this.head.length - 1; i++) this.letGo(this.head[i] as HeadEntry);
  }

  window(h: HeadEntry): HeadWindow {
    if (h.win) return h.win;
    return this.readBack(h, this.headBytes(h.seq));
  }

  /**
   * `window`, its parts read a few at a time with a turn of the event loop when the pace says so (the compactor's
   * pass: a 4 MB window read back whole held the loop up to 25 ms on a loaded machine).
   */
  async windowPaced(h: HeadEntry, pace: Pacer): Promise<HeadWindow> {
    if (h.win) return h.win;
    const row = this.st.headRow.get(h.seq) as Uint8Array | undefined;
    if (row === undefined || row.length > 0) return this.readBack(h, row);
    const parts: Uint8Array[] = [];
    for (;;) {
      const got = this.st.headPartsFrom.all(h.seq, parts.length, 8) as Uint8Array[];
      parts.push(...got);
      if (got.length < 8) break;
      if (pace.due()) await pace.turn('head read');
    }
    // (a window let go meanwhile is still read: the caller pinned it)
    return h.win ?? this.readBack(h, join(parts));
  }

  private readBack(h: HeadEntry, bytes: Uint8Array | undefined): HeadWindow {
    const win = new HeadWindow(h.seq, h.t, h.d, bytes ?? new Uint8Array(16));
    // read back (after a restart, or let go): kept while the budget allows, so a query over many
    // series does not read it once per series. A plain allocation, not a slab.
    if (bytes && this.cached + bytes.length <= this.budget) {
      h.win = win;
      h.pooled = false;
      this.cached += bytes.length;
    }
    return win;
  }

  /** A head window's blob as written: its row's `data`, or its parts (writer.ts, `HEAD_PART`) joined. */
  headBytes(seq: number): Uint8Array | undefined {
    const row = this.st.headRow.get(seq) as Uint8Array | undefined;
    if (row === undefined || row.length > 0) return row;
    return join(this.st.headParts.all(seq) as Uint8Array[]);
  }

  /** Deletes a head window's row and its parts (in the caller's transaction). */
  deleteHead(seq: number): void {
    this.st.delHead.run(seq);
    this.st.delParts.run(seq);
  }

  dropHead(seqs: Set<number>): void {
    this.head = this.head.filter((h) => {
      if (!seqs.has(h.seq)) return true;
      this.letGo(h);
      return false;
    });
  }

  /** The window's blob out of the cache; its slab back to the pool unless the window is pinned. */
  private letGo(h: HeadEntry): void {
    const w = h.win;
    if (!w) return;
    this.cached -= w.bytes.length;
    h.win = undefined;
    if (!h.pooled) return;
    h.pooled = false;
    const slab = w.bytes.buffer as ArrayBuffer;
    if (this.pins.has(h.seq)) this.held.set(h.seq, slab);
    else this.release(slab);
  }

  // ---------------------------------------------------------------- chunks

  /**
   * Merges `pts` (time order) into the chunks they fall in. A chunk whose span is not over (its end
   * after `sealFrom`) takes points later than its last (and, with `unit`, in a later bucket of that
   * width) as a new part, unread, up to 8 parts; any other is read, merged and written back as one.
   * Returns per chunk end its columns as written when it was read, or undefined when appended to.
   */
  putPoints(series: number, level: Level, pts: Columns, sealFrom: number, unit = 0): Map<number, Columns | undefined> {
    const out = new Map<number, Columns | undefined>();
    const t = pts.t;
    let i = 0;
    while (i < t.length) {
      const b = bucketEnd(t[i] as number, level.span);
      let j = i + 1;
      while (j < t.length && (t[j] as number) <= b) j++;
      const part = i === 0 && j === t.length ? pts : slice(pts, i, j);
      const row = this.st.chunk.get(series, level.res, b) as { n: number; t1: number; data: Uint8Array } | undefined;
      const first = t[i] as number;
      const last = t[j - 1] as number;
      const later = !row || (row.t1 > 0 && first > row.t1 && (unit === 0 || bucketEnd(first, unit) > bucketEnd(row.t1, unit)));
      // a chunk whose span is over is sealed (rewritten as one), unless its parts are big already (a
      // compactor catching up writes an hour a part): rewriting would cost more than it saves
      const parts = row ? partCount(row.data) : 0;
      const data = later && (b > sealFrom || (row && (row.n + j - i) / (parts + 1) >= 60)) ? appendTiered(row?.data, part) : undefined;
      if (data) {
        this.st.putChunk.run(series, level.res, b, (row?.n ?? 0) + (j - i), last, data);
        out.set(b, undefined);
      } else {
        const merged = mergeColumns(row ? decodeAny(row.data) : emptyColumns(pts.flags), part);
        this.st.putChunk.run(series, level.res, b, merged.t.length, merged.t[merged.t.length - 1], encodeChunk(merged));
        out.set(b, merged);
      }
      i = j;
    }
    return out;
  }

  /** The decoded chunk of `series` at `level` ending at `b`, if there is one. */
  chunkAt(series: number, level: Level, b: number): Columns | undefined {
    const row = this.st.chunk.get(series, level.res, b) as { data: Uint8Array } | undefined;
    return row ? decodeAny(row.data) : undefined;
  }

  /** The decoded chunks of `series` at `res` that may hold points in (from, to] (epoch s), in time order. */
  chunks(series: number, level: Level, from: number, to: number): Columns[] {
    const rows = this.st.chunks.all(series, level.res, from, to + level.span) as Uint8Array[];
    return rows.map((d) => decodeAny(d));
  }
}

/** Parts of a blob, joined into one buffer. */
function join(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  n = 0;
  for (const p of parts) {
    out.set(p, n);
    n += p.length;
  }
  return out;
}

/**
 * A chunk with `part` (later points) appended as a part. The new part takes in the trailing parts that
 * hold fewer than twice its points (and fewer than 60), so each small part holds at least twice what
 * the next does: a minute's points appended 360 times are re-encoded about 4.5 times each, not once
 * per 8 appends (23 times), in at most 8 parts. Undefined past 8: the chunk is then rewritten as one.
 */
function appendTiered(data: Uint8Array | undefined, part: Columns): Uint8Array | undefined {
  if (!data) return encodeChunk(part);
  const list = splitParts(data);
  let k = list.length;
  let n = part.t.length;
  while (k > 0) {
    const c = pointCount(list[k - 1] as Uint8Array);
    // a part of 60 points or more is left as it is (a compactor catching up writes an hour a part)
    if (c >= 2 * n || c >= 60) break;
    k--;
    n += c;
  }
  if (k + 1 > 8) return undefined;
  const tail = k === list.length ? encodeChunk(part) : encodeChunk(mergeColumns(decodeAny(joinParts(list.slice(k))), part));
  return k === 0 ? tail : joinParts([...list.slice(0, k), tail]);
}

function slice(c: Columns, from: number, to: number): Columns {
  const out = emptyColumns(c.flags);
  out.t = c.t.slice(from, to);
  out.d = c.d.slice(from, to);
  out.v = c.v.slice(from, to);
  out.n = c.n.slice(from, to);
  out.s = c.s.slice(from, to);
  out.lo = c.lo.slice(from, to);
  out.hi = c.hi.slice(from, to);
  out.sk = c.sk.slice(from, to);
  return out;
}
