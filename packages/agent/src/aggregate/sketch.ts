/**
 * A DDSketch: relative-error quantiles (1 % by default) from logarithmic buckets, mergeable by
 * adding counts. Windows, instances and whole services merge into true percentiles instead of
 * averages of percentiles. Bucket count is bounded: past `maxBuckets` the lowest ones collapse,
 * losing accuracy only at the bottom of the distribution.
 *
 * Buckets live in one array of (index, count) pairs kept sorted by index, so a quantile is one walk
 * with no sort, and an agent holding 100k mostly small sketches stays small.
 */
import { ByteReader, ByteWriter, putUvarint, zig } from '../model/bytes.js';

class Store {
  /** [index0, count0, index1, count1, …] in its first `n` slots, sorted by index: one array, grown in place */
  b: number[] = [];
  /** slots in use: a cleared store keeps its array, so a sketch reused window after window allocates nothing */
  n = 0;
  /** where the last add landed (an even offset): repeated values hit it without a search */
  private hint = 0;

  get size(): number {
    return this.n >> 1;
  }

  key(j: number): number {
    return this.b[j << 1] as number;
  }

  count(j: number): number {
    return this.b[(j << 1) + 1] as number;
  }

  set(b: number[]): void {
    this.b = b;
    this.n = b.length;
    this.hint = 0;
  }

  clear(): void {
    this.n = 0;
    this.hint = 0;
    // a store that once held many buckets does not keep their room for ever
    if (this.b.length > 128) this.b = [];
  }

  add(i: number, c: number, max: number): void {
    const b = this.b;
    const n = this.n;
    const h = this.hint;
    if (h < n && b[h] === i) {
      (b[h + 1] as number) += c;
      return;
    }
    let lo = 0;
    let hi = n >> 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((b[mid << 1] as number) < i) lo = mid + 1;
      else hi = mid;
    }
    const at = lo << 1;
    if (at < n && b[at] === i) (b[at + 1] as number) += c;
    else if (n === b.length) {
      if (n === 0) this.b = [i, c];
      else if (at === n) b.push(i, c);
      // in place: arrays rebuilt on every new bucket would be promoted and discarded by the million,
      // and the old generation would swell with them
      else b.splice(at, 0, i, c);
      this.n = n + 2;
    } else {
      // room left by a clear: the buckets above move up in place
      if (at < n) b.copyWithin(at + 2, at, n);
      b[at] = i;
      b[at + 1] = c;
      this.n = n + 2;
    }
    this.hint = at;
    // past the bound, the lowest two buckets collapse into one
    if (this.n > max << 1) {
      const bb = this.b;
      const c0 = bb[1] as number;
      bb.copyWithin(0, 2, this.n);
      this.n -= 2;
      (bb[1] as number) += c0;
      this.hint = 0;
    }
  }
}

/** What sketches of one accuracy share (kept off each instance: 50k sketches, one copy). */
interface Params {
  alpha: number;
  gamma: number;
  lnGamma: number;
  maxBuckets: number;
  /** bucket index → representative value, filled as buckets are read (a flush reads 250k of them) */
  values: Map<number, number>;
}
const params = new Map<string, Params>();
let lastParams: Params | undefined;
function paramsOf(alpha: number, maxBuckets: number): Params {
  if (lastParams && lastParams.alpha === alpha && lastParams.maxBuckets === maxBuckets) return lastParams;
  const key = `${alpha}/${maxBuckets}`;
  let p = params.get(key);
  if (!p) {
    const gamma = (1 + alpha) / (1 - alpha);
    p = { alpha, gamma, lnGamma: Math.log(gamma), maxBuckets, values: new Map() };
    params.set(key, p);
  }
  lastParams = p;
  return p;
}

