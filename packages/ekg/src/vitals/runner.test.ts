import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEkg } from '../ekg.js';
import { defaultLimits, sanitizeStats, settle } from './runner.js';

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
  // ekg's timeout timer is unref'd (it never keeps the app alive); here the test keeps the loop up
  const keep = setInterval(() => {}, 1000);
  const hang = await settle('h', () => new Promise(() => {}), 50);
  clearInterval(keep);
  assert.equal(hang.ok, false);
  assert.equal(!hang.ok && hang.code, 'EKG_ERR_VITAL_TIMEOUT');
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

// ---------------------------------------------------------------- hostile values (issue 14)

/** The values a vital can hand back that throw when ekg merely looks at them. */
function hostile(): Array<[string, () => unknown]> {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  const badMessage = new Error('x');
  Object.defineProperty(badMessage, 'message', {
    get() {
      throw new Error('message getter');
    },
  });
  return [
    [
      'a then getter that throws',
      () =>
        ({
          // biome-ignore lint/suspicious/noThenProperty: the hostile thenable under test
          get then() {
            throw new Error('then getter');
          },
        }) as unknown,
    ],
    ['a revoked Proxy', () => proxy],
    [
      'a thenable rejecting with an Error whose message getter throws',
      // biome-ignore lint/suspicious/noThenProperty: the hostile thenable under test
      () => ({ then: (_: unknown, reject: (e: unknown) => void) => reject(badMessage) }),
    ],
    [
      'a throw of an Error whose message getter throws',
      () => {
        throw badMessage;
      },
    ],
    [
      'a throw of a revoked Proxy',
      () => {
        throw proxy;
      },
    ],
    [
      'a thenable whose then throws synchronously',
      () => ({
        // biome-ignore lint/suspicious/noThenProperty: the hostile thenable under test
        then() {
          throw badMessage;
        },
      }),
    ],
  ];
}

test('settle: values that throw when looked at become failed outcomes, never a throw', async () => {
  for (const [what, fn] of hostile()) {
    let out: unknown;
    assert.doesNotThrow(() => {
      out = settle('v', fn, 100);
    }, what);
    const o = (await out) as { ok: boolean; error?: string };
    // a revoked Proxy returned (not thrown) is a value; the stats walk rejects it next
    if (what === 'a revoked Proxy') continue;
    assert.equal(o.ok, false, what);
    assert.match(o.error ?? '', /^v (threw|rejected): /, what);
  }
});

test('stats: a revoked Proxy, anywhere in the tree, fails the vital with a reason', () => {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  for (const v of [proxy, { a: { b: proxy } }]) {
    const out = sanitizeStats(v);
    assert.equal(out.ok, false);
    assert.match(!out.ok ? out.error : '', /revoked|could not be read/);
  }
});

test('a vital returning hostile values never reaches the app, and a check failing so never wedges health', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (r: unknown) => unhandled.push(r);
  process.on('unhandledRejection', onUnhandled);
  const cases = hostile();
  const ekg = createEkg({
    signals: false,
    checkCache: 0,
    vitals: cases.map(([, fn], i) => ({ name: `v${i}`, stats: fn as () => never, check: fn as () => never })),
  });
  try {
    await ekg.ready();
    const snap = await ekg.flush();
    const { stats, failed } = ekg.statsObject(snap);
    assert.equal(failed, true);
    for (let i = 0; i < cases.length; i++) assert.equal(typeof (stats[`v${i}`] as { error?: unknown }).error, 'string', cases[i]?.[0]);
    // counted by cause, once per window collected (each stats() threw or rejected; none timed out)
    const counted = (stats.ekg as { limits: { vitalFailures: Record<string, number> } }).limits.vitalFailures;
    assert.ok((counted.threw ?? 0) >= cases.length, JSON.stringify(counted));
    assert.equal(counted.timeout, 0);
    // every probe gets an answer: a 503 verdict naming each vital, never a pending or rejected one
    for (let probe = 0; probe < 3; probe++) {
      const h = await ekg.health();
      assert.equal(h.ok, false);
      for (let i = 0; i < cases.length; i++) assert.equal(h.checks[`v${i}`]?.ok, false, cases[i]?.[0]);
    }
    // let any stray rejection surface before looking
    await new Promise<void>((r) => setImmediate(r));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await ekg.close();
  }
});

