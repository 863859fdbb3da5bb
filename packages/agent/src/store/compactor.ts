/**
 * The compactor: folds head windows into per-series chunks, rolls them up (raw → 1 min → 1 h,
 * sketches merged), merges each fleet's sketches per minute and hour, and applies retention. All of
 * it in batches of series, one short transaction each, ended by time (`Pacer`: ~12 ms) or by points,
 * whichever comes first, with a turn of the event loop between, so ingest never waits long on it; a slice that
 * finds the write lock taken (the checkpoint thread's restart write) runs nothing and is tried again shortly. Watermarks in `meta` make every step idempotent: after a crash it
 * redoes the step it was in (head rows are deleted only once their points are in chunks).
 */
import { SketchSum } from '../aggregate/sketch.js';
import { bucketEnd, flagsFor, type Kind, rollAll } from './chunks.js';
import { type Columns, emptyColumns, FULL, SK } from './codec.js';
import type { Core, HeadEntry } from './core.js';
import type { HeadWindow } from './head.js';
import type { Pacer } from './pace.js';
import type { Level } from './schema.js';

/**
 * A pass folds the head windows of at most one raw chunk's span (an hour of 10 s windows), so a
 * compactor catching up writes each raw chunk once, whole, and a minute chunk in parts of an hour;
 * at most this many points a pass (the windows' blobs are held while it runs), plus the rest of the
 * minute the last window ends in.
 */
const POINTS_PER_PASS = 1_000_000;

/** A fleet's merged distribution for one window. */
interface FleetMinute {
  n: number;
  s: number;
  lo: number;
  hi: number;
  d: number;
  sketch: SketchSum | undefined;
}

export class Compactor {
  constructor(
    private readonly core: Core,
    /** at most this many points a transaction (series × the pass's windows); a slice of time ends one sooner */
    private readonly batch: number,
    private readonly closed: () => boolean,
  ) {}

  /**
   * Folds every head window whose minute is complete — its last window can no longer arrive: one
   * window plus 5 s after the minute's end — into chunks, then rolls whole hours up.
   */
  async run(now: number, pace: Pacer): Promise<number> {
    const raw = this.core.levels[0] as Level;
    const target = Math.floor((now / 1000 - raw.seconds - 5) / 60) * 60;
    let passes = 0;
    for (;;) {
      if (this.closed()) return passes;
      const pending = this.core.head.filter((h) => h.t <= target);
      if (pending.length === 0) break;
      pending.sort((a, b) => a.t - b.t || a.seq - b.seq);
      const spanEnd = bucketEnd((pending[0] as HeadEntry).t, raw.span);
      let k = 0;
      for (let points = 0; k < pending.length && (pending[k] as HeadEntry).t <= spanEnd && (k === 0 || points < POINTS_PER_PASS); k++)
        points += (pending[k] as HeadEntry).n;
      const tk = (pending[k - 1] as HeadEntry).t;
      const cut = Math.min(target, Math.ceil(tk / 60) * 60);
      await this.pass(
        pending.filter((h) => h.t <= cut),
        cut,
        pace,
      );
      passes++;
    }
    await this.hours(pace);
    return passes;
  }

  /** One pass over `wins`, pinned meanwhile (`foldHead`). */
  private async pass(wins: HeadEntry[], cut: number, pace: Pacer): Promise<void> {
    const core = this.core;
    const seqs = wins.map((h) => h.seq);
    // held across the awaits below, while new windows may let them go: their slabs stay unused until unpin
    core.pin(seqs);
    try {
      await this.foldHead(wins, cut, seqs, pace);
    } finally {
      core.unpin(seqs);
    }
  }

