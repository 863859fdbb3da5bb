import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Sketch, SketchSum } from '../aggregate/sketch.js';
import { appendPart, type Columns, decodeAny, decodeChunk, emptyColumns, encodeChunk, FULL, partCount, SK, V } from './codec.js';

/** A seeded generator: the same numbers every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function levels(values: number[], t0 = 1_795_400_000): Columns {
  const c = emptyColumns(V);
  for (const [i, v] of values.entries()) {
    c.t.push(t0 + i * 10);
    c.d.push(10_000);
    c.v.push(v);
  }
  return c;
}

function same(a: number, b: number): boolean {
  return Object.is(a, b) || (a === 0 && b === 0) || (Number.isNaN(a) && Number.isNaN(b));
}

test('levels round-trip exactly, whatever the values', () => {
  const r = rng(1);
  const cases: number[][] = [
    [42],
    Array.from({ length: 360 }, () => 7),
    Array.from({ length: 360 }, (_, i) => i * 0.1),
    Array.from({ length: 360 }, () => r() * 1e6),
    Array.from({ length: 360 }, () => (r() - 0.5) * 1e-200),
    [Number.NaN, 1, Number.POSITIVE_INFINITY, -0, Number.NEGATIVE_INFINITY, Number.MAX_VALUE, Number.MIN_VALUE, 2 ** 53, -(2 ** 60)],
    Array.from({ length: 100 }, (_, i) => (i % 2 ? 1.5 : 123456789.123)),
  ];
  for (const values of cases) {
    const c = levels(values);
    const back = decodeChunk(encodeChunk(c));
    assert.deepEqual(back.t, c.t);
    assert.deepEqual(back.d, c.d);
    assert.equal(back.v.length, values.length);
    for (const [i, v] of values.entries()) assert.ok(same(back.v[i] as number, v), `${i}: ${back.v[i]} vs ${v}`);
  }
});

test('gauges of realistic shape take about a byte a point; a constant a bit', () => {
  const r = rng(2);
  let x = 500;
  const walk = Array.from({ length: 360 }, () => {
    x = Math.round((x + (r() - 0.5)) * 100) / 100;
    return x;
  });
  const walked = encodeChunk(levels(walk)).length / 360;
  assert.ok(walked <= 1.5, `${walked} B a point for a random walk with two decimals`);
  const constant = encodeChunk(levels(new Array(360).fill(3.25))).length / 360;
  assert.ok(constant <= 0.5, `${constant} B a point for a constant`);
  // irregular timestamps and lengths still round-trip
  const c = levels(walk);
  c.t = c.t.map((t, i) => t + (i % 7 === 0 ? 3 : 0) + Math.floor(i / 100) * 1000);
  c.d = c.d.map((d, i) => (i % 5 ? d : 9_998));
  const back = decodeChunk(encodeChunk(c));
  assert.deepEqual(back.t, c.t);
  assert.deepEqual(back.d, c.d);
});

function distributions(odd: boolean): Columns {
  const r = rng(3);
  const c = emptyColumns(FULL | SK);
  for (let i = 0; i < 360; i++) {
    const s = new Sketch();
    // log-normal latencies around 20 ms, two decimals, 20 a window; a few windows empty or odd
    const k = odd && i % 50 === 7 ? 0 : 20;
    for (let j = 0; j < k; j++) {
      const u = Math.max(1e-12, r());
      const v = Math.round(20 * Math.exp(0.6 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r())) * 100) / 100;
      s.add(odd && i % 90 === 3 ? -v : v, odd && i % 120 === 5 ? 0.25 : 1);
    }
    if (odd && i === 11) s.add(0);
    c.t.push(1_795_400_000 + i * 10);
    c.d.push(10_000);
    c.n.push(s.count);
    c.s.push(s.sum);
    c.lo.push(s.count ? s.min : Number.NaN);
    c.hi.push(s.count ? s.max : Number.NaN);
    c.sk.push(odd && i % 77 === 1 ? null : s.encode());
  }
  return c;
}

test('distributions: sketches, counts, sums and bounds round-trip; a window takes under 30 bytes', () => {
  const c = distributions(true);
  const bytes = encodeChunk(c);
  const back = decodeChunk(bytes);
  for (const k of ['t', 'd', 'n', 's', 'lo', 'hi'] as const)
    for (const [i, v] of c[k].entries()) assert.ok(same(back[k][i] as number, v), `${k}[${i}]`);
  for (const [i, b] of c.sk.entries()) {
    if (b === null) assert.equal(back.sk[i], null);
    else {
      const cols = { count: c.n[i] as number, sum: 0, min: 0, max: 0 };
      assert.deepEqual(Sketch.decode(back.sk[i] as Uint8Array, cols).toJSON(), Sketch.decode(b, cols).toJSON(), `sketch ${i}`);
    }
  }
  const perWindow = encodeChunk(distributions(false)).length / 360;
  assert.ok(perWindow <= 30, `${perWindow} B a window`);
});

test('a damaged chunk is a RangeError, not a hang or a crash', () => {
  const bytes = encodeChunk(levels([1, 2, 3, 4.5, 6.25]));
  assert.throws(() => decodeChunk(bytes.subarray(0, 3)), RangeError);
  assert.throws(() => decodeChunk(Uint8Array.of(1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)), RangeError);
});

test('a chunk still filling: parts appended unread, counted, and read back as one', () => {
  const all = levels(Array.from({ length: 30 }, (_, i) => i * 1.5));
  let bytes: Uint8Array | undefined;
  for (let i = 0; i < 30; i += 6) {
    const part = levels(all.v.slice(i, i + 6), (all.t[i] as number) - 0);
    const enc = encodeChunk(part);
    bytes = bytes ? appendPart(bytes, enc) : enc;
  }
  assert.equal(partCount(bytes as Uint8Array), 5);
  const back = decodeAny(bytes as Uint8Array);
  assert.deepEqual(back.t, all.t);
  assert.deepEqual(back.v, all.v);
  assert.equal(partCount(encodeChunk(all)), 1);
});

test('Sketch.encodeInto writes what encode does, and asks for room when it lacks it', () => {
  const s = new Sketch();
  for (let i = 1; i <= 500; i++) s.add(i * 0.37);
  s.add(-3);
  s.add(0);
  const want = s.encode();
  const buf = new Uint8Array(4096);
  const end = s.encodeInto(buf, 7);
  assert.deepEqual(buf.subarray(7, end), want);
  assert.equal(s.encodeInto(new Uint8Array(8), 0), -1);
});

test('rollups merge sketch blobs without a Sketch each: the same bytes as Sketch.merge, fractional counts and negatives too', () => {
  const r = rng(7);
  for (const weighted of [false, true]) {
    const parts = Array.from({ length: 6 }, () => {
      const s = new Sketch();
      for (let i = 0; i < 40; i++) s.add((r() - 0.2) * 1000 * r(), weighted ? 1 / 0.3 : 1);
      s.add(0);
      return s;
    });
    const whole = new Sketch();
    const sum = new SketchSum();
    for (const s of parts) {
      whole.merge(s);
      sum.addEncoded(s.encode());
    }
    assert.deepEqual(sum.encode(), whole.encode());
  }
});
