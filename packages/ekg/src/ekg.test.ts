import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import { PerformanceObserver } from 'node:perf_hooks';
import { after, mock, test } from 'node:test';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createEkg, type Ekg } from './ekg.js';
import { EkgError } from './errors.js';
import { setLogSink } from './log.js';
import { baseOf, closeServer, get, listening, sleep } from './testing/http.js';
import type { Stats } from './types.js';

const logged: string[] = [];
setLogSink((l) => logged.push(l));
const open: Ekg[] = [];
// The process's one sampler takes the first instance's interval: an hour, so no window closes by
// itself in the middle of a test; each test closes windows with flush().
const make = (o: Parameters<typeof createEkg>[0] = {}) => {
  const e = createEkg({ signals: false, interval: 3_600_000, ...o });
  open.push(e);
  return e;
};
after(async () => {
  for (const e of open) await e.close();
});

test('a vital that throws, rejects, hangs, or returns NaN, a cycle or a huge object fails alone, by name', async () => {
  const unhandled: unknown[] = [];
  process.on('unhandledRejection', (r) => unhandled.push(r));
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  const huge: Record<string, number> = {};
  for (let i = 0; i < 100_000; i++) huge[`m${i}`] = i;
  const ekg = make({
    timeout: 200,
    vitals: [
      { name: 'good', stats: () => ({ n: 1 }) },
      {
        name: 'throws',
        stats: () => {
          throw new Error('db exploded');
        },
      },
      { name: 'rejects', stats: async () => Promise.reject(new Error('async boom')) },
      { name: 'hangs', stats: () => new Promise(() => {}) },
      { name: 'nan', stats: () => ({ ratio: Number.NaN, ok: 1 }) },
      { name: 'cycle', stats: () => cycle as Stats },
      { name: 'huge', stats: () => huge },
    ],
  });
  const keep = setInterval(() => {}, 1000); // the test's own keep-alive; ekg's timers are unref'd
  const mw = ekg.node();
  const server = await listening(createServer((req, res) => mw(req, res)));
  try {
    await ekg.flush();
    const r = await get(baseOf(server), '/ops/stats');
    assert.equal(r.status, 503);
    const s = JSON.parse(r.body);
    assert.deepEqual(s.good, { n: 1 });
    assert.deepEqual(s.nan, { ratio: null, ok: 1 });
    assert.equal(s.throws.error, 'vital "throws" stats() threw: db exploded');
    assert.equal(s.rejects.error, 'vital "rejects" stats() rejected: async boom');
    assert.equal(s.hangs.error, 'vital "hangs" stats() did not settle within 200 ms');
    assert.match(s.cycle.error, /cycle at self/);
    assert.match(s.huge.error, /more than 2000 values/);
    assert.deepEqual(Object.keys(s.ekg.failed).sort(), ['cycle', 'huge', 'rejects', 'throws', 'hangs'].sort());
    assert.equal(typeof s.runtime.memory.rss, 'number', 'the runtime vital is unaffected');
    // the failures are named on stderr once each, not once per window
    await ekg.flush();
    const lines = logged.filter((l) => l.includes('"throws"'));
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', /^ekg: EKG_ERR_VITAL_THREW: /);
    const m = await get(baseOf(server), '/ops/metrics');
    assert.match(m.body, /^ekg_vital_up\{vital="throws"\} 0$/m);
    assert.match(m.body, /^ekg_vital_up\{vital="good"\} 1$/m);
    assert.deepEqual(unhandled, []);
  } finally {
    clearInterval(keep);
    await closeServer(server);
  }
});

test('reading does not reset: readers share the last closed window until the next one', async () => {
  let calls = 0;
  const ekg = make({ vitals: [{ name: 'counted', stats: () => ({ calls: ++calls }) }] });
  const first = await ekg.flush();
  const mw = ekg.node();
  const server = await listening(createServer((req, res) => mw(req, res)));
  try {
    const a = await get(baseOf(server), '/ops/stats');
    const b = await get(baseOf(server), '/ops/stats');
    const m1 = await get(baseOf(server), '/ops/metrics');
    const m2 = await get(baseOf(server), '/ops/metrics');
    assert.equal(a.body, b.body);
    assert.equal(m1.body, m2.body);
    assert.equal(JSON.parse(a.body).counted.calls, calls, 'stats() is called per window, not per read');
    const second = await ekg.flush();
    assert.equal(second.window.seq, first.window.seq + 1);
    assert.notEqual((await get(baseOf(server), '/ops/stats')).body, a.body);
  } finally {
    await closeServer(server);
  }
});

