/**
 * Chunk encoding: one series' points at one resolution as a few bit-packed columns, after the
 * Gorilla paper and Prometheus' XOR chunks — delta-of-delta timestamps, XOR'd floats — with one
 * addition taken from VictoriaMetrics: a column of decimals (every value an integer over a power of
 * ten, as StatsD text and most gauges are) is stored as the deltas of those integers, which a random
 * walk with two decimals packs into 9 bits a point where XOR needs 40.
 *
 * Layout: a flags byte (V, FULL, SK), the point count as a varint, then one bit stream:
 *   t   delta-of-delta, class-coded (a steady window costs 1 bit)
 *   d   the ms each point covers, delta, class-coded
 *   v   (V)     the level: gauge last, counter sum, set distinct count
 *   n s lo hi (FULL) count, sum, min and max (min and max may be absent: NaN)
 *   sk  (SK)    sketches: bucket indexes as Rice-coded gaps, counts class-coded
 * Every float column is either decimal (1 bit, 4 bits of exponent, class-coded deltas of the
 * integers) or XOR (1 bit, then Gorilla's control bits), whichever holds exactly.
 */
import { ByteReader, ByteWriter, putUvarint, unzig, zig } from '../model/bytes.js';

/** The chunk carries a v column (levels); without it v is the count (distributions). */
export const V = 1;
/** The chunk carries count, sum, min and max (rollups and distributions). */
export const FULL = 2;
/** The chunk carries a sketch per point (distributions). */
export const SK = 4;

/** One series' points at one resolution, column by column, in time order. */
export interface Columns {
  flags: number;
  /** epoch seconds (the end of the interval each point covers) */
  t: number[];
  /** ms each point covers */
  d: number[];
  v: number[];
  n: number[];
  s: number[];
  /** NaN where absent */
  lo: number[];
  hi: number[];
  /** each point's sketch as `Sketch.encode` writes it, or null */
  sk: Array<Uint8Array | null>;
}

export function emptyColumns(flags: number): Columns {
  return { flags, t: [], d: [], v: [], n: [], s: [], lo: [], hi: [], sk: [] };
}

// ---------------------------------------------------------------- bits

/** Bytes (a header: flags, counts as varints), then bits, most significant first. */
export class BitWriter extends ByteWriter {
  private acc = 0;
  private bits = 0;

  /** `nb` bits of v (v < 2^nb, nb ≤ 53), most significant first. */
  bitsOf(v: number, nb: number): void {
    while (nb > 24) {
      const shift = 2 ** (nb - 24);
      const hi = Math.floor(v / shift);
      this.small(hi, 24);
      v -= hi * shift;
      nb -= 24;
    }
    this.small(v, nb);
  }

  private small(v: number, nb: number): void {
    // acc holds fewer than 8 bits before: at most 31 after
    this.acc = (this.acc << nb) | v;
    this.bits += nb;
    if (this.bits >= 8) {
      this.room(4);
      while (this.bits >= 8) {
        this.bits -= 8;
        this.buf[this.n++] = (this.acc >>> this.bits) & 0xff;
      }
      this.acc &= (1 << this.bits) - 1;
    }
  }

  bit(b: number): void {
    this.small(b, 1);
  }

  /** Pads the last byte with zeros and returns the bytes written. */
  override done(): Uint8Array {
    if (this.bits > 0) this.small(0, 8 - this.bits);
    return this.buf.subarray(0, this.n);
  }
}

/** Bytes (a header, read with byte() and uvarint() before any bit), then bits. */
export class BitReader extends ByteReader {
  /** the next bits, most significant first, in a uint32; `avail` of them are valid */
  private cur = 0;
  private avail = 0;

  constructor(buf: Uint8Array, n = 0) {
    super(buf, n, 'chunk');
  }

  /** At least 25 bits in `cur` unless the bytes ran out. */
  private refill(): void {
    const buf = this.buf;
    while (this.avail <= 24 && this.n < buf.length) {
      this.cur = (this.cur | ((buf[this.n++] as number) << (24 - this.avail))) >>> 0;
      this.avail += 8;
    }
  }

  private take(nb: number): number {
    if (this.avail < nb) {
      this.refill();
      if (this.avail < nb) throw new RangeError('chunk: truncated');
    }
    const v = this.cur >>> (32 - nb);
    this.cur = (this.cur << nb) >>> 0;
    this.avail -= nb;
    return v;
  }

