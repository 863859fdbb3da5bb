import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sanitizeStats, settle } from './runner.js';

test('a synchronous answer stays synchronous', () => {
  const out = settle('x', () => 42, 100);
  assert.deepEqual(out, { ok: true, value: 42 });
});

test('a throw, a rejection and a hang each become a failed outcome with a reason', async () => {
  assert.deepEqual(
    settle(
      'vital "a" stats()',
      () => {
        throw new Error('boom\nsecond line');
      },
      100,
    ),
    { ok: false, code: 'EKG_ERR_VITAL_THREW', error: 'vital "a" stats() threw: boom second line' },
  );
  assert.deepEqual(await settle('r', () => Promise.reject(new TypeError('nope')), 100), {
    ok: false,
    code: 'EKG_ERR_VITAL_THREW',
    error: 'r rejected: nope',
  });
  const t0 = Date.now();
  // ekg's timeout timer is unref'd (it never keeps the app alive); here the test keeps the loop up
  const keep = setInterval(() => {}, 1000);
  const hang = await settle('h', () => new Promise(() => {}), 50);
  clearInterval(keep);
  assert.equal(hang.ok, false);
  assert.equal(!hang.ok && hang.code, 'EKG_ERR_VITAL_TIMEOUT');
  assert.ok(Date.now() - t0 < 1000);
});

test('a rejection after the timeout is not an unhandled rejection', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (r: unknown) => unhandled.push(r);
  process.on('unhandledRejection', onUnhandled);
  try {
    const out = await settle('late', () => new Promise((_, reject) => setTimeout(() => reject(new Error('late')), 30)), 5);
    assert.equal(out.ok, false);
    await new Promise((r) => setTimeout(r, 80));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('stats: NaN and Infinity become null, odd types are converted or left out', () => {
  const out = sanitizeStats({
    a: Number.NaN,
    b: Number.POSITIVE_INFINITY,
    c: 1,
    d: 'info',
    e: true,
    f: 10n,
    g: () => 1,
    h: undefined,
    i: Symbol('s'),
    j: new Date(1000),
    k: [1, 2],
    l: 'x'.repeat(5000),
  });
  assert.ok(out.ok);
  assert.deepEqual(out.value, { a: null, b: null, c: 1, d: 'info', e: true, f: 10, j: 1000, k: { 0: 1, 1: 2 }, l: 'x'.repeat(1024) });
});

test('stats: a cycle, too many values, too deep, a throwing getter fail with where', () => {
  const cyc: Record<string, unknown> = { a: { b: {} } };
  ((cyc.a as Record<string, unknown>).b as Record<string, unknown>).back = cyc;
  const c = sanitizeStats(cyc);
  assert.equal(c.ok, false);
  assert.match(!c.ok ? c.error : '', /cycle at a\.b\.back/);

  const huge: Record<string, number> = {};
  for (let i = 0; i < 10_000; i++) huge[`k${i}`] = i;
  const h = sanitizeStats(huge);
  assert.match(!h.ok ? h.error : '', /more than 2000 values/);

  let deep: Record<string, unknown> = { v: 1 };
  for (let i = 0; i < 20; i++) deep = { d: deep };
  assert.match(((r) => (!r.ok ? r.error : ''))(sanitizeStats(deep)), /deeper than 8 levels/);

  const getter = sanitizeStats(
    Object.defineProperty({}, 'x', {
      enumerable: true,
      get() {
        throw new Error('getter broke');
      },
    }),
  );
  assert.match(!getter.ok ? getter.error : '', /getter broke/);

  // shared (non-cyclic) references are fine
  const shared = { n: 1 };
  assert.ok(sanitizeStats({ a: shared, b: shared }).ok);
  for (const bad of [null, 5, 'str', [1]]) assert.equal(sanitizeStats(bad).ok, false);
});
