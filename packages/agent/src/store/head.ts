/**
 * The head: each flushed window as one row holding every series' value in a columnar blob, so
 * a write is one sequential append whatever the series count. Fixed-width columns sorted by series
 * id, so one series is found by binary search without decoding the rest:
 *
 *   u32 version, levels, distributions, sketch bytes
 *   f64 level values[levels]
 *   f64 count[d], sum[d], min[d], max[d]        (min and max NaN where absent)
 *   u32 level ids[levels], distribution ids[d]   (ascending)
 *   u32 sketch ends[d]                            (offsets into the sketch bytes; equal ends: none)
 *   u8  sketch bytes, as `Sketch.encode` writes them
 */

import type { Sketch } from '../aggregate/sketch.js';

const VERSION = 1;
const HEADER = 16;

/** One window's values, as the writer gathers them before encoding. */
export class HeadBuilder {
  lids = new Uint32Array(1024);
  lvals = new Float64Array(1024);
  nl = 0;
  dids = new Uint32Array(256);
  dcols = new Float64Array(256 * 4);
  /** sketches back to back, and where each ends */
  sk: Uint8Array = new Uint8Array(64 * 1024);
  skEnds = new Uint32Array(256);
  skn = 0;
  nd = 0;

  reset(): void {
    this.run = undefined;
    this.nl = 0;
    this.nd = 0;
    this.skn = 0;
  }

  level(id: number, v: number): void {
    if (this.nl === this.lids.length) {
      this.lids = grow(this.lids, this.nl * 2);
      this.lvals = grow(this.lvals, this.nl * 2);
    }
    this.lids[this.nl] = id;
    this.lvals[this.nl++] = v;
  }

  /** A distribution; its sketch encoded straight into the window's buffer. */
  dist(id: number, n: number, s: number, lo: number, hi: number, sketch: Sketch | undefined): void {
    this.copyRun();
    if (sketch && sketch.count > 0) {
      let end = sketch.encodeInto(this.sk, this.skn);
      while (end < 0) {
        this.sk = growBytes(this.sk, this.sk.length * 2);
        end = sketch.encodeInto(this.sk, this.skn);
      }
      this.skn = end;
    }
    this.cols(id, n, s, lo, hi);
  }

  /** A distribution whose sketch is already bytes (`Sketch.encode`'s form). */
  distBytes(id: number, n: number, s: number, lo: number, hi: number, bytes: Uint8Array | null): void {
    this.copyRun();
    if (bytes) {
      if (this.skn + bytes.length > this.sk.length) this.sk = growBytes(this.sk, Math.max(this.sk.length * 2, this.skn + bytes.length));
      this.sk.set(bytes, this.skn);
      this.skn += bytes.length;
    }
    this.cols(id, n, s, lo, hi);
  }

  /** A distribution whose sketch is bytes `from`..`to` of `src` (`Sketch.encode`'s form; none when they are equal). */
  distRange(id: number, n: number, s: number, lo: number, hi: number, src: Uint8Array, from: number, to: number): void {
    const len = to - from;
    if (len > 0) {
      // the aggregator packs a window's sketches back to back in the order it lists them, which is
      // almost always the store's: consecutive ones are copied as one run, not 50k copies of tens of bytes
      if (src === this.run && from === this.runTo) this.runTo = to;
      else {
        this.copyRun();
        this.run = src;
        this.runFrom = from;
        this.runTo = to;
        this.runAt = this.skn;
      }
      this.skn += len;
    }
    this.cols(id, n, s, lo, hi);
  }

  /** sketch bytes `distRange` was given but has not copied yet: `runFrom`..`runTo` of `run`, to go at `runAt` */
  private run: Uint8Array | undefined;
  private runFrom = 0;
  private runTo = 0;
  private runAt = 0;

