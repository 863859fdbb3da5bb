import { SketchSum } from '../aggregate/sketch.js';
import { PERCENTILES, type Query, QueryError, type QueryResult, type SeriesInfo } from './reader.js';

/**
 * A stored point as a query reads it: [t (epoch s), v, count, sum, min, max, ms covered, sketch blob].
 * A raw gauge, counter or set row holds v alone (count, sum, min and max null): one sample of value v.
 */
export type Row = [number, number | null, number | null, number | null, number | null, number | null, number | null, (Uint8Array | null)?];

/** One matched series: its tags and a way to read its rows over the query's range, in time order. */
export interface Source {
  tags: Record<string, string>;
  rows(withSketches: boolean): Row[];
}

/** Which aggregations make sense for which kind; anything else is a 400 naming `agg`. */
export function checkAgg(agg: Query['agg'], kind: SeriesInfo['kind'] | undefined, name: string): void {
  if (!kind) return;
  if (PERCENTILES[agg] !== undefined && kind !== 'distribution')
    throw new QueryError('agg', `${agg} needs a distribution (a StatsD ms, h or d); ${name} is a ${kind}: use avg, min, max or last`);
  if (agg === 'rate' && kind !== 'counter' && kind !== 'distribution')
    throw new QueryError('agg', `rate needs a counter or a distribution; ${name} is a ${kind}: use avg, min, max or last`);
}

/** The step ends (epoch seconds) from `from` to `to` (ms); at most 20,000, or a 400 naming `step`. */
export function timeAxis(from: number, to: number, stepS: number, partial = false): number[] {
  const first = Math.ceil(from / 1000 / stepS) * stepS;
  // with `partial`, the step that holds `to` is the last (a live chart shows the newest windows)
  const last = (partial ? Math.ceil : Math.floor)(to / 1000 / stepS) * stepS;
  const nb = Math.max(0, Math.floor((last - first) / stepS) + 1);
  if (nb > 20_000)
    throw new QueryError('step', `${nb} points over the range; use a step of at least ${Math.ceil((last - first) / 20_000)} s`);
  const t: number[] = new Array(nb);
  for (let i = 0; i < nb; i++) t[i] = first + i * stepS;
  return t;
}

/**
 * Buckets rows into steps (a point at t falls in the step ending at or after t) and aggregates,
 * first within each series, then across the series of each group:
 * - avg: Σ sums / Σ counts (the mean level of a gauge, the mean sample of a distribution);
 * - min, max: of the points' min and max;
 * - sum: counters and distributions add their sums; gauges and sets add each series' mean;
 * - last: each series' latest value, added across series;
 * - rate: per second over the step (counter sums, distribution counts), added across series;
 * - p50…p99: the quantile of all the group's sketches merged (a fleet percentile, not an average).
 */
