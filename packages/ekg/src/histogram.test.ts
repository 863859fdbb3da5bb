import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Buckets, Histogram } from './histogram.js';

test('quantiles are within 3.5 % of the exact ones over six orders of magnitude', () => {
  const h = new Histogram();
  const values: number[] = [];
  let seed = 42;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let i = 0; i < 50_000; i++) {
    const ms = 0.05 * 10 ** (rand() * 6); // 50 µs .. 50 s, log-uniform
    values.push(ms);
    h.record(ms);
  }
  values.sort((a, b) => a - b);
  for (const q of [0.5, 0.9, 0.99, 0.999]) {
    const exact = values[Math.ceil(q * values.length) - 1] as number;
    const got = h.quantile(q);
    assert.ok(Math.abs(got - exact) / exact < 0.035, `q${q}: ${got} vs ${exact}`);
  }
  const s = h.summary();
  assert.equal(s.count, 50_000);
  assert.ok(Math.abs(s.max - (values.at(-1) as number)) < 0.001);
  assert.ok(Math.abs(s.min - (values[0] as number)) < 0.001);
});

test('empty, zero, negative, NaN and enormous values never break it', () => {
  const h = new Histogram();
  assert.deepEqual(h.summary(), { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 });
  h.record(0);
  h.record(-5);
  h.record(Number.NaN);
  h.record(1e12); // ~31 years in ms
  assert.equal(h.count, 4);
  assert.equal(h.quantile(0.5), 0);
  assert.ok(h.quantile(1) > 1e9);
  h.reset();
  assert.equal(h.count, 0);
  assert.equal(h.quantile(0.99), 0);
});

test('Prometheus buckets are cumulative and the bound is inclusive (le)', () => {
  const b = new Buckets([0.1, 1]);
  for (const v of [0.05, 0.1, 0.5, 1, 3]) b.observe(v);
  assert.deepEqual(b.cumulative(), [
    [0.1, 2],
    [1, 4],
    [Number.POSITIVE_INFINITY, 5],
  ]);
  assert.equal(b.count, 5);
  assert.ok(Math.abs(b.sum - 4.65) < 1e-9);
});

test('a single value reads back within 3.2 % at every power of two, on both sides of the 32-bit fast path', () => {
  // 2^32 µs (71 minutes) is where record() leaves integer arithmetic for Math.log2
  for (let e = 0; e <= 40; e++) {
    for (const us of [2 ** e - 1, 2 ** e, 2 ** e + 1, 1.5 * 2 ** e]) {
      if (us < 1) continue;
      const h = new Histogram();
      h.record(us / 1000);
      h.record(us / 1000);
      // one value below and one far above, so p50 comes from the value's bucket, not from min or max
      h.record(0);
      h.record(2 ** 41 / 1000);
      const got = h.quantile(0.5) * 1000;
      const want = Math.round(us);
      assert.ok(Math.abs(got - want) / want <= 0.032, `${want} µs read back as ${got} µs`);
    }
  }
});