  private copyRun(): void {
    const src = this.run;
    if (src === undefined) return;
    this.run = undefined;
    const end = this.runAt + this.runTo - this.runFrom;
    if (end > this.sk.length) this.sk = growBytes(this.sk, Math.max(this.sk.length * 2, end), this.runAt);
    this.sk.set(src.subarray(this.runFrom, this.runTo), this.runAt);
  }

  private cols(id: number, n: number, s: number, lo: number, hi: number): void {
    if (this.nd === this.dids.length) {
      this.dids = grow(this.dids, this.nd * 2);
      this.dcols = grow(this.dcols, this.nd * 8);
      this.skEnds = grow(this.skEnds, this.nd * 2);
    }
    const j = this.nd * 4;
    this.dids[this.nd] = id;
    this.skEnds[this.nd++] = this.skn;
    this.dcols[j] = n;
    this.dcols[j + 1] = s;
    this.dcols[j + 2] = lo;
    this.dcols[j + 3] = hi;
  }

  /**
   * The blob: columns sorted by id (the writer's order is the aggregator's, almost always ascending already),
   * written into `alloc(size)` (8-byte aligned; every byte is written) or a new buffer.
   */
  encode(alloc?: (size: number) => Uint8Array): Uint8Array {
    this.copyRun();
    const nl = this.nl;
    const nd = this.nd;
    const skBytes = this.skn;
    const lo = order(this.lids, nl);
    const dor = order(this.dids, nd);
    const size = HEADER + 8 * nl + 32 * nd + 4 * nl + 8 * nd + skBytes;
    const out = alloc ? alloc(size) : new Uint8Array(size);
    if (out.length !== size || out.byteOffset % 8 !== 0) throw new RangeError('head window: a buffer of the wrong size');
    const buf = out.buffer;
    const head = new Uint32Array(buf, out.byteOffset, 4);
    head[0] = VERSION;
    head[1] = nl;
    head[2] = nd;
    head[3] = skBytes;
    let at = out.byteOffset + HEADER;
    const vals = new Float64Array(buf, at, nl);
    at += 8 * nl;
    const cols = new Float64Array(buf, at, 4 * nd);
    at += 32 * nd;
    const lids = new Uint32Array(buf, at, nl);
    at += 4 * nl;
    const dids = new Uint32Array(buf, at, nd);
    at += 4 * nd;
    const ends = new Uint32Array(buf, at, nd);
    at += 4 * nd;
    const bytes = new Uint8Array(buf, at, skBytes);
    if (lo) {
      for (let i = 0; i < nl; i++) {
        const k = lo[i] as number;
        lids[i] = this.lids[k] as number;
        vals[i] = this.lvals[k] as number;
      }
    } else {
      lids.set(this.lids.subarray(0, nl));
      vals.set(this.lvals.subarray(0, nl));
    }
    if (!dor) {
      dids.set(this.dids.subarray(0, nd));
      for (let i = 0; i < nd; i++) {
        // count, sum, min, max: column after column
        cols[i] = this.dcols[i * 4] as number;
        cols[nd + i] = this.dcols[i * 4 + 1] as number;
        cols[2 * nd + i] = this.dcols[i * 4 + 2] as number;
        cols[3 * nd + i] = this.dcols[i * 4 + 3] as number;
      }
      ends.set(this.skEnds.subarray(0, nd));
      bytes.set(this.sk.subarray(0, skBytes));
    } else {
      let off = 0;
      for (let i = 0; i < nd; i++) {
        const k = dor[i] as number;
        dids[i] = this.dids[k] as number;
        cols[i] = this.dcols[k * 4] as number;
        cols[nd + i] = this.dcols[k * 4 + 1] as number;
        cols[2 * nd + i] = this.dcols[k * 4 + 2] as number;
        cols[3 * nd + i] = this.dcols[k * 4 + 3] as number;
        const from = k === 0 ? 0 : (this.skEnds[k - 1] as number);
        const to = this.skEnds[k] as number;
        bytes.set(this.sk.subarray(from, to), off);
        off += to - from;
        ends[i] = off;
      }
    }
    return out;
  }
}

