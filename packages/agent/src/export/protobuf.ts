/**
 * Just enough protobuf to write Prometheus remote-write 1.0 requests (prompb.WriteRequest):
 * WriteRequest { repeated TimeSeries timeseries = 1; }
 * TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; }
 * Label { string name = 1; string value = 2; }  Sample { double value = 1; int64 timestamp = 2; }
 */

export interface TimeSeries {
  /** sorted by name, `__name__` among them */
  labels: Array<[string, string]>;
  samples: Array<[value: number, timestampMs: number]>;
}

class Buf {
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
    for (const [value, ms] of ts.samples) {
      const s = new Buf();
      s.varint((1 << 3) | 1);
      s.double(value);
      s.varint(2 << 3);
      s.varint(Math.max(0, Math.round(ms)));
      field(t, 2, s.done());
    }
    field(req, 1, t.done());
  }
  return req.done();
}