/** Whether every count is a whole number that `encodeInto` writes as a varint. */
function intCounts(st: Store): boolean {
  const b = st.b;
  for (let j = 1; j < st.n; j += 2) {
    const c = b[j] as number;
    if (!Number.isInteger(c) || c > 2 ** 48) return false;
  }
  return true;
}

/** A store's buckets: index deltas zigzagged, counts, as varints. */
function putBuckets(buf: Uint8Array, n: number, st: Store): number {
  const b = st.b;
  let prev = 0;
  for (let j = 0; j < st.n; j += 2) {
    const k = b[j] as number;
    const d = k - prev;
    n = putUvarint(buf, n, zig(d));
    prev = k;
    n = putUvarint(buf, n, b[j + 1] as number);
  }
  return n;
}

export class Sketch {
  private readonly p: Params;
  private readonly pos = new Store();
  /** most distributions never see a negative value: this store is made on first use */
  private neg: Store | undefined;
  zero = 0;
  count = 0;
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;

  constructor(alpha = 0.01, maxBuckets = 2048) {
    this.p = paramsOf(alpha, maxBuckets);
  }

  get alpha(): number {
    return this.p.alpha;
  }

  private get maxBuckets(): number {
    return this.p.maxBuckets;
  }

  /** Empty again, keeping its arrays: the aggregator reuses a window's sketches once every sink has had them. */
  clear(): void {
    this.pos.clear();
    this.neg?.clear();
    this.zero = 0;
    this.count = 0;
    this.sum = 0;
    this.min = Number.POSITIVE_INFINITY;
    this.max = Number.NEGATIVE_INFINITY;
  }

  private index(v: number): number {
    // + 0 turns the -0 of values just under 1 into 0, so equal buckets compare equal everywhere
    return Math.ceil(Math.log(v) / this.p.lnGamma) + 0;
  }

  private valueAt(i: number): number {
    const p = this.p;
    let v = p.values.get(i);
    if (v === undefined) {
      v = (2 * p.gamma ** i) / (p.gamma + 1);
      // indexes span about ±40k at most (1e-9 … 1e300 at 1 %): the cache stays small
      p.values.set(i, v);
    }
    return v;
  }

  /** Adds `v` with weight `n` (a sample rate of 0.1 gives weight 10). */
  add(v: number, n = 1): void {
    if (!Number.isFinite(v) || !(n > 0)) return;
    this.count += n;
    this.sum += v * n;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    if (v > 1e-9) this.pos.add(this.index(v), n, this.maxBuckets);
    else if (v < -1e-9) {
      this.neg ??= new Store();
      this.neg.add(this.index(-v), n, this.maxBuckets);
    } else this.zero += n;
  }

  merge(o: Sketch): void {
    if (o.alpha !== this.alpha) throw new RangeError('sketches of different accuracy cannot merge');
    const merge = (from: Store, to: Store) => {
      for (let k = 0; k < from.size; k++) to.add(from.key(k), from.count(k), this.maxBuckets);
    };
    merge(o.pos, this.pos);
    if (o.neg) {
      this.neg ??= new Store();
      merge(o.neg, this.neg);
    }
    this.zero += o.zero;
    this.count += o.count;
    this.sum += o.sum;
    if (o.min < this.min) this.min = o.min;
    if (o.max > this.max) this.max = o.max;
  }

  /**
   * The value at quantile q (0..1) by nearest rank, as etsy StatsD and ekg's own histogram count:
   * the smallest value with at least ⌈q·n⌉ values at or below it. Exact at 0 and 1 (min and max).
   */
  quantile(q: number): number {
    return this.quantiles([q])[0] as number;
  }