  bitsOf(nb: number): number {
    if (nb <= 24) return nb === 0 ? 0 : this.take(nb);
    let v = 0;
    while (nb > 24) {
      v = v * 2 ** 24 + this.take(24);
      nb -= 24;
    }
    return v * 2 ** nb + this.take(nb);
  }

  bit(): number {
    return this.take(1);
  }

  /** Ones up to the next zero (which is read too), or `max` ones (≤ 24, and no more read). */
  ones(max: number): number {
    if (this.avail <= max) this.refill();
    const q = Math.clz32(~this.cur);
    if (q >= max && this.avail >= max) {
      this.cur = (this.cur << max) >>> 0;
      this.avail -= max;
      return max;
    }
    if (q >= this.avail) throw new RangeError('chunk: truncated');
    this.cur = (this.cur << (q + 1)) >>> 0;
    this.avail -= q + 1;
    return q;
  }
}

// ---------------------------------------------------------------- integers

function bitLength(z: number): number {
  let w = 0;
  while (z >= 2 ** 24) {
    z = Math.floor(z / 2 ** 24);
    w += 24;
  }
  return w + (32 - Math.clz32(z));
}

/** A non-negative integer (< 2^53): 0 in one bit, then 7, 12, 20 bits, or a 6-bit width and the bits. */
function putClass(w: BitWriter, z: number): void {
  if (z === 0) w.bit(0);
  else if (z < 128) w.bitsOf(0b10_0000000 | z, 9);
  else if (z < 4096) w.bitsOf((0b110 << 12) | z, 15);
  else if (z < 1 << 20) w.bitsOf(0b1110 * 2 ** 20 + z, 24);
  else {
    const nb = bitLength(z);
    w.bitsOf((0b1111 << 6) | nb, 10);
    w.bitsOf(z, nb);
  }
}

const CLASS_BITS = [0, 7, 12, 20];

function getClass(r: BitReader): number {
  const c = r.ones(4);
  return c < 4 ? (c === 0 ? 0 : r.bitsOf(CLASS_BITS[c] as number)) : r.bitsOf(r.bitsOf(6));
}

/** Integers as deltas (order 1) or deltas of deltas (order 2), class-coded. */
function putInts(w: BitWriter, xs: number[], order: 1 | 2): void {
  let prev = 0;
  let delta = 0;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i] as number;
    if (i === 0) putClass(w, zig(x));
    else if (order === 1 || i === 1) {
      delta = x - prev;
      putClass(w, zig(delta));
    } else {
      const dd = x - prev - delta;
      delta = x - prev;
      putClass(w, zig(dd));
    }
    prev = x;
  }
}

function getInts(r: BitReader, count: number, order: 1 | 2, out: number[]): void {
  let prev = 0;
  let delta = 0;
  for (let i = 0; i < count; i++) {
    let x: number;
    if (i === 0) x = unzig(getClass(r));
    else if (order === 1 || i === 1) {
      delta = unzig(getClass(r));
      x = prev + delta;
    } else {
      delta += unzig(getClass(r));
      x = prev + delta;
    }
    out.push(x);
    prev = x;
  }
}

// ---------------------------------------------------------------- floats

const MAX_DEC = 2 ** 51;
const POW10 = Array.from({ length: 16 }, (_, e) => 10 ** e);