test('a check that answers again after failing turns health back to ok', async () => {
  let hostileNow = true;
  const ekg = createEkg({
    signals: false,
    checkCache: 0,
    vitals: [
      {
        name: 'db',
        check: () =>
          hostileNow
            ? ({
                get ok() {
                  throw new Error('ok getter');
                },
              } as never)
            : { ok: true },
      },
    ],
  });
  try {
    await ekg.ready();
    const bad = await ekg.health();
    assert.equal(bad.ok, false);
    assert.match(bad.checks.db?.detail ?? '', /could not be read: ok getter/);
    hostileNow = false;
    assert.equal((await ekg.health()).ok, true);
  } finally {
    await ekg.close();
  }
});

test('stats: the walk is bounded before it enumerates: a huge result fails after at most maxKeys visits', () => {
  const { maxKeys } = defaultLimits;
  let visits = 0;
  const count = () => visits++;

  // 30k keys whose values are left out (functions): each used to be read, none counted
  const fns: Record<string, unknown> = {};
  for (let i = 0; i < 30_000; i++) fns[`f${i}`] = () => i;
  let out = sanitizeStats(fns, defaultLimits, count);
  assert.match(!out.ok ? out.error : 'passed', new RegExp(`more than ${maxKeys} keys`));
  assert.ok(visits <= maxKeys, `${visits} visits`);

  // 200k empty objects: no values at all, yet each costs a visit
  const empties: Record<string, object> = {};
  for (let i = 0; i < 200_000; i++) empties[`e${i}`] = {};
  visits = 0;
  out = sanitizeStats(empties, defaultLimits, count);
  assert.match(!out.ok ? out.error : 'passed', new RegExp(`more than ${maxKeys} keys`));
  assert.ok(visits <= maxKeys, `${visits} visits`);

  // a Proxy listing 300k keys: the walk asks about the keys one by one as it goes, so it
  // stops at the budget (Object.keys asks about every key before the walk starts)
  const million = Array.from({ length: 300_000 }, (_, i) => `k${i}`);
  let asked = 0;
  const lister = new Proxy(
    {},
    {
      ownKeys: () => million,
      getOwnPropertyDescriptor: () => {
        asked++;
        return { value: 1, enumerable: true, configurable: true, writable: true };
      },
      get: () => 1,
    },
  );
  out = sanitizeStats(lister, { ...defaultLimits, maxValues: 1e9 });
  assert.match(!out.ok ? out.error : 'passed', new RegExp(`more than ${maxKeys} keys`));
  // for..in asks once per key as it goes; Object.hasOwn asks once more
  assert.ok(asked <= 2 * (maxKeys + 1), `${asked} descriptors read`);
});

test('stats: a 10 MB key fails the vital, named short', () => {
  const out = sanitizeStats({ ['k'.repeat(10 * 1024 * 1024)]: 1 });
  assert.equal(out.ok, false);
  const error = !out.ok ? out.error : '';
  assert.match(error, new RegExp(`key longer than ${defaultLimits.maxKeyLength} characters`));
  assert.ok(error.length < 300, error.slice(0, 300));
  // a key at the limit is fine
  assert.ok(sanitizeStats({ ['k'.repeat(defaultLimits.maxKeyLength)]: 1 }).ok);
});

test('stats: inherited enumerable keys are not stats', () => {
  const proto = { inherited: 1 };
  const own = Object.create(proto) as Record<string, number>;
  own.mine = 2;
  assert.deepEqual(sanitizeStats(own), { ok: true, value: { mine: 2 } });
});