export function reduce(q: Query, kind: SeriesInfo['kind'] | undefined, stepS: number, resolutionS: number, sources: Source[]): QueryResult {
  checkAgg(q.agg, kind, q.name);
  const t = timeAxis(q.from, q.to, stepS, true);
  const nb = t.length;
  // refused before a row is read: the rows are read lazily, per source, below
  q.budget?.take(sources.length, nb);
  const first = t[0] ?? 0;

  // group key → tags and accumulators
  const groups = new Map<string, { tags: Record<string, string>; acc: Acc }>();
  const q0 = PERCENTILES[q.agg];
  for (const src of sources) {
    q.budget?.check();
    let gk: string;
    let gtags: Record<string, string>;
    if (q.by === undefined) {
      gtags = src.tags;
      gk = JSON.stringify(Object.entries(src.tags).sort());
    } else {
      gtags = {};
      for (const k of q.by) if (src.tags[k] !== undefined) gtags[k] = src.tags[k] as string;
      gk = JSON.stringify(Object.entries(gtags).sort());
    }
    let g = groups.get(gk);
    if (!g) {
      g = { tags: gtags, acc: new Acc(nb, q0 !== undefined) };
      groups.set(gk, g);
    }
    const one = new Acc(nb, false);
    for (const r of src.rows(q0 !== undefined)) {
      const dS = (r[6] ?? 0) / 1000;
      // an amount wider than a step is split over the steps it covers; a level that spans two steps or more
      // answers each step whose end it covers (a window only a little longer than the step keeps to one)
      if (dS > stepS && (kind === 'counter' || kind === 'distribution' || dS >= 2 * stepS)) {
        // a point wider than the step answers every step it covers (docs/time-model.md)
        for (const [i, part] of covering(r, dS, stepS, first, nb, kind)) {
          one.add(i, part);
          if (q0 !== undefined && part[7]) g.acc.sketch(i, part);
        }
        continue;
      }
      const b = Math.ceil(r[0] / stepS) * stepS;
      const i = (b - first) / stepS;
      if (i < 0 || i >= nb) continue;
      one.add(i, r);
      if (q0 !== undefined && r[7]) g.acc.sketch(i, r);
    }
    g.acc.combine(one, q.agg, kind);
  }
  // the last step may still be filling: a rate there is over the windows it holds so far
  const open = nb > 0 && (t[nb - 1] as number) > q.to / 1000;
  const series = [...groups.values()].map((g) => ({ tags: g.tags, values: g.acc.values(q.agg, stepS, q0, kind, open) }));
  return { t, series, step: stepS, resolution: resolutionS, ...(kind ? { kind } : {}) };
}

/**
 * The steps a row covers, (t − d, t], each with its share: an amount (a counter's sum, a
 * distribution's count and sum) split by the time it overlaps the step (so nothing counts twice);
 * a level (gauge, set) whole, in each step whose end it covers (so each step has the one level in
 * force at its end, and contiguous windows leave no step without one); min, max and a sketch
 * describe every part of the interval.
 */
function covering(
  r: Row,
  dS: number,
  stepS: number,
  first: number,
  nb: number,
  kind: SeriesInfo['kind'] | undefined,
): Array<[number, Row]> {
  const t = r[0];
  const from = t - dS;
  const out: Array<[number, Row]> = [];
  const amount = kind === 'counter' || kind === 'distribution';
  for (let b = (Math.floor(from / stepS) + 1) * stepS; b - stepS < t; b += stepS) {
    if (!amount && b > t) break;
    const i = (b - first) / stepS;
    if (i >= nb) break;
    if (i < 0) continue;
    const overlap = Math.min(b, t) - Math.max(b - stepS, from);
    if (overlap <= 0) continue;
    const f = overlap / dS;
    const part: Row = [Math.min(b, t), r[1], r[2], r[3], r[4], r[5], overlap * 1000, r[7]];
    if (amount) {
      if (r[2] === null) part[1] = (r[1] ?? 0) * f;
      else {
        part[2] = r[2] * f;
        part[3] = (r[3] ?? 0) * f;
      }
    }
    out.push([i, part]);
  }
  return out;
}

/** Per-bucket accumulators, as parallel arrays. */
class Acc {
  readonly n: Float64Array;
  readonly s: Float64Array;
  readonly lo: Float64Array;
  readonly hi: Float64Array;
  /** the latest value and its time (within one series) */
  readonly lastV: Float64Array;
  readonly lastT: Float64Array;
  /** across series: the sum of each series' mean (gauge sum) or latest value */
  readonly x: Float64Array;
  readonly has: Uint8Array;
  /** ms of windows each step holds (for a rate over a step still filling) */
  readonly cov: Float64Array;
  readonly sketches: Array<SketchSum | undefined> | undefined;

  constructor(nb: number, sketches: boolean) {
    this.n = new Float64Array(nb);
    this.s = new Float64Array(nb);
    this.lo = new Float64Array(nb).fill(Number.POSITIVE_INFINITY);
    this.hi = new Float64Array(nb).fill(Number.NEGATIVE_INFINITY);
    this.lastV = new Float64Array(nb);
    this.lastT = new Float64Array(nb).fill(Number.NEGATIVE_INFINITY);
    this.x = new Float64Array(nb);
    this.has = new Uint8Array(nb);
    this.cov = new Float64Array(nb);
    this.sketches = sketches ? new Array(nb) : undefined;
  }

