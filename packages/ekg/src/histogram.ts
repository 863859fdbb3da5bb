/**
 * A fixed-size log-linear histogram of non-negative durations in microseconds, for the hot path:
 * record() is a few integer operations and one array increment, with no allocation. Each power of
 * two is split into 32 linear sub-buckets, so any quantile is within about 3 % of the true value.
 */
const SUB_BITS = 5;
const SUB = 1 << SUB_BITS; // 32
const MAX_EXP = 40; // 2^40 µs ≈ 12.7 days; longer values clamp into the top bucket
const SIZE = (MAX_EXP - SUB_BITS + 2) * SUB;

function indexOf(us: number): number {
  if (us < SUB) return us;
  if (us < 0x1_0000_0000) {
    // the hot path (under 71 minutes): integer operations only, no Math.pow or division
    const e = 31 - Math.clz32(us);
    return ((e - SUB_BITS + 1) << SUB_BITS) + (us >>> (e - SUB_BITS)) - SUB;
  }
  const e = Math.floor(Math.log2(us));
  if (e > MAX_EXP) return SIZE - 1;
  const sub = Math.floor(us / 2 ** (e - SUB_BITS)) - SUB;
  return (e - SUB_BITS + 1) * SUB + sub;
}

/** The midpoint, in µs, of the values that map to bucket i. */
function bucketValue(i: number): number {
  if (i < SUB) return i;
  const e = Math.floor(i / SUB) + SUB_BITS - 1;
  const sub = i % SUB;
  const width = 2 ** (e - SUB_BITS);
  return (SUB + sub) * width + width / 2;
}

export interface Distribution {
  count: number;
  /** milliseconds */
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export class Histogram {
  readonly counts = new Uint32Array(SIZE);
  count = 0;
  sumUs = 0;
  minUs = Number.POSITIVE_INFINITY;
  maxUs = 0;

  /** Records one duration given in milliseconds (as performance.now() differences are). */
  record(ms: number): void {
    let us = Math.round(ms * 1000);
    if (!(us >= 0)) us = 0; // also catches NaN
    const i = indexOf(us);
    this.counts[i] = (this.counts[i] as number) + 1;
    this.count++;
    this.sumUs += us;
    if (us > this.maxUs) this.maxUs = us;
    if (us < this.minUs) this.minUs = us;
  }

  /** The value at quantile q (0..1), in ms; exact at the extremes. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < SIZE; i++) {
      seen += this.counts[i] as number;
      if (seen >= rank) {
        const v = bucketValue(i);
        return Math.min(Math.max(v, this.minUs), this.maxUs) / 1000;
      }
    }
    return this.maxUs / 1000;
  }

  summary(): Distribution {
    if (this.count === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 };
    return {
      count: this.count,
      min: this.minUs / 1000,
      mean: this.sumUs / this.count / 1000,
      p50: this.quantile(0.5),
      p90: this.quantile(0.9),
      p99: this.quantile(0.99),
      max: this.maxUs / 1000,
    };
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sumUs = 0;
    this.minUs = Number.POSITIVE_INFINITY;
    this.maxUs = 0;
  }
}

/**
 * Cumulative Prometheus-style buckets with fixed upper bounds (seconds). Counts are kept per
 * bucket and summed on render, so an observation costs a short scan and one increment.
 */
export class Buckets {
  readonly bounds: readonly number[];
  readonly counts: Float64Array;
  count = 0;
  sum = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(seconds: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && seconds > (b[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.count++;
    this.sum += seconds;
  }

  /** [upper bound, cumulative count] pairs, +Inf last. */
  cumulative(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    let acc = 0;
    for (let i = 0; i < this.counts.length; i++) {
      acc += this.counts[i] as number;
      out.push([i < this.bounds.length ? (this.bounds[i] as number) : Number.POSITIVE_INFINITY, acc]);
    }
    return out;
  }
}