test('GC: every entry of each observer batch is counted', async () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  let reference = 0;
  const obs = new PerformanceObserver((list) => {
    reference += list.getEntries().length;
  });
  obs.observe({ entryTypes: ['gc'] });
  const ekg = make();
  await ekg.flush();
  reference = 0;
  for (let i = 0; i < 30; i++) gc(); // synchronous: the observers get them in batches, later
  // both observers are handed each batch in the same dispatch: once this one has all 30, so has ekg's
  while (reference < 30) await new Promise((r) => setTimeout(r, 5));
  obs.disconnect();
  const snap = await ekg.flush();
  const stats = ekg.statsObject(snap).stats as { runtime: { gc: { count: number; major: { count: number } } } };
  assert.ok(reference >= 30, `reference saw ${reference}`);
  assert.equal(stats.runtime.gc.count, reference);
  assert.ok(stats.runtime.gc.major.count >= 30);
  const text = ekg.metricsText(snap);
  const count = Number(/^nodejs_gc_duration_seconds_count\{kind="major"\} (\d+)$/m.exec(text)?.[1]);
  assert.ok(count >= 30, `histogram count ${count}`);
});

test('http vital: status classes, in flight, aborted, durations — across servers', async () => {
  const ekg = make();
  await ekg.flush();
  let hangIn: () => void = () => {};
  let hangClosed: () => void = () => {};
  const hangArrived = new Promise<void>((r) => {
    hangIn = r;
  });
  const hangGone = new Promise<void>((r) => {
    hangClosed = r;
  });
  const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    const code = Number(req.url?.slice(1)) || 200;
    // never answers: the client gives up (ekg's own listener, attached at request start, sees the close first)
    if (req.url === '/hang') {
      res.on('close', () => hangClosed());
      return hangIn();
    }
    setTimeout(() => {
      res.statusCode = code;
      res.end();
    }, 20);
  };
  const a = await listening(createServer(handler));
  const b = await listening(createServer(handler));
  try {
    // each request timed by the client too: the server's duration lies inside the client's
    let clientMax = 0;
    const timed = async (base: string, path: string) => {
      const t0 = performance.now();
      await get(base, path);
      clientMax = Math.max(clientMax, performance.now() - t0);
    };
    await Promise.all([
      timed(baseOf(a), '/200'),
      timed(baseOf(a), '/201'),
      timed(baseOf(b), '/404'),
      timed(baseOf(b), '/500'),
      timed(baseOf(b), '/302'),
    ]);
    // an aborted request
    await new Promise<void>((resolve) => {
      const req = request(`${baseOf(a)}/hang`);
      req.on('error', () => resolve());
      req.end();
      // destroyed once the server has it in flight, not after a guessed delay
      void hangArrived.then(() => req.destroy());
    });
    await hangGone;
    const snap = await ekg.flush();
    const h = (ekg.statsObject(snap).stats as { http: Record<string, Record<string, number>> }).http;
    assert.deepEqual(h.requests, { total: 5, rate: h.requests?.rate, '1xx': 0, '2xx': 2, '3xx': 1, '4xx': 1, '5xx': 1 });
    assert.equal(h.inFlight as unknown as number, 0);
    assert.equal(h.aborted as unknown as number, 1);
    assert.ok((h.duration?.p50 ?? 0) >= 15, JSON.stringify(h.duration));
    // milliseconds: the server's longest is at most what the client measured (µs or ns would be far over)
    assert.ok((h.duration?.max ?? 0) <= clientMax + 1, `server max ${h.duration?.max} ms, client ${clientMax} ms`);
    const text = ekg.metricsText(snap);
    assert.match(text, /^ekg_http_requests_total\{class="2xx"\} 2$/m);
    assert.match(text, /^ekg_http_request_duration_seconds_count 5$/m);
  } finally {
    await closeServer(a);
    await closeServer(b);
  }
});