  /**
   * Head windows (time order) into raw chunks, their minutes into 1-minute chunks; each window of a
   * distribution merged into its fleets, which are folded the same way once every series is.
   */
  private async foldHead(wins: HeadEntry[], cut: number, pinned: number[], pace: Pacer): Promise<void> {
    const core = this.core;
    const wm = core.meta('compacted');
    // the windows not in memory are read back (~4 MB each at 100k series), a few parts at a time: a turn when a
    // slice is spent, not 12 windows at once (69 ms)
    const decoded: HeadWindow[] = [];
    for (const h of wins) {
      decoded.push(await core.windowPaced(h, pace));
      if (pace.due()) await pace.turn('head read');
    }
    const lc = new Int32Array(wins.length);
    const dc = new Int32Array(wins.length);
    const ids = core.byId.ids();
    const fleets = new Map<string, Map<number, FleetMinute>>();
    // windows at or before the watermark arrived after their minute was folded (written late, after a
    // full disk): their fleets' windows are merged again from every member, their hours rolled up again
    const late = wins.filter((h) => h.t <= wm).map((h) => h.t);
    const lateFleets = new Map<string, Set<number>>();
    // a pass holding a whole hour (catching up: a pass a raw chunk's span) rolls it up from the minutes
    // it has in hand, and moves `rolled:1h`, when every earlier hour is rolled already
    const hourFrom =
      cut % 3600 === 0 && wm <= cut - 3600 && late.length === 0 && core.meta('rolled:1h') >= Math.ceil(wm / 3600) * 3600
        ? cut - 3600
        : undefined;
    const per = Math.max(1, Math.floor(this.batch / wins.length));
    for (let i = 0; i < ids.length; ) {
      if (this.closed()) return;
      const end = Math.min(ids.length, i + per);
      // (the lock taken: nothing ran, `i` is where it was, and the slice is tried again)
      const done = core.tryTx(() => {
        while (i < end) {
          const id = ids[i++] as number;
          const meta = core.byId.get(id);
          if (!meta) continue;
          const pts = gather(id, meta.kind, decoded, lc, dc);
          if (pts.t.length === 0) continue;
          this.fold(id, meta.kind, pts, cut, hourFrom);
          if (meta.scopes) {
            addToFleets(fleets, core.members, meta.name, meta.scopes, pts, wm);
            if (late.length > 0 && (pts.t[0] as number) <= wm) noteLate(lateFleets, core, meta.name, meta.scopes, pts, wm);
          }
          if (pace.due()) break;
        }
      });
      await (done ? pace.turn('fold') : pace.busy('fold'));
    }
    // fleets (a fold each, over every window of the pass) in slices too: written again, a pass redone after a crash replaces them
    await this.sliced(pace, 'fleets', [...lateFleets], ([key, ts]) => this.remerge(key, ts, wm, cut));
    await this.sliced(pace, 'fleets', [...fleets], ([key, byMinute]) =>
      this.fold(-core.fleetId(key, wm), 'distribution', fleetColumns(byMinute), cut, hourFrom),
    );
    if (this.closed()) return;
    // the head rows go, and the watermark moves, in one transaction
    const drop = () => {
      if (late.length > 0) {
        const redo = Math.min(...late.map((t) => bucketEnd(t, 3600) - 3600));
        if (redo < core.meta('rolled:1h') && (core.meta(REHOUR) === 0 || redo < core.meta(REHOUR))) core.setMeta(REHOUR, redo);
      }
      const seqs = new Set(pinned);
      for (const s of seqs) core.deleteHead(s);
      core.setMeta('compacted', Math.max(wm, cut));
      if (hourFrom !== undefined) core.setMeta('rolled:1h', cut);
      core.dropHead(seqs);
    };
    while (!core.tryTx(drop)) {
      await pace.busy('head delete');
      if (this.closed()) return;
    }
    pace.note('head delete');
  }

  /** `work` for each item, a transaction a slice of time, a turn of the event loop between. */
  private async sliced<T>(pace: Pacer, step: string, items: T[], work: (item: T) => void): Promise<void> {
    for (let i = 0; i < items.length; ) {
      if (this.closed()) return;
      const done = this.core.tryTx(() => {
        do work(items[i++] as T);
        while (i < items.length && !pace.due());
      });
      await (done ? pace.turn(step) : pace.busy(step));
    }
  }

  /**
   * A fleet's windows at `ts` merged again from every member's raw chunk (a late window was just
   * folded into one of them), replacing what the fleet held there, its minutes recomputed.
   */
  private remerge(key: string, ts: Set<number>, wm: number, cut: number): void {
    const core = this.core;
    const raw = core.levels[0] as Level;
    const [name, scope] = key.split('\n') as [string, string];
    const byChunk = new Map<number, number[]>();
    for (const t of ts) {
      const b = bucketEnd(t, raw.span);
      const list = byChunk.get(b);
      if (list) list.push(t);
      else byChunk.set(b, [t]);
    }
    const byT = new Map<number, FleetMinute>();
    for (const m of core.ids.of(name)) {
      if (!m.scopes?.includes(scope)) continue;
      for (const [b, list] of byChunk) {
        const c = core.chunkAt(m.id, raw, b);
        if (!c) continue;
        for (const t of list) {
          const i = c.t.indexOf(t);
          if (i >= 0) mergePoint(byT, t, c, i);
        }
      }
    }
    if (byT.size > 0) this.fold(-core.fleetId(key, wm), 'distribution', fleetColumns(byT), cut);
  }

