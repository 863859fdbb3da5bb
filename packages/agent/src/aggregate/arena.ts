/**
 * The open window's distributions without an object per sketch: per series, its count, sum, min, max
 * and zero count in columns and its buckets — (index, count) pairs sorted by index — in a range of two
 * shared typed arrays. 50k `Sketch` objects, each with a store, a bucket array and five boxed numbers,
 * held ~30 MB of JS heap at 100k series; this holds the same in ~15 MB of typed arrays.
 *
 * Buckets are `Sketch`'s (aggregate/sketch.ts: the same index and the same bytes, `encodeInto`'s form).
 * A series with more than `MAX_SMALL` buckets in a window becomes a `Sketch` (rare: ten samples a window
 * land in ten buckets at most), so the bound on buckets and its collapse are the sketch's own.
 *
 * Two sides: a flush closes the window held on one side while the next window fills the other, and
 * the closed side is emptied at once when the flush ends (a bump allocator, no free list).
 */
import { grown, putUvarint, zig } from '../model/bytes.js';
import { Sketch } from './sketch.js';

/** keys: a negative value's index − SIGN, a positive one's + SIGN: one sorted list, the negatives first */
const SIGN = 2 ** 29;
/** buckets a series keeps here in one window; past it, it becomes a `Sketch` */
const MAX_SMALL = 64;
/** `room` of a series that is a `Sketch` */
const BIG = 255;

/** slots a page holds: a series' range lies within one page (2^16: offsets split with a shift) */
const PAGE = 1 << 16;

/** A page: PAGE slots of (bucket key, count). */
interface Page {
  keys: Int32Array;
  counts: Float64Array;
}

/**
 * Pages kept once made (768 KiB each), in one pool both sides draw from: a side grows without copying
 * and is emptied without freeing. One contiguous array grown and cut down instead freed blocks of
 * 10–16 MB, after which glibc served every block up to that size from its `brk` heap, which fragments
 * (docs/agent-store.md#memory). A side keeps its pages only while it holds a window: when the flush has
 * read it, they go back to the pool, where the other side takes them as its window grows (two sides
 * each keeping their own pages held two windows' worth, ~7 MB more at 100k series).
 */
class Pool {
  free: Page[] = [];

  take(): Page {
    return this.free.pop() ?? { keys: new Int32Array(PAGE), counts: new Float64Array(PAGE) };
  }
}

class Side {
  keys: Int32Array[] = [];
  counts: Float64Array[] = [];
  /** the page being filled, and slots used in it */
  page = -1;
  top = PAGE;

  constructor(private readonly pool: Pool) {}

  /** `n` (≤ PAGE) slots: where they start (page × PAGE + slot). */
  alloc(n: number): number {
    if (this.top + n > PAGE) {
      this.page++;
      this.top = 0;
      if (this.page === this.keys.length) {
        const p = this.pool.take();
        this.keys.push(p.keys);
        this.counts.push(p.counts);
      }
    }
    const at = this.page * PAGE + this.top;
    this.top += n;
    return at;
  }

  /**
   * Emptied: its pages back to the pool, which keeps what the two sides may hold at once — a tenth
   * more than this window used, and one (the first window, without hints, moves many series as they
   * grow) — counting those the other side holds already.
   */
  empty(other: Side): void {
    const keep = Math.ceil((this.page + 1) * 1.1) + 1 - other.keys.length;
    for (let i = 0; i < this.keys.length; i++)
      this.pool.free.push({ keys: this.keys[i] as Int32Array, counts: this.counts[i] as Float64Array });
    this.keys.length = 0;
    this.counts.length = 0;
    if (this.pool.free.length > keep) this.pool.free.length = Math.max(0, keep);
    this.page = -1;
    this.top = PAGE;
  }
}

export class SketchArena {
  private readonly pool = new Pool();
  private readonly sides = [new Side(this.pool), new Side(this.pool)];
  /** the side new sketches are made on */
  private cur = 0;
  /** per series: 1 while it holds a sketch */
  private on = new Uint8Array(0);
  private side = new Uint8Array(0);
  private off = new Uint32Array(0);
  private len = new Uint8Array(0);
  /** slots reserved at `off`; BIG: the series is a `Sketch` in `big` */
  private room = new Uint8Array(0);
  /** buckets the series' last sketch had, plus one (0: none yet): the room its next one starts with */
  private hint = new Uint8Array(0);
  count = new Float64Array(0);
  sum = new Float64Array(0);
  min = new Float64Array(0);
  max = new Float64Array(0);
  private zero = new Float64Array(0);
  private readonly big = new Map<number, Sketch>();
  private readonly lnGamma: number;