  /** Several quantiles in one pass over the buckets (ascending qs). */
  quantiles(qs: readonly number[]): number[] {
    const out = new Array<number>(qs.length);
    if (this.count === 0) return out.fill(Number.NaN);
    // walk order: negatives from the most negative (highest index), then zero, then positives
    const neg = this.neg;
    const nn = neg ? neg.size : 0;
    const pos = this.pos;
    let j = 0; // position in the walk: [0, nn) negatives, nn the zero bucket, then positives
    let seen = 0;
    const countAt = (p: number): number => (p < nn ? (neg as Store).count(nn - 1 - p) : p === nn ? this.zero : pos.count(p - nn - 1));
    const end = nn + 1 + pos.size;
    for (let k = 0; k < qs.length; k++) {
      const q = qs[k] as number;
      if (q <= 0) {
        out[k] = this.min;
        continue;
      }
      if (q >= 1) {
        out[k] = this.max;
        continue;
      }
      const rank = Math.max(1, Math.ceil(q * this.count)) - 1e-9;
      while (j < end && seen + countAt(j) <= rank) {
        seen += countAt(j);
        j++;
      }
      if (j >= end) out[k] = this.max;
      else if (j < nn) out[k] = this.clamp(-this.valueAt((neg as Store).key(nn - 1 - j)));
      else if (j === nn) out[k] = this.clamp(0);
      else out[k] = this.clamp(this.valueAt(pos.key(j - nn - 1)));
    }
    return out;
  }

  private clamp(v: number): number {
    return Math.min(this.max, Math.max(this.min, v));
  }

  get buckets(): number {
    return this.pos.size + (this.neg?.size ?? 0) + (this.zero > 0 ? 1 : 0);
  }

  toJSON(): {
    alpha: number;
    pos: Array<[number, number]>;
    neg: Array<[number, number]>;
    zero: number;
    count: number;
    sum: number;
    min: number;
    max: number;
  } {
    const pairs = (s: Store | undefined): Array<[number, number]> => {
      const out: Array<[number, number]> = [];
      for (let j = 0; s && j < s.size; j++) out.push([s.key(j), s.count(j)]);
      return out;
    };
    return {
      alpha: this.alpha,
      pos: pairs(this.pos),
      neg: pairs(this.neg),
      zero: this.zero,
      count: this.count,
      sum: this.sum,
      min: this.min,
      max: this.max,
    };
  }

  static fromJSON(j: ReturnType<Sketch['toJSON']>): Sketch {
    const s = new Sketch(j.alpha);
    for (const [i, c] of j.pos) s.pos.add(i, c, s.maxBuckets);
    if (j.neg.length > 0) {
      s.neg = new Store();
      for (const [i, c] of j.neg) s.neg.add(i, c, s.maxBuckets);
    }
    s.zero = j.zero;
    s.count = j.count;
    s.sum = j.sum;
    s.min = j.min;
    s.max = j.max;
    return s;
  }

  /**
   * The buckets as bytes, for the store: a flags byte (bit 0: counts are float64), then the zero
   * count, the number of negative and positive buckets, and each store's indexes as zigzag varint
   * deltas with their counts (varints, or float64 when a sample rate made them fractional).
   * count, sum, min and max are not included: the store keeps them in columns of their own.
   */
  encode(): Uint8Array {
    const neg = this.neg;
    const stores = [neg, this.pos];
    let floats = !Number.isInteger(this.zero) || this.zero < 0;
    for (const st of stores)
      for (let j = 0; st && j < st.size && !floats; j++) floats = !Number.isInteger(st.count(j)) || st.count(j) > 2 ** 48;
    const w = new ByteWriter(16 + 6 * this.buckets);
    w.byte(floats ? 1 : 0);
    const count = (n: number) => (floats ? w.f64(n) : w.uvarint(n));
    count(this.zero);
    w.uvarint(neg?.size ?? 0);
    w.uvarint(this.pos.size);
    for (const st of stores) {
      let prev = 0;
      for (let j = 0; st && j < st.size; j++) {
        const k = st.key(j);
        w.svarint(k - prev);
        prev = k;
        count(st.count(j));
      }
    }
    return w.done();
  }

