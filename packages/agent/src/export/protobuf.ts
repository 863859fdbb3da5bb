/**
 * Just enough protobuf to write Prometheus remote-write 1.0 requests and OTLP metrics (otlp.ts).
 * prompb.WriteRequest:
 * WriteRequest { repeated TimeSeries timeseries = 1; }
 * TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; }
 * Label { string name = 1; string value = 2; }  Sample { double value = 1; int64 timestamp = 2; }
 */

export interface TimeSeries {
  /** sorted by name, `__name__` among them */
  labels: Array<[string, string]>;
  /** `stale` writes Prometheus' staleness marker, the NaN 0x7ff0000000000002 (JavaScript cannot hold its payload) */
  samples: Array<[value: number, timestampMs: number, stale?: 'stale']>;
}

/** The staleness marker's bytes, little-endian. */
const STALE = Uint8Array.of(0x02, 0, 0, 0, 0, 0, 0xf0, 0x7f);

/** A growing byte buffer with protobuf's wire encodings. */
export class Buf {
  bytes: Uint8Array;
  n = 0;
  /** small by default: a request nests a buffer per label, sample and data point */
  constructor(size = 64) {
    this.bytes = new Uint8Array(size);
  }
  private room(k: number): void {
    if (this.n + k <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.n + k) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.bytes.subarray(0, this.n));
    this.bytes = next;
  }
  varint(v: number): void {
    this.room(10);
    while (v >= 0x80) {
      this.bytes[this.n++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.bytes[this.n++] = v;
  }
  raw(b: Uint8Array): void {
    this.room(b.length);
    this.bytes.set(b, this.n);
    this.n += b.length;
  }
  double(v: number): void {
    this.room(8);
    new DataView(this.bytes.buffer, this.bytes.byteOffset).setFloat64(this.n, v, true);
    this.n += 8;
  }
  fixed64(v: bigint): void {
    this.room(8);
    new DataView(this.bytes.buffer, this.bytes.byteOffset).setBigUint64(this.n, v, true);
    this.n += 8;
  }
  /** a length-delimited field */
  bytesField(num: number, body: Uint8Array): void {
    this.varint((num << 3) | 2);
    this.varint(body.length);
    this.raw(body);
  }
  string(num: number, s: string): void {
    this.bytesField(num, utf8.encode(s));
  }
  /** a varint field (uint32, uint64, enum, bool, non-negative int64) */
  uint(num: number, v: number): void {
    this.varint(num << 3);
    this.varint(v);
  }
  /** a sint32 field (zigzag) */
  sint(num: number, v: number): void {
    this.varint(num << 3);
    this.varint(v < 0 ? -2 * v - 1 : 2 * v);
  }
  doubleField(num: number, v: number): void {
    this.varint((num << 3) | 1);
    this.double(v);
  }
  fixed64Field(num: number, v: bigint): void {
    this.varint((num << 3) | 1);
    this.fixed64(v);
  }
  /** a packed repeated varint field */
  packed(num: number, vs: readonly number[]): void {
    if (vs.length === 0) return;
    const b = new Buf();
    for (const v of vs) b.varint(v);
    this.bytesField(num, b.done());
  }
  done(): Uint8Array {
    return this.bytes.subarray(0, this.n);
  }
}

const utf8 = new TextEncoder();

/** Bytes a varint of `v` takes. */
function vlen(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

/**
 * A WriteRequest in two passes: the sizes first, then every byte written once into one buffer (no
 * buffer per label or sample: 65k series encode in tens of milliseconds, not seconds).
 */
export function encodeWriteRequest(series: TimeSeries[]): Uint8Array {
  const sizes = new Float64Array(series.length);
  let total = 0;
  for (let i = 0; i < series.length; i++) {
    const ts = series[i] as TimeSeries;
    let t = 0;
    for (const [name, value] of ts.labels) {
      const nl = Buffer.byteLength(name);
      const vl = Buffer.byteLength(value);
      const l = 1 + vlen(nl) + nl + 1 + vlen(vl) + vl;
      t += 1 + vlen(l) + l;
    }
    for (const [, ms] of ts.samples) {
      const sl = 1 + 8 + 1 + vlen(Math.max(0, Math.round(ms)));
      t += 1 + vlen(sl) + sl;
    }
    sizes[i] = t;
    total += 1 + vlen(t) + t;
  }
  const out = Buffer.allocUnsafe(total);
  let n = 0;
  const varint = (v: number) => {
    while (v >= 0x80) {
      out[n++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    out[n++] = v;
  };
  for (let i = 0; i < series.length; i++) {
    const ts = series[i] as TimeSeries;
    out[n++] = (1 << 3) | 2;
    varint(sizes[i] as number);
    for (const [name, value] of ts.labels) {
      const nl = Buffer.byteLength(name);
      const vl = Buffer.byteLength(value);
      out[n++] = (1 << 3) | 2;
      varint(1 + vlen(nl) + nl + 1 + vlen(vl) + vl);
      out[n++] = (1 << 3) | 2;
      varint(nl);
      n += out.write(name, n, 'utf8');
      out[n++] = (2 << 3) | 2;
      varint(vl);
      n += out.write(value, n, 'utf8');
    }
    for (const [value, ms, stale] of ts.samples) {
      const t = Math.max(0, Math.round(ms));
      out[n++] = (2 << 3) | 2;
      varint(1 + 8 + 1 + vlen(t));
      out[n++] = (1 << 3) | 1;
      if (stale) out.set(STALE, n);
      else out.writeDoubleLE(value, n);
      n += 8;
      out[n++] = 2 << 3;
      varint(t);
    }
  }
  return new Uint8Array(out.buffer, out.byteOffset, n);
}