test('checks: a probe storm runs each check once; the verdict is cached for checkCache', async (t) => {
  // the cache's clock is Date: mocked, so a busy machine cannot age the verdict between two probes
  mock.timers.enable({ apis: ['Date'], now: Date.now() });
  t.after(() => mock.timers.reset());
  let calls = 0;
  const ekg = make({
    checkCache: 300,
    vitals: [
      {
        name: 'dep',
        check: async () => {
          calls++;
          await sleep(30);
          return { ok: true };
        },
      },
    ],
  });
  await ekg.ready();
  const results = await Promise.all(Array.from({ length: 50 }, () => ekg.health()));
  assert.ok(results.every((r) => r.ok));
  assert.equal(calls, 1);
  mock.timers.tick(299);
  await ekg.health();
  assert.equal(calls, 1, 'cached for checkCache');
  mock.timers.tick(1);
  await ekg.health();
  assert.equal(calls, 2, 'run again once checkCache has passed');
});

test('a check returning garbage, an init failure, and a fatal vital', async () => {
  const ekg = make({
    checkCache: 0,
    vitals: [
      { name: 'garbage', check: () => 'yes' as unknown as boolean },
      {
        name: 'broken_init',
        init: () => {
          throw new Error('no config');
        },
      },
      { name: 'heart', fatal: true, check: () => false },
    ],
  });
  await ekg.ready();
  const h = await ekg.health();
  assert.equal(h.ok, false);
  assert.match(h.checks.garbage?.detail ?? '', /check\(\) returned "yes", expected \{ ok: boolean/);
  assert.equal(h.checks.broken_init?.detail, 'vital "broken_init" init() threw: no config');
  assert.deepEqual(h.checks.heart, { ok: false });
  assert.deepEqual(ekg.live(), { ok: false, detail: 'fatal vital "heart" failed' });
});

test('setReady(false) turns readiness off with a reason', async () => {
  const ekg = make();
  await ekg.ready();
  assert.equal((await ekg.health()).ok, true);
  ekg.setReady(false, 'warming cache');
  const h = await ekg.health();
  assert.deepEqual(h.checks, { ekg: { ok: false, detail: 'warming cache' } });
  ekg.setReady(true);
  assert.equal((await ekg.health()).ok, true);
});

test('bad options are EkgErrors naming the field', () => {
  const cases: Array<[Parameters<typeof createEkg>[0], RegExp, string]> = [
    [{ interval: 'often' }, /option "interval" must be a duration/, 'EKG_ERR_BAD_OPTION'],
    [{ token: '' }, /option "token" must be a non-empty string/, 'EKG_ERR_BAD_OPTION'],
    [{ vitals: [{ name: 'bad name' }] }, /option "vital.name"/, 'EKG_ERR_BAD_OPTION'],
    [{ vitals: [{ name: 'runtime' }] }, /built-in names/, 'EKG_ERR_BAD_OPTION'],
    [{ vitals: [{ name: 'a' }, { name: 'a' }] }, /already registered/, 'EKG_ERR_DUPLICATE_VITAL'],
    [{ labels: { 'bad-label': 'x' } }, /labels\.bad-label/, 'EKG_ERR_BAD_OPTION'],
  ];
  for (const [opts, re, code] of cases) {
    assert.throws(
      () => createEkg({ signals: false, ...opts }),
      (err: unknown) => err instanceof EkgError && err.code === code && re.test(err.message),
    );
  }
});

test('close() twice is safe and stops reporting', async () => {
  const ekg = createEkg({ signals: false });
  await ekg.ready();
  const p1 = ekg.close();
  const p2 = ekg.close();
  await Promise.all([p1, p2]);
  await ekg.close();
  assert.equal(ekg.lifecycle, 'closed');
  assert.equal((await ekg.health()).ok, false);
  assert.equal(ekg.live().ok, false);
});

test("health() gives the caller a verdict of its own to change, even when ready with no checks (the probes' shared one is frozen)", async () => {
  const ekg = createEkg({ signals: false, interval: 60_000 });
  await ekg.ready();
  try {
    const h = (await ekg.health()) as unknown as Record<string, unknown>;
    assert.equal(h.ok, true);
    assert.equal(h.state, 'ready');
    // ESM is strict: a write to a frozen object would throw into the caller
    h.seen = 1;
    (h.checks as Record<string, unknown>).mine = { ok: true };
    const again = (await ekg.health()) as unknown as Record<string, unknown>;
    assert.equal(again.seen, undefined);
    assert.deepEqual(again.checks, {});
  } finally {
    await ekg.close();
  }
});
