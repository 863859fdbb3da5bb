/**
 * A DDSketch: relative-error quantiles (1 % by default) from logarithmic buckets, mergeable by
 * adding counts. Windows, instances and whole services merge into true percentiles instead of
 * averages of percentiles. Bucket count is bounded: past `maxBuckets` the lowest ones collapse,
 * losing accuracy only at the bottom of the distribution.
 */
const EMPTY: ReadonlyMap<number, number> = new Map();

export class Sketch {
  readonly alpha: number;
  private readonly gamma: number;
  private readonly lnGamma: number;
  private readonly maxBuckets: number;
  private readonly pos = new Map<number, number>();
  /** most distributions never see a negative value: this map is made on first use */
  private negStore: Map<number, number> | undefined;
  private get neg(): Map<number, number> {
    this.negStore ??= new Map();
    return this.negStore;
  }
  /** reading must not create it */
  private get negView(): ReadonlyMap<number, number> {
    return this.negStore ?? EMPTY;
  }
  zero = 0;
  count = 0;
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;

  constructor(alpha = 0.01, maxBuckets = 2048) {
    this.alpha = alpha;
    this.gamma = (1 + alpha) / (1 - alpha);
    this.lnGamma = Math.log(this.gamma);
    this.maxBuckets = maxBuckets;
  }

  private index(v: number): number {
    return Math.ceil(Math.log(v) / this.lnGamma);
  }

  private valueAt(i: number): number {
    return (2 * this.gamma ** i) / (this.gamma + 1);
  }

  /** Adds `v` with weight `n` (a sample rate of 0.1 gives weight 10). */
  add(v: number, n = 1): void {
    if (!Number.isFinite(v) || !(n > 0)) return;
    this.count += n;
    this.sum += v * n;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    if (v > 1e-9) this.bump(this.pos, this.index(v), n);
    else if (v < -1e-9) this.bump(this.neg, this.index(-v), n);
    else this.zero += n;
  }

  private bump(store: Map<number, number>, i: number, n: number): void {
    store.set(i, (store.get(i) ?? 0) + n);
    if (store.size > this.maxBuckets) this.collapse(store);
  }

  private collapse(store: Map<number, number>): void {
    const keys = [...store.keys()].sort((a, b) => a - b);
    const [a, b] = keys as [number, number];
    store.set(b, (store.get(b) ?? 0) + (store.get(a) ?? 0));
    store.delete(a);
  }

  merge(o: Sketch): void {
    if (o.alpha !== this.alpha) throw new RangeError('sketches of different accuracy cannot merge');
    for (const [i, c] of o.pos) this.bump(this.pos, i, c);
    for (const [i, c] of o.negView) this.bump(this.neg, i, c);
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
    if (this.count === 0) return Number.NaN;
    if (q <= 0) return this.min;
    if (q >= 1) return this.max;
    const rank = Math.max(1, Math.ceil(q * this.count)) - 1e-9;
    let seen = 0;
    const negKeys = [...this.negView.keys()].sort((a, b) => b - a);
    for (const i of negKeys) {
      seen += this.negView.get(i) as number;
      if (seen > rank) return this.clamp(-this.valueAt(i));
    }
    seen += this.zero;
    if (seen > rank) return 0;
    const posKeys = [...this.pos.keys()].sort((a, b) => a - b);
    for (const i of posKeys) {
      seen += this.pos.get(i) as number;
      if (seen > rank) return this.clamp(this.valueAt(i));
    }
    return this.max;
  }

  /** Several quantiles in one pass over the buckets (ascending qs). */
  quantiles(qs: readonly number[]): number[] {
    if (this.count === 0) return qs.map(() => Number.NaN);
    const out: number[] = [];
    const ranks = qs.map((q) => Math.max(1, Math.ceil(q * this.count)) - 1e-9);
    const walk: Array<[number, number]> = [];
    for (const i of [...this.negView.keys()].sort((a, b) => b - a)) walk.push([-this.valueAt(i), this.negView.get(i) as number]);
    if (this.zero > 0) walk.push([0, this.zero]);
    for (const i of [...this.pos.keys()].sort((a, b) => a - b)) walk.push([this.valueAt(i), this.pos.get(i) as number]);
    let seen = 0;
    let j = 0;
    for (let k = 0; k < qs.length; k++) {
      const q = qs[k] as number;
      if (q <= 0) {
        out.push(this.min);
        continue;
      }
      if (q >= 1) {
        out.push(this.max);
        continue;
      }
      const rank = ranks[k] as number;
      while (j < walk.length && seen + (walk[j] as [number, number])[1] <= rank) {
        seen += (walk[j] as [number, number])[1];
        j++;
      }
      out.push(j < walk.length ? this.clamp((walk[j] as [number, number])[0]) : this.max);
    }
    return out;
  }

  private clamp(v: number): number {
    return Math.min(this.max, Math.max(this.min, v));
  }

  get buckets(): number {
    return this.pos.size + this.negView.size + (this.zero > 0 ? 1 : 0);
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
    return {
      alpha: this.alpha,
      pos: [...this.pos],
      neg: [...this.negView],
      zero: this.zero,
      count: this.count,
      sum: this.sum,
      min: this.min,
      max: this.max,
    };
  }

  static fromJSON(j: ReturnType<Sketch['toJSON']>): Sketch {
    const s = new Sketch(j.alpha);
    for (const [i, c] of j.pos) s.pos.set(i, c);
    for (const [i, c] of j.neg) s.neg.set(i, c);
    s.zero = j.zero;
    s.count = j.count;
    s.sum = j.sum;
    s.min = j.min;
    s.max = j.max;
    return s;
  }
}