/** The smallest exponent e ≤ 15 with every value exactly an integer over 10^e, or -1. */
function decimals(xs: number[]): number {
  for (let e = 0; e < 16; e++) {
    const p = POW10[e] as number;
    let ok = true;
    for (let i = 0; i < xs.length && ok; i++) {
      const v = xs[i] as number;
      const m = Math.round(v * p);
      ok = Math.abs(m) < MAX_DEC && m / p === v;
    }
    if (ok) return e;
  }
  return -1;
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
// little-endian hosts (every platform Node supports): u32[0] is the low word
const LO = 0;
const HI = 1;

function putFloats(w: BitWriter, xs: number[]): void {
  const e = decimals(xs);
  if (e >= 0) {
    w.bit(0);
    w.bitsOf(e, 4);
    const p = POW10[e] as number;
    let prev = 0;
    for (let i = 0; i < xs.length; i++) {
      const m = Math.round((xs[i] as number) * p);
      putClass(w, zig(m - prev));
      prev = m;
    }
    return;
  }
  w.bit(1);
  // Gorilla: the first value whole, then each XOR with the one before: 0 for the same value; 10
  // and the meaningful bits when they fit the previous leading/trailing window; 11, 5 bits of
  // leading zeros, 6 of length, and the bits otherwise
  let pHi = 0;
  let pLo = 0;
  let lead = -1;
  let trail = 0;
  for (let i = 0; i < xs.length; i++) {
    f64[0] = xs[i] as number;
    const hi = u32[HI] as number;
    const lo = u32[LO] as number;
    if (i === 0) {
      w.bitsOf(hi, 32);
      w.bitsOf(lo, 32);
    } else {
      const xh = (hi ^ pHi) >>> 0;
      const xl = (lo ^ pLo) >>> 0;
      if (xh === 0 && xl === 0) w.bit(0);
      else {
        let l = xh !== 0 ? Math.clz32(xh) : 32 + Math.clz32(xl);
        const t = xl !== 0 ? 31 - Math.clz32(xl & -xl) : 32 + (31 - Math.clz32(xh & -xh));
        if (l > 31) l = 31;
        if (lead >= 0 && l >= lead && t >= trail) {
          w.bitsOf(0b10, 2);
          put64(w, xh, xl, trail, 64 - lead - trail);
        } else {
          lead = l;
          trail = t;
          const len = 64 - l - t;
          w.bitsOf(0b11, 2);
          w.bitsOf(l, 5);
          w.bitsOf(len & 63, 6);
          put64(w, xh, xl, t, len);
        }
      }
    }
    pHi = hi;
    pLo = lo;
  }
}

/** The `len` bits of the 64-bit word (hi, lo) above its `shift` low bits. */
function put64(w: BitWriter, hi: number, lo: number, shift: number, len: number): void {
  let h: number;
  let l: number;
  if (shift === 0) {
    h = hi;
    l = lo;
  } else if (shift < 32) {
    l = ((lo >>> shift) | (hi << (32 - shift))) >>> 0;
    h = hi >>> shift;
  } else {
    l = hi >>> (shift - 32);
    h = 0;
  }
  if (len > 32) {
    w.bitsOf(h, len - 32);
    w.bitsOf(l, 32);
  } else w.bitsOf(l % 2 ** len, len);
}

function get64(r: BitReader, shift: number, len: number): [number, number] {
  let h = 0;
  let l: number;
  if (len > 32) {
    h = r.bitsOf(len - 32);
    l = r.bitsOf(32);
  } else l = r.bitsOf(len);
  if (shift === 0) return [h, l];
  if (shift < 32) return [((h << shift) | (l >>> (32 - shift))) >>> 0, (l << shift) >>> 0];
  return [(l << (shift - 32)) >>> 0, 0];
}

function getFloats(r: BitReader, count: number, out: number[]): void {
  if (r.bit() === 0) {
    const p = POW10[r.bitsOf(4)] as number;
    let m = 0;
    for (let i = 0; i < count; i++) {
      m += unzig(getClass(r));
      out.push(m / p);
    }
    return;
  }
  let hi = 0;
  let lo = 0;
  let lead = 0;
  let len = 0;
  for (let i = 0; i < count; i++) {
    if (i === 0) {
      hi = r.bitsOf(32);
      lo = r.bitsOf(32);
    } else if (r.bit() === 1) {
      if (r.bit() === 1) {
        lead = r.bitsOf(5);
        len = r.bitsOf(6) || 64;
      }
      const [xh, xl] = get64(r, 64 - lead - len, len);
      hi = (hi ^ xh) >>> 0;
      lo = (lo ^ xl) >>> 0;
    }
    u32[HI] = hi;
    u32[LO] = lo;
    out.push(f64[0] as number);
  }
}

// ---------------------------------------------------------------- sketches

/**
 * The form `Sketch.encode` writes (aggregate/sketch.ts): a flags byte (bit 0: counts are float64),
 * the zero count, the number of negative and positive buckets, then each bucket's index as a zigzag
 * varint delta and its count. Read here to pack it tighter; the round trip is tested against
 * `Sketch.encode` and `Sketch.decode` (both read and write it through model/bytes.ts).
 */

/** Where sketches of a column are decoded to: one buffer, each sketch a view into it. */
class Out {
  buf = new Uint8Array(4096);
  n = 0;
  room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    // earlier views keep the old buffer alive; the new one starts empty
    this.buf = new Uint8Array(Math.max(this.buf.length * 2, k * 2));
    this.n = 0;
  }
  uvarint(v: number): void {
    this.n = putUvarint(this.buf, this.n, v);
  }
}