  /**
   * One series' (or fleet's) new raw points into its raw chunks, the minutes they cover into its
   * 1-minute chunks, and with `hourFrom` (the points are all of the hour ending at `cut`) that hour.
   */
  private fold(id: number, kind: Kind, pts: Columns, cut: number, hourFrom?: number): void {
    const [raw, m1, h1] = this.core.levels as [Level, Level, Level];
    const written = this.core.putPoints(id, raw, pts, cut, 60);
    // the minutes the new points fall in: from the new points alone when they were appended
    // (whole minutes), recomputed from the whole chunk when it was read (late windows)
    const minutes = emptyColumns(flagsFor(kind, false));
    let p = 0;
    for (const [, merged] of written) {
      const first = pts.t[p] as number;
      while (p < pts.t.length && bucketEnd(pts.t[p] as number, raw.span) === bucketEnd(first, raw.span)) p++;
      const last = pts.t[p - 1] as number;
      appendAll(minutes, rollAll(merged ?? pts, 60, kind, bucketEnd(first, 60) - 60, bucketEnd(last, 60)));
    }
    this.core.putPoints(id, m1, minutes, cut);
    if (hourFrom !== undefined) {
      const hour = rollAll(minutes, 3600, kind, hourFrom, cut);
      if (hour.t.length > 0) this.core.putPoints(id, h1, hour, cut);
    }
  }

  /** Whole hours (every minute of them compacted) rolled up from minutes, for series and fleets. */
  private async hours(pace: Pacer): Promise<void> {
    const core = this.core;
    const [, m1, h1] = core.levels as [Level, Level, Level];
    // from the watermark, or from the earliest hour a late window fell in
    const redo = core.meta(REHOUR);
    const wm = redo > 0 ? Math.min(redo, core.meta('rolled:1h')) : core.meta('rolled:1h');
    const until = Math.max(Math.floor(core.meta('compacted') / 3600) * 3600, core.meta('rolled:1h'));
    if (until <= wm) return;
    const ids: number[] = [...core.byId.ids(), ...[...core.fleet.values()].map((f) => -f.id)];
    // a transaction reads `batch` minutes or so: 60 an hour per series. A file never compacted before
    // has wm 0: its span is counted as 15 days (360 h), which is all the minute level keeps by default.
    const hoursRead = Math.min(360, (until - wm) / 3600);
    const per = Math.max(1, Math.floor(this.batch / (60 * hoursRead)));
    for (let i = 0; i < ids.length; ) {
      if (this.closed()) return;
      const end = Math.min(ids.length, i + per);
      const done = core.tryTx(() => {
        while (i < end) {
          const id = ids[i++] as number;
          const kind: Kind | undefined = id < 0 ? 'distribution' : core.byId.get(id)?.kind;
          if (!kind) continue;
          const hours = emptyColumns(flagsFor(kind, false));
          for (const c of core.chunks(id, m1, wm, until)) appendAll(hours, rollAll(c, 3600, kind, wm, until));
          if (hours.t.length > 0) core.putPoints(id, h1, hours, until);
          if (pace.due()) break;
        }
      });
      await (done ? pace.turn('hours') : pace.busy('hours'));
    }
    const mark = () => {
      core.setMeta('rolled:1h', until);
      if (redo > 0) core.setMeta(REHOUR, 0);
    };
    while (!this.closed() && !core.tryTx(mark)) await pace.busy('hours');
  }

  /** Deletes chunks wholly past their resolution's retention, a few hundred a transaction, a slice of time between turns. */
  async prune(now: number, pace: Pacer): Promise<void> {
    const core = this.core;
    const del = core.db.prepare('DELETE FROM chunks WHERE id IN (SELECT id FROM chunks WHERE res = ? AND b <= ? LIMIT 500)');
    for (const l of core.levels) {
      const cutoff = Math.floor((now - l.keep) / 1000);
      while (!this.closed()) {
        const r = core.tryRun(del, l.res, cutoff);
        if (r === undefined) await pace.busy('prune');
        else if (r.changes === 0) break;
        else if (pace.due()) await pace.turn('prune');
      }
    }
  }
}