  constructor(readonly alpha: number) {
    // as `Sketch` computes it, so the indexes are the same to the bit
    this.lnGamma = Math.log((1 + alpha) / (1 - alpha));
  }

  /** Room for series ids below `cap`. */
  grow(cap: number): void {
    this.on = grown(this.on, cap);
    this.side = grown(this.side, cap);
    this.off = grown(this.off, cap);
    this.len = grown(this.len, cap);
    this.room = grown(this.room, cap);
    this.hint = grown(this.hint, cap);
    this.count = grown(this.count, cap);
    this.sum = grown(this.sum, cap);
    this.min = grown(this.min, cap);
    this.max = grown(this.max, cap);
    this.zero = grown(this.zero, cap);
  }

  has(id: number): boolean {
    return this.on[id] === 1;
  }

  /** Adds `v` with weight `n` to series `id`'s sketch of the window being filled, made on first use. */
  add(id: number, v: number, n: number): void {
    if (this.on[id] !== 1) this.open(id);
    if (this.room[id] === BIG) {
      (this.big.get(id) as Sketch).add(v, n);
      return;
    }
    if (!Number.isFinite(v) || !(n > 0)) return;
    let key: number;
    if (v > 1e-9) key = Math.ceil(Math.log(v) / this.lnGamma) + SIGN;
    else if (v < -1e-9) key = Math.ceil(Math.log(-v) / this.lnGamma) - SIGN;
    else key = 0;
    if (key !== 0 && !this.bucket(id, key, n)) {
      // past MAX_SMALL buckets: a `Sketch` from here on
      const k = this.toSketch(id);
      this.big.set(id, k);
      this.room[id] = BIG;
      k.add(v, n);
      return;
    }
    if (key === 0) this.zero[id] = (this.zero[id] as number) + n;
    this.count[id] = (this.count[id] as number) + n;
    this.sum[id] = (this.sum[id] as number) + v * n;
    if (v < (this.min[id] as number)) this.min[id] = v;
    if (v > (this.max[id] as number)) this.max[id] = v;
  }

  private open(id: number): void {
    // as many as last window, and one more: a series' windows are alike, so it seldom moves. A new
    // series gets 16, which most hold in a window (it would otherwise move 4 → 8 → 16, leaving 12 behind)
    const hint = this.hint[id] as number;
    const room = hint === 0 ? 16 : Math.min(MAX_SMALL, Math.max(4, hint));
    this.on[id] = 1;
    this.side[id] = this.cur;
    this.off[id] = (this.sides[this.cur] as Side).alloc(room);
    this.room[id] = room;
    this.len[id] = 0;
    this.count[id] = 0;
    this.sum[id] = 0;
    this.zero[id] = 0;
    this.min[id] = Number.POSITIVE_INFINITY;
    this.max[id] = Number.NEGATIVE_INFINITY;
  }

