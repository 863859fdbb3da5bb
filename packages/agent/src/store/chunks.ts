/**
 * Per-series chunks: the points of one series at one resolution over an aligned span (360 points:
 * an hour of 10 s windows, 6 h of minutes, 15 days of hours), encoded by codec.ts. Here: which
 * columns a chunk holds, merging new points in, rolling points up into coarser buckets, and turning
 * a chunk into the rows a query reads.
 */
import { SketchSum } from '../aggregate/sketch.js';
import type { Row } from './aggregate.js';
import { type Columns, emptyColumns, FULL, SK, V } from './codec.js';
import type { SeriesInfo } from './reader.js';

export type Kind = SeriesInfo['kind'];

/** Points a chunk spans at every resolution. */
export const CHUNK_POINTS = 360;

/** Raw gauges, counters and sets keep v alone (one sample); distributions and rollups keep count, sum, min and max. */
export function flagsFor(kind: Kind, raw: boolean): number {
  if (kind === 'distribution') return FULL | SK;
  return raw ? V : V | FULL;
}

/** The end of the bucket of width `w` that holds t: a point at t covers the interval ending at t. */
export const bucketEnd = (t: number, w: number) => Math.ceil(t / w) * w;

/** Appends point i of `src` to `dst` (same flags). */
export function pushPoint(dst: Columns, src: Columns, i: number): void {
  const f = dst.flags;
  dst.t.push(src.t[i] as number);
  dst.d.push(src.d[i] as number);
  if (f & V) dst.v.push(src.v[i] as number);
  if (f & FULL) {
    dst.n.push(src.n[i] as number);
    dst.s.push(src.s[i] as number);
    dst.lo.push(src.lo[i] as number);
    dst.hi.push(src.hi[i] as number);
  }
  if (f & SK) dst.sk.push(src.sk[i] ?? null);
}

/** `a` and `b` (each in time order) as one series in time order; at an equal time, b's point wins. */
export function mergeColumns(a: Columns, b: Columns): Columns {
  const at = a.t;
  const bt = b.t;
  if (at.length === 0) return b;
  if (bt.length === 0) return a;
  // the usual case: every new point is later
  if ((bt[0] as number) > (at[at.length - 1] as number)) {
    for (let i = 0; i < bt.length; i++) pushPoint(a, b, i);
    return a;
  }
  const out = emptyColumns(a.flags);
  let i = 0;
  let j = 0;
  while (i < at.length || j < bt.length) {
    const ta = i < at.length ? (at[i] as number) : Number.POSITIVE_INFINITY;
    const tb = j < bt.length ? (bt[j] as number) : Number.POSITIVE_INFINITY;
    if (tb <= ta) {
      pushPoint(out, b, j++);
      if (tb === ta) i++;
    } else pushPoint(out, a, i++);
  }
  return out;
}

/**
 * Points [from, to) of `src` merged into one point at `t`, appended to `dst`: counts and sums add,
 * min and max hold, sketches merge (a rolled-up p99 is the p99 of every sample, never an average
 * of percentiles), v is the last level (gauges, sets) or the sum (counters).
 */
export function rollInto(dst: Columns, src: Columns, from: number, to: number, t: number, kind: Kind): void {
  const full = (src.flags & FULL) !== 0;
  let n = 0;
  let s = 0;
  let d = 0;
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  let sketch: SketchSum | undefined;
  for (let i = from; i < to; i++) {
    d += src.d[i] as number;
    if (full) {
      const pn = src.n[i] as number;
      n += pn;
      s += src.s[i] as number;
      const pl = src.lo[i] as number;
      const ph = src.hi[i] as number;
      if (pl < lo) lo = pl;
      if (ph > hi) hi = ph;
      const b = src.flags & SK ? src.sk[i] : null;
      if (b) {
        sketch ??= new SketchSum();
        sketch.addEncoded(b);
      }
    } else {
      // a raw level is one sample of value v
      const v = src.v[i] as number;
      n += 1;
      s += v;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  dst.t.push(t);
  dst.d.push(d);
  if (dst.flags & V) dst.v.push(kind === 'counter' ? s : ((src.flags & V ? src.v[to - 1] : s) as number));
  dst.n.push(n);
  dst.s.push(s);
  dst.lo.push(Number.isFinite(lo) ? lo : Number.NaN);
  dst.hi.push(Number.isFinite(hi) ? hi : Number.NaN);
  if (dst.flags & SK) dst.sk.push(sketch ? sketch.encode().slice() : null);
}

/** Every bucket of width w that points of `src` with t in (from, to] fall in, rolled up. */
export function rollAll(src: Columns, w: number, kind: Kind, from = Number.NEGATIVE_INFINITY, to = Number.POSITIVE_INFINITY): Columns {
  const out = emptyColumns(flagsFor(kind, false));
  const t = src.t;
  let i = 0;
  while (i < t.length && (t[i] as number) <= from) i++;
  while (i < t.length && (t[i] as number) <= to) {
    const b = bucketEnd(t[i] as number, w);
    let j = i + 1;
    while (j < t.length && (t[j] as number) <= b && (t[j] as number) <= to) j++;
    rollInto(out, src, i, j, b, kind);
    i = j;
  }
  return out;
}

/** A column value as a query reads it: NaN (absent) is null. */
const num = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? null : x);

/** The chunk's points with t in (from, to] as query rows (see aggregate.ts's Row). */
export function rowsOf(c: Columns, from: number, to: number, withSketches: boolean, out: Row[]): void {
  const t = c.t;
  const f = c.flags;
  for (let i = 0; i < t.length; i++) {
    const ti = t[i] as number;
    if (ti <= from || ti > to) continue;
    if (withSketches) {
      const sk = f & SK ? c.sk[i] : null;
      if (sk) out.push([ti, null, null, null, null, null, null, sk]);
    } else if (f & FULL)
      out.push([
        ti,
        f & V ? (c.v[i] as number) : (c.n[i] as number),
        c.n[i] as number,
        c.s[i] as number,
        num(c.lo[i]),
        num(c.hi[i]),
        c.d[i] as number,
      ]);
    else out.push([ti, c.v[i] as number, null, null, null, null, c.d[i] as number]);
  }
}
