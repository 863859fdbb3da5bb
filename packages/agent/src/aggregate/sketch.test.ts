import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Sketch, SketchSum } from './sketch.js';

function lcg(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

test('quantiles are within 1 % relative error, over wide ranges and with negatives', () => {
  const rand = lcg(7);
  const values: number[] = [];
  const sk = new Sketch(0.01);
  for (let i = 0; i < 100_000; i++) {
    const v = (rand() < 0.1 ? -1 : 1) * 10 ** (rand() * 8 - 2);
    values.push(v);
    sk.add(v);
  }
  values.sort((a, b) => a - b);
  for (const q of [0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999]) {
    const exact = values[Math.ceil(q * values.length) - 1] as number;
    const got = sk.quantile(q);
    assert.ok(Math.abs(got - exact) <= Math.abs(exact) * 0.0101, `q${q}: ${got} vs ${exact}`);
  }
  assert.equal(sk.quantile(0), values[0]);
  assert.equal(sk.quantile(1), values.at(-1));
  assert.equal(sk.count, 100_000);
});

test('merging sketches equals sketching the union: fleet percentiles, not averaged ones', () => {
  const rand = lcg(3);
  const a = new Sketch();
  const b = new Sketch();
  const all = new Sketch();
  for (let i = 0; i < 20_000; i++) {
    const fast = 1 + rand() * 10;
    const slow = 500 + rand() * 1000;
    a.add(fast);
    all.add(fast);
    if (i % 10 === 0) {
      b.add(slow);
      all.add(slow);
    }
  }
  const merged = Sketch.fromJSON(a.toJSON());
  merged.merge(b);
  for (const q of [0.5, 0.9, 0.95, 0.99]) assert.equal(merged.quantile(q), all.quantile(q));
  // the average of the two p99s is far from the fleet p99
  assert.ok(Math.abs((a.quantile(0.99) + b.quantile(0.99)) / 2 - all.quantile(0.99)) > 100);
});

test('weights (sample rates), zeros, NaN and a bounded bucket count', () => {
  const s = new Sketch(0.01, 64);
  s.add(0, 3);
  s.add(Number.NaN);
  s.add(5, 10);
  assert.equal(s.count, 13);
  assert.equal(s.quantile(0.1), 0);
  assert.ok(Math.abs(s.quantile(0.9) - 5) < 0.06);
  for (let i = 1; i < 10_000; i++) s.add(i);
  assert.ok(s.buckets <= 65);
  assert.ok(Math.abs(s.quantile(0.99) - 9900) / 9900 < 0.02);
});

test('encode/decode round-trips buckets, negatives, zeros and fractional weights; damage is a RangeError', () => {
  const rand = lcg(11);
  const s = new Sketch();
  for (let i = 0; i < 5000; i++) s.add((rand() < 0.2 ? -1 : 1) * 10 ** (rand() * 6 - 1), rand() < 0.1 ? 1 / 0.3 : 1);
  s.add(0, 4);
  const bytes = s.encode();
  const back = Sketch.decode(bytes, { count: s.count, sum: s.sum, min: s.min, max: s.max });
  assert.deepEqual(back.toJSON(), s.toJSON());
  assert.ok(bytes.length < s.buckets * 12, `${bytes.length} bytes for ${s.buckets} buckets`);
  const ints = new Sketch();
  for (let i = 1; i <= 1000; i++) ints.add(i);
  assert.ok(ints.encode().length < ints.buckets * 3.5, 'integer counts take a few bytes a bucket');
  assert.throws(() => Sketch.decode(bytes.subarray(0, bytes.length - 3), { count: 1, sum: 1, min: 1, max: 1 }), RangeError);
});

test('SketchSum merges stored blobs into the same quantiles as merging the sketches', () => {
  const parts = Array.from({ length: 40 }, (_, p) => {
    const s = new Sketch();
    for (let i = 0; i < 200; i++) s.add(((p * 7919 + i * 104729) % 100_000) / 100 - (p % 5 === 0 ? 50 : 0));
    if (p % 3 === 0) s.add(0, 4);
    return s;
  });
  const union = new Sketch();
  const sum = new SketchSum();
  for (const s of parts) {
    union.merge(s);
    sum.addEncoded(s.encode(), s);
  }
  assert.equal(sum.count, union.count);
  for (const q of [0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1]) assert.equal(sum.quantile(q), union.quantile(q), `q=${q}`);
  assert.ok(Number.isNaN(new SketchSum().quantile(0.5)));
  // from the blobs alone: the count from the buckets, answers within the 1 % accuracy
  const bare = new SketchSum();
  for (const s of parts) bare.addEncoded(s.encode());
  assert.equal(bare.count, union.count);
  for (const q of [0.01, 0.5, 0.9, 0.99]) {
    const want = union.quantile(q);
    assert.ok(Math.abs(bare.quantile(q) - want) <= 0.0101 * Math.abs(want), `q=${q}: ${bare.quantile(q)} vs ${want}`);
  }
  assert.throws(() => sum.addEncoded(new Uint8Array([0, 0, 5]), { count: 1, min: 0, max: 0 }), RangeError);
});

test('a cleared sketch, reused, answers as a new one (buckets inserted below, between and above, and collapsed)', () => {
  const reused = new Sketch(0.01, 64);
  // room left from a first life, then values landing in every position of the kept array
  for (let i = 0; i < 500; i++) reused.add(1 + ((i * 7919) % 1000), 1 + (i % 3));
  reused.clear();
  assert.equal(reused.count, 0);
  assert.ok(Number.isNaN(reused.quantile(0.5)));
  const fresh = new Sketch(0.01, 64);
  for (let i = 0; i < 300; i++) {
    const v = (i % 2 ? 1 : -1) * (0.5 + ((i * 104729) % 5000));
    reused.add(v, 1 + (i % 2));
    fresh.add(v, 1 + (i % 2));
  }
  assert.deepEqual(reused.toJSON(), fresh.toJSON());
  assert.deepEqual(reused.encode(), fresh.encode());
  const buf = new Uint8Array(4096);
  assert.deepEqual(buf.subarray(3, reused.encodeInto(buf, 3)), fresh.encode());
  // a fractional count (a sample rate) is written as float64, by either path
  reused.add(7, 1 / 0.3);
  fresh.add(7, 1 / 0.3);
  assert.deepEqual(buf.subarray(0, reused.encodeInto(buf, 0)), fresh.encode());
  const qs = [0.01, 0.5, 0.9, 0.99];
  assert.deepEqual(reused.quantiles(qs), fresh.quantiles(qs));
});