/** One series' points from the head windows (cursors advance as ids ascend), as raw columns. */
function gather(id: number, kind: Kind, wins: HeadWindow[], lc: Int32Array, dc: Int32Array): Columns {
  const pts = emptyColumns(flagsFor(kind, true));
  const dist = kind === 'distribution';
  for (let w = 0; w < wins.length; w++) {
    const hw = wins[w] as HeadWindow;
    const list = dist ? hw.dids : hw.lids;
    const cur = dist ? dc : lc;
    let c = cur[w] as number;
    while (c < list.length && (list[c] as number) < id) c++;
    if (c < list.length && list[c] === id) {
      // two windows with one end: the later written wins
      if (pts.t.length > 0 && pts.t[pts.t.length - 1] === hw.t) popPoint(pts);
      pts.t.push(hw.t);
      pts.d.push(hw.d);
      if (dist) {
        pts.n.push(hw.n(c));
        pts.s.push(hw.s(c));
        pts.lo.push(hw.lo(c));
        pts.hi.push(hw.hi(c));
        const sk = hw.sketch(c);
        // copied: the chunk outlives the window's blob
        pts.sk.push(sk ? sk.slice() : null);
      } else pts.v.push(hw.vals[c] as number);
      c++;
    }
    cur[w] = c;
  }
  return pts;
}

function popPoint(c: Columns): void {
  for (const k of ['t', 'd', 'v', 'n', 's', 'lo', 'hi', 'sk'] as const) if (c[k].length === c.t.length) c[k].pop();
}

function appendAll(dst: Columns, src: Columns): void {
  dst.t.push(...src.t);
  dst.d.push(...src.d);
  dst.v.push(...src.v);
  dst.n.push(...src.n);
  dst.s.push(...src.s);
  dst.lo.push(...src.lo);
  dst.hi.push(...src.hi);
  dst.sk.push(...src.sk);
}

/** Meta key: the start of the earliest hour already rolled up that a late window fell in (0: none). */
const REHOUR = 'rehour';

/** A fleet's merged windows as chunk columns, in time order. */
function fleetColumns(byT: Map<number, FleetMinute>): Columns {
  const cols = emptyColumns(FULL | SK);
  for (const t of [...byT.keys()].sort((a, b) => a - b)) {
    const f = byT.get(t) as FleetMinute;
    cols.t.push(t);
    cols.d.push(f.d);
    cols.n.push(f.n);
    cols.s.push(f.s);
    cols.lo.push(Number.isFinite(f.lo) ? f.lo : Number.NaN);
    cols.hi.push(Number.isFinite(f.hi) ? f.hi : Number.NaN);
    cols.sk.push(f.sketch ? f.sketch.encode().slice() : null);
  }
  return cols;
}

/** Point i of a member's distribution columns merged into the fleet's window at t. */
function mergePoint(byT: Map<number, FleetMinute>, t: number, m: Columns, i: number): void {
  let f = byT.get(t);
  if (!f) {
    f = { n: 0, s: 0, lo: Number.POSITIVE_INFINITY, hi: Number.NEGATIVE_INFINITY, d: 0, sketch: undefined };
    byT.set(t, f);
  }
  const n = m.n[i] as number;
  const s = m.s[i] as number;
  const lo = m.lo[i] as number;
  const hi = m.hi[i] as number;
  f.n += n;
  f.s += s;
  if (lo < f.lo) f.lo = lo;
  if (hi > f.hi) f.hi = hi;
  // the most time one member covers (as a query's group does)
  if ((m.d[i] as number) > f.d) f.d = m.d[i] as number;
  const bytes = m.sk[i];
  if (bytes) {
    f.sketch ??= new SketchSum();
    f.sketch.addEncoded(bytes);
  }
}

/** The late windows (at or before the watermark) of a distribution: its fleets' windows to merge again. */
function noteLate(lateFleets: Map<string, Set<number>>, core: Core, name: string, scopes: string[], pts: Columns, wm: number): void {
  for (const sc of scopes) {
    const key = `${name}\n${sc}`;
    const f = core.fleet.get(key);
    if (f === undefined) continue;
    let ts = lateFleets.get(key);
    if (!ts) {
      ts = new Set();
      lateFleets.set(key, ts);
    }
    for (const t of pts.t) if (t <= wm && t > f.since) ts.add(t);
  }
}

/** A distribution's new windows merged into its fleets (windows at or before the watermark were merged already). */
function addToFleets(
  fleets: Map<string, Map<number, FleetMinute>>,
  members: Map<string, number>,
  name: string,
  scopes: string[],
  m: Columns,
  wm: number,
): void {
  for (let i = 0; i < m.t.length; i++) {
    const t = m.t[i] as number;
    if (t <= wm) continue;
    for (const scope of scopes) {
      const key = `${name}\n${scope}`;
      if ((members.get(key) ?? 0) < 2) continue;
      let byT = fleets.get(key);
      if (!byT) {
        byT = new Map();
        fleets.set(key, byT);
      }
      mergePoint(byT, t, m, i);
    }
  }
}