  /**
   * What `encode` writes, written into `buf` at `at` without allocating (the store packs a window's
   * sketches back to back): returns where it ends, or -1 when `buf` lacks room (grow it and call again).
   */
  encodeInto(buf: Uint8Array, at: number): number {
    const neg = this.neg;
    const pos = this.pos;
    // no closure and no array per call: the store and the aggregator encode 50k sketches a window
    if (!intCounts(pos) || (neg !== undefined && !intCounts(neg)) || !Number.isInteger(this.zero) || this.zero < 0) {
      const b = this.encode();
      if (at + b.length > buf.length) return -1;
      buf.set(b, at);
      return at + b.length;
    }
    // at most 8 bytes a varint here (counts < 2^48, indexes small)
    if (at + 32 + 16 * this.buckets > buf.length) return -1;
    buf[at] = 0;
    let n = putUvarint(buf, at + 1, this.zero);
    n = putUvarint(buf, n, neg === undefined ? 0 : neg.n >> 1);
    n = putUvarint(buf, n, pos.n >> 1);
    if (neg !== undefined) n = putBuckets(buf, n, neg);
    return putBuckets(buf, n, pos);
  }

  /** The inverse of `encode`, with the columns kept beside it. Throws RangeError on a damaged blob. */
  static decode(bytes: Uint8Array, cols: { count: number; sum: number; min: number; max: number }, alpha = 0.01): Sketch {
    const s = new Sketch(alpha);
    const r = new ByteReader(bytes, 0, 'sketch blob');
    const floats = (r.byte() & 1) === 1;
    const count = () => (floats ? r.f64() : r.uvarint());
    s.zero = count();
    const nNeg = r.uvarint();
    const nPos = r.uvarint();
    if (nNeg > 1e6 || nPos > 1e6) throw new RangeError('sketch blob: bucket count out of range');
    const read = (n: number, st: Store) => {
      let k = 0;
      const b: number[] = [];
      for (let j = 0; j < n; j++) {
        k += r.svarint();
        b.push(k, count());
      }
      st.set(b);
    };
    if (nNeg > 0) {
      s.neg = new Store();
      read(nNeg, s.neg);
    }
    read(nPos, s.pos);
    s.count = cols.count;
    s.sum = cols.sum;
    s.min = cols.min;
    s.max = cols.max;
    return s;
  }
}

/** Counts over a contiguous run of bucket indexes, grown at either end: merging is an add per bucket. */
class Dense {
  c = new Float64Array(0);
  /** the index of c[0] */
  lo = 0;

  add(i: number, n: number): void {
    let j = i - this.lo;
    if (j < 0 || j >= this.c.length) {
      const from = this.c.length === 0 ? i - 32 : Math.min(this.lo, i - 32);
      const to = this.c.length === 0 ? i + 32 : Math.max(this.lo + this.c.length, i + 32);
      const next = new Float64Array(Math.max(to - from, this.c.length * 2));
      if (this.c.length > 0) next.set(this.c, this.lo - from);
      this.c = next;
      this.lo = from;
      j = i - from;
    }
    this.c[j] = (this.c[j] as number) + n;
  }
}

/**
 * Many stored sketches merged into one, straight from their bytes: no Sketch per blob and no sorted
 * insert per bucket, so a fleet percentile over 100 instances and a day (150k blobs) stays cheap.
 */
export class SketchSum {
  private readonly p: Params;
  private readonly pos = new Dense();
  private readonly neg = new Dense();
  private zero = 0;
  count = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;

  constructor(alpha = 0.01) {
    this.p = paramsOf(alpha, 2048);
  }

