/**
 * Bytes in and out: one growable writer and one bounds-checked reader for the agent's binary forms —
 * a sketch's bytes (aggregate/sketch.ts) and the store's chunks (store/codec.ts, whose bit streams
 * extend these). Varints are LEB128 (7 bits a byte, least significant first) over whole numbers up to
 * 2^53; signed ones zigzag-coded; floats little-endian.
 */

/** Writes v (a whole number ≥ 0) as a varint into `buf` at `at`, which must have room (10 bytes); returns where it ends. */
export function putUvarint(buf: Uint8Array, at: number, v: number): number {
  // the usual small value in integer ops; past 2^31 in float ones, exact up to 2^53
  while (v >= 0x80 && v < 2 ** 31) {
    buf[at++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  while (v >= 0x80) {
    buf[at++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  buf[at++] = v;
  return at;
}

/** Zigzag: 0, −1, 1, −2 … as 0, 1, 2, 3 … */
export const zig = (v: number) => (v >= 0 ? 2 * v : -2 * v - 1);
export const unzig = (z: number) => (z % 2 === 1 ? -(z + 1) / 2 : z / 2);

export class ByteWriter {
  buf: Uint8Array;
  n = 0;
  private view: DataView | undefined;

  constructor(size = 256) {
    this.buf = new Uint8Array(size);
  }

  /** Room for k more bytes. */
  protected room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
    this.view = undefined;
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.n++] = b;
  }

  uvarint(v: number): void {
    this.room(10);
    this.n = putUvarint(this.buf, this.n, v);
  }

  svarint(v: number): void {
    this.uvarint(zig(v));
  }

  f64(v: number): void {
    this.room(8);
    this.view ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.view.setFloat64(this.n, v, true);
    this.n += 8;
  }

  /** The bytes written (a view: copy it to keep it past the next write). */
  done(): Uint8Array {
    return this.buf.subarray(0, this.n);
  }
}

export class ByteReader {
  private view: DataView | undefined;

  constructor(
    protected readonly buf: Uint8Array,
    /** where the next byte is read */
    public n = 0,
    /** what the bytes are, for the RangeError a damaged input gets */
    protected readonly what = 'bytes',
  ) {}

  byte(): number {
    if (this.n >= this.buf.length) throw new RangeError(`${this.what}: truncated`);
    return this.buf[this.n++] as number;
  }

  /** At most 8 bytes (2^56): longer is damage, not data. */
  uvarint(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.byte();
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 0x80;
    }
    throw new RangeError(`${this.what}: varint too long`);
  }

  svarint(): number {
    return unzig(this.uvarint());
  }

  f64(): number {
    if (this.n + 8 > this.buf.length) throw new RangeError(`${this.what}: truncated`);
    this.view ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    const v = this.view.getFloat64(this.n, true);
    this.n += 8;
    return v;
  }
}

/** A copy of `a` with room for `cap` elements (the rest zero): a typed-array column grown in place of a resize. */
export function grown<T extends Uint8Array | Uint32Array | Float64Array>(a: T, cap: number): T {
  const next = new (a.constructor as new (n: number) => T)(cap);
  next.set(a);
  return next;
}