/** `a` in a bigger buffer of `n` bytes: its first `used` (default all) copied. */
function growBytes(a: Uint8Array, n: number, used = a.length): Uint8Array {
  const next = new Uint8Array(n);
  next.set(used === a.length ? a : a.subarray(0, used));
  return next;
}

function grow<T extends Uint32Array | Float64Array>(a: T, n: number): T {
  const next = (a instanceof Uint32Array ? new Uint32Array(n) : new Float64Array(n)) as T;
  next.set(a);
  return next;
}

/** The permutation that sorts ids[0..n), or undefined when they are ascending already. */
function order(ids: Uint32Array, n: number): Uint32Array | undefined {
  let sorted = true;
  for (let i = 1; i < n && sorted; i++) sorted = (ids[i - 1] as number) < (ids[i] as number);
  if (sorted) return undefined;
  // id · 2^21 + position: one numeric sort of a Float64Array, no comparator
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = (ids[i] as number) * 2097152 + i;
  keys.sort();
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = (keys[i] as number) % 2097152;
  return out;
}

/** A stored window, read in place. */
export class HeadWindow {
  readonly nl: number;
  readonly nd: number;
  readonly vals: Float64Array;
  readonly cols: Float64Array;
  readonly lids: Uint32Array;
  readonly dids: Uint32Array;
  readonly ends: Uint32Array;
  readonly sk: Uint8Array;
  readonly bytes: Uint8Array;

  constructor(
    readonly seq: number,
    /** the window's end, epoch s */
    readonly t: number,
    /** its length, ms */
    readonly d: number,
    bytes: Uint8Array,
  ) {
    // typed views need aligned offsets: a row read back from SQLite is copied once
    if (bytes.byteOffset % 8 !== 0) bytes = bytes.slice();
    this.bytes = bytes;
    if (bytes.length < HEADER) throw new RangeError('head window: truncated');
    const head = new Uint32Array(bytes.buffer, bytes.byteOffset, 4);
    if (head[0] !== VERSION) throw new RangeError(`head window: version ${head[0]}`);
    const nl = head[1] as number;
    const nd = head[2] as number;
    const skBytes = head[3] as number;
    if (HEADER + 12 * nl + 40 * nd + skBytes !== bytes.length) throw new RangeError('head window: sizes disagree');
    this.nl = nl;
    this.nd = nd;
    let at = bytes.byteOffset + HEADER;
    this.vals = new Float64Array(bytes.buffer, at, nl);
    at += 8 * nl;
    this.cols = new Float64Array(bytes.buffer, at, 4 * nd);
    at += 32 * nd;
    this.lids = new Uint32Array(bytes.buffer, at, nl);
    at += 4 * nl;
    this.dids = new Uint32Array(bytes.buffer, at, nd);
    at += 4 * nd;
    this.ends = new Uint32Array(bytes.buffer, at, nd);
    at += 4 * nd;
    this.sk = new Uint8Array(bytes.buffer, at, skBytes);
  }

  get points(): number {
    return this.nl + this.nd;
  }

  /** The position of a level series, or -1. */
  level(id: number): number {
    return search(this.lids, id);
  }

  /** The position of a distribution series, or -1. */
  dist(id: number): number {
    return search(this.dids, id);
  }

  n(i: number): number {
    return this.cols[i] as number;
  }
  s(i: number): number {
    return this.cols[this.nd + i] as number;
  }
  lo(i: number): number {
    return this.cols[2 * this.nd + i] as number;
  }
  hi(i: number): number {
    return this.cols[3 * this.nd + i] as number;
  }
  sketch(i: number): Uint8Array | null {
    const from = i === 0 ? 0 : (this.ends[i - 1] as number);
    const to = this.ends[i] as number;
    return to > from ? this.sk.subarray(from, to) : null;
  }
}

function search(ids: Uint32Array, id: number): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ids[mid] as number) < id) lo = mid + 1;
    else hi = mid;
  }
  return lo < ids.length && ids[lo] === id ? lo : -1;
}