  /**
   * Adds the blob that `Sketch.encode` wrote at `at` in `bytes` (blobs can be read back to back),
   * with its columns; returns where it ends. Throws RangeError on a damaged blob.
   */
  addEncoded(bytes: Uint8Array, cols?: { count: number; min: number; max: number }, at = 0): number {
    const r = new ByteReader(bytes, at, 'sketch blob');
    const floats = (r.byte() & 1) === 1;
    const zero = floats ? r.f64() : r.uvarint();
    this.zero += zero;
    let total = zero;
    const nNeg = r.uvarint();
    const nPos = r.uvarint();
    if (nNeg > 1e6 || nPos > 1e6) throw new RangeError('sketch blob: bucket count out of range');
    for (const [n, d] of [
      [nNeg, this.neg],
      [nPos, this.pos],
    ] as const) {
      let k = 0;
      for (let j = 0; j < n; j++) {
        k += r.svarint();
        const c = floats ? r.f64() : r.uvarint();
        d.add(k, c);
        total += c;
      }
    }
    // without the columns, the count is the buckets' (equal to it: every sample lands in one) and
    // the answer is not clamped to min and max, staying within the sketch's relative accuracy
    if (!cols) {
      this.count += total;
      return r.n;
    }
    this.count += cols.count;
    if (cols.min < this.min) this.min = cols.min;
    if (cols.max > this.max) this.max = cols.max;
    return r.n;
  }

  /**
   * The union's buckets in the form `Sketch.encode` writes (the store's rollups merge windows this
   * way: no Sketch per blob). Every bucket is kept: a union may hold more than one sketch's bound.
   */
  encode(): Uint8Array {
    let floats = !Number.isInteger(this.zero) || this.zero < 0;
    let nNeg = 0;
    let nPos = 0;
    for (const c of this.neg.c)
      if (c !== 0) {
        nNeg++;
        if (!floats) floats = !Number.isInteger(c) || c > 2 ** 48;
      }
    for (const c of this.pos.c)
      if (c !== 0) {
        nPos++;
        if (!floats) floats = !Number.isInteger(c) || c > 2 ** 48;
      }
    const w = new ByteWriter(16 + 6 * (nNeg + nPos));
    w.byte(floats ? 1 : 0);
    const count = (n: number) => (floats ? w.f64(n) : w.uvarint(n));
    count(this.zero);
    w.uvarint(nNeg);
    w.uvarint(nPos);
    for (const d of [this.neg, this.pos]) {
      let prev = 0;
      for (let j = 0; j < d.c.length; j++) {
        const c = d.c[j] as number;
        if (c === 0) continue;
        w.svarint(d.lo + j - prev);
        prev = d.lo + j;
        count(c);
      }
    }
    return w.done();
  }

  /** The value at quantile q by nearest rank, as `Sketch.quantile` gives it for the union. */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const bounded = this.min <= this.max;
    if (bounded && q <= 0) return this.min;
    if (bounded && q >= 1) return this.max;
    const rank = Math.max(1, Math.ceil(q * this.count)) - 1e-9;
    const clamp = (v: number) => (!bounded ? v : v > this.max ? this.max : v < this.min ? this.min : v);
    const value = (i: number) => (2 * this.p.gamma ** i) / (this.p.gamma + 1);
    let seen = 0;
    // the last bucket seen, its value computed only when it is the answer
    let last = () => Number.NaN;
    const neg = this.neg;
    for (let j = neg.c.length - 1; j >= 0; j--) {
      if (neg.c[j] === 0) continue;
      seen += neg.c[j] as number;
      if (seen > rank) return clamp(-value(neg.lo + j));
      last = () => -value(neg.lo + j);
    }
    if (this.zero > 0) {
      seen += this.zero;
      if (seen > rank) return clamp(0);
      last = () => 0;
    }
    const pos = this.pos;
    let top = -1;
    for (let j = 0; j < pos.c.length; j++) {
      if (pos.c[j] === 0) continue;
      seen += pos.c[j] as number;
      if (seen > rank) return clamp(value(pos.lo + j));
      top = j;
    }
    // only float rounding of fractional counts gets here: the highest value seen
    return bounded ? this.max : top >= 0 ? value(pos.lo + top) : last();
  }
}
