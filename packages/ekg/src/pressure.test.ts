import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, test } from 'node:test';
import { createEkg } from './ekg.js';
import type { EkgError } from './errors.js';
import { Pressure } from './pressure.js';
import type { RuntimeSample } from './vitals/runtime.js';

/** A window's runtime sample with just what pressure reads. */
const sample = (p99: number, elu: number, heapUsed: number, rss: number) =>
  ({
    eventloop: { delay: { p99 }, utilization: elu },
    memory: { heapUsed, heapLimit: 1000, rss },
  }) as unknown as RuntimeSample;

test('each threshold is crossed and then recrossed, with hysteresis', () => {
  const p = new Pressure({ eventLoopDelayP99: 100, eventLoopUtilization: 0.9, heapUsed: 0.8, rss: 5000, hysteresis: 0.1 });
  const calm = [10, 0.2, 100, 1000] as const;
  const cases: Array<[number, number, number, number, RegExp]> = [
    [150, 0.2, 100, 1000, /event-loop delay p99 150\.0 ms over 100\.0 ms/],
    [10, 0.95, 100, 1000, /event-loop utilization 95 % over 90 %/],
    [10, 0.2, 900, 1000, /heap used/],
    [10, 0.2, 100, 6000, /RSS/],
  ];
  for (const [a, b, c, d, re] of cases) {
    p.update(sample(...calm));
    assert.equal(p.reason, undefined);
    p.update(sample(a, b, c, d));
    assert.match(p.reason ?? '', re);
    // back under the threshold but within the hysteresis: still under pressure
    p.update(sample(a > 100 ? 95 : 10, b > 0.9 ? 0.85 : 0.2, c > 800 ? 750 : 100, d > 5000 ? 4800 : 1000));
    assert.notEqual(p.reason, undefined, 'within the hysteresis');
    p.update(sample(...calm));
    assert.equal(p.reason, undefined, 'cleared');
  }
  assert.equal(p.crossings, 4);
});

test('bad pressure options are refused naming the field', () => {
  assert.throws(
    () => createEkg({ pressure: { eventLoopDelayP99: -1 } }),
    (e: EkgError) => e.code === 'EKG_ERR_BAD_OPTION' && /pressure\.eventLoopDelayP99/.test(e.message),
  );
  assert.throws(() => createEkg({ pressure: { eventLoopUtilization: 2 } }), /pressure\.eventLoopUtilization/);
  assert.throws(() => createEkg({ pressure: {} }), /at least one threshold/);
  assert.throws(() => createEkg({ pressure: { rss: 1e9, hysteresis: 1 } }), /pressure\.hysteresis/);
});

test('a real loop-delay load turns /ready 503 with Retry-After and sheds app requests; both return once it passes', {
  timeout: 20_000,
}, async () => {
  const ekg = createEkg({ interval: 200, signals: false, pressure: { eventLoopDelayP99: 40, reject: true, retryAfter: 3 } });
  after(() => ekg.close());
  const ops = ekg.node();
  const server = createServer((req, res) => ops(req, res, () => res.end('app')));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  after(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const get = async (path: string) => {
    const r = await fetch(`${base}${path}`);
    return { status: r.status, retry: r.headers.get('retry-after'), body: await r.text() };
  };
  await ekg.ready();
  await new Promise((r) => setTimeout(r, 450));
  assert.equal((await get('/ops/ready')).status, 200);
  // block the loop 80 ms at a time for a few windows
  const until = Date.now() + 900;
  await new Promise<void>((resolve) => {
    const burn = () => {
      const end = Date.now() + 80;
      while (Date.now() < end);
      if (Date.now() < until) setTimeout(burn, 5);
      else resolve();
    };
    burn();
  });
  const ready = await get('/ops/ready');
  assert.equal(ready.status, 503);
  assert.equal(ready.retry, '3');
  assert.match(ready.body, /pressure: event-loop delay p99 \d+\.\d ms over 40\.0 ms/);
  const app = await get('/');
  assert.equal(app.status, 503, 'the app is shed');
  assert.match(app.body, /overloaded/);
  assert.equal((await get('/ops/live')).status, 200, 'alive all along');
  const stats = JSON.parse((await get('/ops/stats')).body) as { ekg: { pressure: { active: boolean; crossings: number } } };
  assert.equal(stats.ekg.pressure.active, true);
  // calm windows clear it
  let status = 0;
  for (let i = 0; i < 40 && status !== 200; i++) {
    await new Promise((r) => setTimeout(r, 100));
    status = (await get('/ops/ready')).status;
  }
  assert.equal(status, 200);
  assert.equal((await get('/')).body, 'app');
});