/** Rice parameter for gaps of mean `mean`: about log2 of it. */
function riceK(mean: number): number {
  let k = 0;
  while (k < 7 && 1 << (k + 1) <= mean) k++;
  return k;
}

function putRice(w: BitWriter, x: number, k: number): void {
  // k ≤ 7: below 16 << k the quotient fits and the integer ops are exact
  if (x >= 16 << k) {
    // a rare wide gap: 16 ones, then the value class-coded
    w.bitsOf(0xffff, 16);
    putClass(w, x);
    return;
  }
  const q = x >>> k;
  // q ones, a zero, then k bits: one write (at most 24 bits)
  w.bitsOf((((1 << (q + 1)) - 2) << k) | (x & ((1 << k) - 1)), q + 1 + k);
}

function getRice(r: BitReader, k: number): number {
  const q = r.ones(16);
  if (q === 16) return getClass(r);
  return (q << k) | (k > 0 ? r.bitsOf(k) : 0);
}

function putSketches(w: BitWriter, sks: Array<Uint8Array | null>): void {
  // the first index of each store, kept from one sketch to the next: windows of one series sit in
  // the same range, so it costs a few bits
  const first = [0, 0];
  const idx: number[] = [];
  const cnt: number[] = [];
  for (const b of sks) {
    if (!b) {
      w.bit(0);
      continue;
    }
    w.bit(1);
    const r = new ByteReader(b, 0, 'sketch blob');
    if (r.byte() & 1) {
      // fractional counts (sample rates): the blob as it is
      w.bit(1);
      putClass(w, b.length);
      for (let i = 0; i < b.length; i++) w.bitsOf(b[i] as number, 8);
      continue;
    }
    w.bit(0);
    putClass(w, r.uvarint());
    const nNeg = r.uvarint();
    const nPos = r.uvarint();
    putClass(w, nNeg);
    putClass(w, nPos);
    for (const [s, nb] of [
      [0, nNeg],
      [1, nPos],
    ] as const) {
      if (nb === 0) continue;
      idx.length = 0;
      cnt.length = 0;
      let k = 0;
      for (let j = 0; j < nb; j++) {
        k += r.svarint();
        idx.push(k);
        cnt.push(r.uvarint());
      }
      putClass(w, zig((idx[0] as number) - (first[s] as number)));
      first[s] = idx[0] as number;
      if (nb > 1) {
        const rk = riceK(((idx[nb - 1] as number) - (idx[0] as number)) / (nb - 1) - 1);
        w.bitsOf(rk, 3);
        for (let j = 1; j < nb; j++) putRice(w, (idx[j] as number) - (idx[j - 1] as number) - 1, rk);
      }
      for (let j = 0; j < nb; j++) putClass(w, zig((cnt[j] as number) - 1));
    }
  }
}

function getSketches(r: BitReader, count: number, out: Array<Uint8Array | null>): void {
  const first = [0, 0];
  const o = new Out();
  const idx: number[] = [];
  for (let p = 0; p < count; p++) {
    if (r.bit() === 0) {
      out.push(null);
      continue;
    }
    if (r.bit() === 1) {
      const len = getClass(r);
      o.room(len);
      const at = o.n;
      for (let i = 0; i < len; i++) o.buf[o.n++] = r.bitsOf(8);
      out.push(o.buf.subarray(at, o.n));
      continue;
    }
    const zero = getClass(r);
    const nNeg = getClass(r);
    const nPos = getClass(r);
    o.room(32 + 20 * (nNeg + nPos));
    const at = o.n;
    o.buf[o.n++] = 0;
    o.uvarint(zero);
    o.uvarint(nNeg);
    o.uvarint(nPos);
    for (const [s, nb] of [
      [0, nNeg],
      [1, nPos],
    ] as const) {
      if (nb === 0) continue;
      idx.length = 0;
      let k = (first[s] as number) + unzig(getClass(r));
      first[s] = k;
      idx.push(k);
      if (nb > 1) {
        const rk = r.bitsOf(3);
        for (let j = 1; j < nb; j++) {
          k += getRice(r, rk) + 1;
          idx.push(k);
        }
      }
      let prev = 0;
      for (let j = 0; j < nb; j++) {
        const x = idx[j] as number;
        o.uvarint(zig(x - prev));
        prev = x;
        o.uvarint(unzig(getClass(r)) + 1);
      }
    }
    out.push(o.buf.subarray(at, o.n));
  }
}