  add(i: number, r: Row): void {
    const t = r[0];
    const v = r[1];
    const one = r[2] === null;
    const n = one ? 1 : (r[2] as number);
    const sum = one ? (v ?? 0) : (r[3] ?? 0);
    const lo = one ? v : r[4];
    const hi = one ? v : r[5];
    this.has[i] = 1;
    this.cov[i] = (this.cov[i] as number) + (r[6] ?? 0);
    this.n[i] = (this.n[i] as number) + n;
    this.s[i] = (this.s[i] as number) + sum;
    if (lo !== null && lo < (this.lo[i] as number)) this.lo[i] = lo;
    if (hi !== null && hi > (this.hi[i] as number)) this.hi[i] = hi;
    if (t >= (this.lastT[i] as number)) {
      this.lastT[i] = t;
      this.lastV[i] = v ?? 0;
    }
  }

  sketch(i: number, r: Row): void {
    const sk = this.sketches as Array<SketchSum | undefined>;
    let have = sk[i];
    if (!have) {
      have = new SketchSum();
      sk[i] = have;
    }
    // a percentile reads the sketch alone: its count is its buckets', unclamped by min and max
    have.addEncoded(r[7] as Uint8Array, r[2] === null ? undefined : { count: r[2], min: r[4] ?? 0, max: r[5] ?? 0 });
    this.has[i] = 1;
  }

  /** Adds one series' buckets into this group's. */
  combine(one: Acc, agg: Query['agg'], kind: SeriesInfo['kind'] | undefined): void {
    for (let i = 0; i < one.has.length; i++) {
      if (!one.has[i]) continue;
      this.has[i] = 1;
      this.n[i] = (this.n[i] as number) + (one.n[i] as number);
      this.s[i] = (this.s[i] as number) + (one.s[i] as number);
      if ((one.lo[i] as number) < (this.lo[i] as number)) this.lo[i] = one.lo[i] as number;
      if ((one.hi[i] as number) > (this.hi[i] as number)) this.hi[i] = one.hi[i] as number;
      // the most time a series of the group covers in the step
      if ((one.cov[i] as number) > (this.cov[i] as number)) this.cov[i] = one.cov[i] as number;
      if (agg === 'last') this.x[i] = (this.x[i] as number) + (one.lastV[i] as number);
      else if (agg === 'sum') {
        const mean = one.n[i] ? (one.s[i] as number) / (one.n[i] as number) : 0;
        this.x[i] = (this.x[i] as number) + (kind === 'gauge' || kind === 'set' ? mean : (one.s[i] as number));
      }
    }
  }

  values(
    agg: Query['agg'],
    stepS: number,
    q: number | undefined,
    kind: SeriesInfo['kind'] | undefined,
    open = false,
  ): Array<number | null> {
    const out: Array<number | null> = new Array(this.has.length);
    for (let i = 0; i < this.has.length; i++) {
      if (!this.has[i]) {
        out[i] = null;
        continue;
      }
      const n = this.n[i] as number;
      const s = this.s[i] as number;
      let v: number;
      switch (agg) {
        case 'avg':
          v = n > 0 ? s / n : Number.NaN;
          break;
        case 'min':
          v = this.lo[i] as number;
          break;
        case 'max':
          v = this.hi[i] as number;
          break;
        case 'sum':
        case 'last':
          v = this.x[i] as number;
          break;
        case 'rate':
          // counters keep their sums in s; distributions their sample count in n
          v =
            (kind === 'distribution' ? n : s) /
            (i === this.has.length - 1 && open && (this.cov[i] as number) > 0 ? Math.min(stepS, (this.cov[i] as number) / 1000) : stepS);
          break;
        default: {
          const sk = this.sketches?.[i];
          v = sk && q !== undefined ? sk.quantile(q) : Number.NaN;
        }
      }
      out[i] = Number.isFinite(v) ? v : null;
    }
    return out;
  }
}
