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
  bytes = new Uint8Array(1024);
  n = 0;
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

function field(b: Buf, num: number, body: Uint8Array): void {
  b.varint((num << 3) | 2);
  b.varint(body.length);
  b.raw(body);
}

export function encodeWriteRequest(series: TimeSeries[]): Uint8Array {
  const req = new Buf();
  for (const ts of series) {
    const t = new Buf();
    for (const [name, value] of ts.labels) {
      const l = new Buf();
      field(l, 1, utf8.encode(name));
      field(l, 2, utf8.encode(value));
      field(t, 1, l.done());
    }
    for (const [value, ms, stale] of ts.samples) {
      const s = new Buf();
      s.varint((1 << 3) | 1);
      if (stale) s.raw(STALE);
      else s.double(value);
      s.varint(2 << 3);
      s.varint(Math.max(0, Math.round(ms)));
      field(t, 2, s.done());
    }
    field(req, 1, t.done());
  }
  return req.done();
}