// ---------------------------------------------------------------- chunks

export function encodeChunk(c: Columns): Uint8Array {
  const count = c.t.length;
  const w = new BitWriter(16 + count * (c.flags & SK ? 24 : 4));
  w.byte(c.flags);
  w.uvarint(count);
  if (count > 0) {
    putInts(w, c.t, 2);
    putInts(w, c.d, 1);
    if (c.flags & V) putFloats(w, c.v);
    if (c.flags & FULL) {
      putFloats(w, c.n);
      putFloats(w, c.s);
      putFloats(w, c.lo);
      putFloats(w, c.hi);
    }
    if (c.flags & SK) putSketches(w, c.sk);
  }
  return w.done().slice();
}

/** The inverse of `encodeChunk`. Throws RangeError on a damaged chunk. */
export function decodeChunk(bytes: Uint8Array): Columns {
  const r = new BitReader(bytes);
  const flags = r.byte();
  const count = r.uvarint();
  if (count > 1e7) throw new RangeError('chunk: point count out of range');
  const c = emptyColumns(flags);
  if (count === 0) return c;
  getInts(r, count, 2, c.t);
  getInts(r, count, 1, c.d);
  if (flags & V) getFloats(r, count, c.v);
  if (flags & FULL) {
    getFloats(r, count, c.n);
    getFloats(r, count, c.s);
    getFloats(r, count, c.lo);
    getFloats(r, count, c.hi);
  }
  if (flags & SK) getSketches(r, count, c.sk);
  return c;
}

// ---------------------------------------------------------------- open chunks

/**
 * A chunk still filling is a list of parts, each a chunk of its own, appended as the compactor
 * folds new windows (no re-encoding of what is there): 0xff, then each part's length as a varint
 * and its bytes. Once its span is over the compactor seals it into one chunk (flags byte < 8).
 */
const PARTS = 0xff;

/** `existing` (sealed, in parts, or none) with `part` appended: the framing is splitParts/joinParts'. */
export function appendPart(existing: Uint8Array | undefined, part: Uint8Array): Uint8Array {
  return joinParts([...(existing ? splitParts(existing) : []), part]);
}

/** A chunk's parts (itself alone when sealed), as views into its bytes. */
export function splitParts(bytes: Uint8Array): Uint8Array[] {
  if (bytes[0] !== PARTS) return [bytes];
  const r = new BitReader(bytes, 1);
  const out: Uint8Array[] = [];
  while (r.n < bytes.length) {
    const len = r.uvarint();
    if (r.n + len > bytes.length) throw new RangeError('chunk: truncated part');
    out.push(bytes.subarray(r.n, r.n + len));
    r.n += len;
  }
  return out;
}

/** Parts as one chunk still filling (one part is a chunk of its own). */
export function joinParts(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array;
  const w = new BitWriter(1 + parts.reduce((n, p) => n + p.length + 10, 0));
  w.byte(PARTS);
  for (const p of parts) {
    w.uvarint(p.length);
    w.buf.set(p, w.n);
    w.n += p.length;
  }
  return w.buf.subarray(0, w.n);
}

/** The points a chunk (or one part) holds, from its header. */
export function pointCount(chunk: Uint8Array): number {
  const r = new BitReader(chunk);
  r.byte();
  return r.uvarint();
}

/** How many parts a chunk holds (1 when sealed). */
export function partCount(bytes: Uint8Array): number {
  return splitParts(bytes).length;
}

/** A chunk, sealed or still in parts, as one set of columns. */
export function decodeAny(bytes: Uint8Array): Columns {
  let out: Columns | undefined;
  for (const part of splitParts(bytes)) {
    const c = decodeChunk(part);
    if (!out) out = c;
    else
      for (const k of ['t', 'd', 'v', 'n', 's', 'lo', 'hi', 'sk'] as const)
        for (const x of c[k] as Array<number | Uint8Array | null>) (out[k] as Array<number | Uint8Array | null>).push(x);
  }
  return out ?? emptyColumns(0);
}