  /** Counts `n` in bucket `key`; false when the series has no room for a new bucket. */
  private bucket(id: number, key: number, n: number): boolean {
    const s = this.sides[this.side[id] as number] as Side;
    const o = this.off[id] as number;
    let keys = s.keys[o >>> 16] as Int32Array;
    let counts = s.counts[o >>> 16] as Float64Array;
    let off = o & (PAGE - 1);
    const len = this.len[id] as number;
    let lo = off;
    let hi = off + len;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((keys[mid] as number) < key) lo = mid + 1;
      else hi = mid;
    }
    if (lo < off + len && keys[lo] === key) {
      counts[lo] = (counts[lo] as number) + n;
      return true;
    }
    const room = this.room[id] as number;
    if (len === room) {
      if (room >= MAX_SMALL) return false;
      // moved to the top with twice the room (the old range is left until the side is emptied)
      const next = Math.min(MAX_SMALL, room * 2);
      const to = s.alloc(next);
      const at = to & (PAGE - 1);
      const k2 = s.keys[to >>> 16] as Int32Array;
      const c2 = s.counts[to >>> 16] as Float64Array;
      k2.set(keys.subarray(off, off + len), at);
      c2.set(counts.subarray(off, off + len), at);
      keys = k2;
      counts = c2;
      lo += at - off;
      off = at;
      this.off[id] = to;
      this.room[id] = next;
    }
    const end = off + len;
    if (lo < end) {
      keys.copyWithin(lo + 1, lo, end);
      counts.copyWithin(lo + 1, lo, end);
    }
    keys[lo] = key;
    counts[lo] = n;
    this.len[id] = len + 1;
    return true;
  }

  /** A flush begins: the window it closes stays on its side, the next window fills the other. */
  swap(): void {
    this.cur ^= 1;
  }

  /** The flush is over: every sketch on the side it closed has been taken, and the side is emptied. */
  flushed(): void {
    (this.sides[this.cur ^ 1] as Side).empty(this.sides[this.cur] as Side);
  }

  /** Series `id`'s sketch as an object; the series holds none after (a stash, or a sink that reads it). */
  take(id: number): Sketch {
    const k = this.room[id] === BIG ? (this.big.get(id) as Sketch) : this.toSketch(id);
    this.done(id);
    return k;
  }

  /** Its count, sum, min and max in the columns (a series that became a `Sketch` holds them there). */
  settle(id: number): void {
    if (this.room[id] !== BIG) return;
    const k = this.big.get(id) as Sketch;
    this.count[id] = k.count;
    this.sum[id] = k.sum;
    this.min[id] = k.min;
    this.max[id] = k.max;
  }

  /**
   * Series `id`'s buckets in `Sketch.encodeInto`'s form at `at`: returns where they end, or -1 when `buf`
   * lacks room (grow it and call again).
   */
  encodeInto(id: number, buf: Uint8Array, at: number): number {
    if (this.room[id] === BIG) return (this.big.get(id) as Sketch).encodeInto(buf, at);
    const [keys, counts, off, end] = this.range(id);
    const zero = this.zero[id] as number;
    let ints = Number.isInteger(zero) && zero >= 0;
    let nNeg = 0;
    for (let j = off; j < end; j++) {
      const c = counts[j] as number;
      if (!Number.isInteger(c) || c > 2 ** 48) ints = false;
      if ((keys[j] as number) < 0) nNeg++;
    }
    // fractional counts (sample rates such as @0.3) are written as float64: the sketch's own encoder
    if (!ints) {
      const b = this.toSketch(id).encode();
      if (at + b.length > buf.length) return -1;
      buf.set(b, at);
      return at + b.length;
    }
    if (at + 32 + 16 * (end - off) > buf.length) return -1;
    buf[at] = 0;
    let n = putUvarint(buf, at + 1, zero);
    n = putUvarint(buf, n, nNeg);
    n = putUvarint(buf, n, end - off - nNeg);
    // each store's indexes as zigzag deltas from 0, then its counts
    let prev = 0;
    for (let j = off; j < end; j++) {
      const key = keys[j] as number;
      if (j === off + nNeg) prev = 0;
      const k = key < 0 ? key + SIGN : key - SIGN;
      const d = k - prev;
      n = putUvarint(buf, n, zig(d));
      prev = k;
      n = putUvarint(buf, n, counts[j] as number);
    }
    return n;
  }

  /** The series holds no sketch any more; its next one starts with room for as many buckets. */
  done(id: number): void {
    if (this.on[id] !== 1) return;
    this.on[id] = 0;
    if (this.room[id] === BIG) {
      this.big.delete(id);
      this.hint[id] = MAX_SMALL;
    } else this.hint[id] = (this.len[id] as number) + 1;
  }

  /** Series `id`'s page (keys, counts) and its range in it. */
  private range(id: number): [Int32Array, Float64Array, number, number] {
    const s = this.sides[this.side[id] as number] as Side;
    const o = this.off[id] as number;
    const off = o & (PAGE - 1);
    return [s.keys[o >>> 16] as Int32Array, s.counts[o >>> 16] as Float64Array, off, off + (this.len[id] as number)];
  }

  private toSketch(id: number): Sketch {
    const [keys, counts, off, end] = this.range(id);
    const pos: Array<[number, number]> = [];
    const neg: Array<[number, number]> = [];
    for (let j = off; j < end; j++) {
      const key = keys[j] as number;
      if (key < 0) neg.push([key + SIGN, counts[j] as number]);
      else pos.push([key - SIGN, counts[j] as number]);
    }
    return Sketch.fromJSON({
      alpha: this.alpha,
      pos,
      neg,
      zero: this.zero[id] as number,
      count: this.count[id] as number,
      sum: this.sum[id] as number,
      min: this.min[id] as number,
      max: this.max[id] as number,
    });
  }
}
