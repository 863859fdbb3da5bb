import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Agent } from '../agent.js';
import { loadConfig } from '../config.js';
import { type PushError, parsePush, pushInterval } from './push.js';

const dir = mkdtempSync(join(tmpdir(), 'ekg-push-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a push states its interval with X-Ekg-Interval-Ms or interval_ms; every sample carries it', () => {
  assert.equal(pushInterval('20000', null), 20_000);
  assert.equal(pushInterval(undefined, '10000'), 10_000);
  assert.equal(pushInterval(undefined, null), undefined);
  assert.throws(
    () => pushInterval('10s', null),
    (e: PushError) => e.status === 400 && /X-Ekg-Interval-Ms: "10s"/.test(e.message),
  );
  assert.throws(() => pushInterval(undefined, '0'), /the interval_ms parameter: "0"/);
  assert.throws(() => pushInterval('3600001', null), /from 1 to 3600000/);
  const s = parsePush('{"counters":{"jobs":3},"gauges":{"rss":5}}', { service: 'shop' }, 20_000);
  assert.deepEqual(
    s.map((x) => [x.name, x.type, x.interval]),
    [
      ['jobs', 'c', 20_000],
      ['rss', 'g', 20_000],
    ],
  );
  assert.equal(parsePush('{"gauges":{"rss":5}}', {})[0]?.interval, undefined, 'no interval stated: a moment');
});

test('a push at 10 s into an agent at 1 s windows: its counter spread over the 10 s, its instance reporting throughout', async () => {
  const c = loadConfig(['--statsd', 'off', '--http', '127.0.0.1:0', '--data', dir, '--flush-interval', '1s'], {});
  assert.notEqual(c, 'help');
  const agent = new Agent(c as Exclude<typeof c, 'help'>, []);
  await agent.start({ timer: false });
  try {
    const url = `http://127.0.0.1:${agent.addresses().http}/v1/push?service=shop&pid=4242`;
    const bad = await fetch(url, { method: 'POST', headers: { 'x-ekg-interval-ms': 'often' }, body: '{"counters":{"jobs":1}}' });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /X-Ekg-Interval-Ms: "often"/);

    agent.flush(Date.now());
    const r = await fetch(url, { method: 'POST', headers: { 'x-ekg-interval-ms': '10000' }, body: '{"counters":{"jobs":100}}' });
    assert.equal(r.status, 202);
    // the windows from here are closed by the test, a second apart, from just after the push's arrival
    const t1 = Date.now();
    const jobs: number[] = [];
    const states: string[] = [];
    for (let k = 0; k <= 12; k++) {
      const w = agent.flush(t1 + k * 1000);
      jobs.push(w.series.find((f) => f.name === 'jobs')?.value ?? 0);
      const i = (await agent.store?.instances(t1 + k * 1000))?.find((x) => x.pid === '4242');
      states.push(i?.health ?? 'absent');
    }
    assert.ok(Math.abs(jobs.reduce((a, b) => a + b, 0) - 100) < 1e-9, `every job counted once: ${jobs}`);
    // a whole window inside the push's 10 s takes a tenth of it (the first and last take the rest)
    for (let k = 1; k <= 8; k++) assert.ok(Math.abs((jobs[k] as number) - 10) < 1e-9, `window ${k}: ${jobs}`);
    assert.deepEqual(states, Array(13).fill('reporting'), 'reporting while the push’s interval runs, and for 3 more');
    const i = (await agent.store?.instances(t1))?.find((x) => x.pid === '4242');
    assert.equal(i?.interval_ms, 10_000);
  } finally {
    await agent.stop();
  }
});

test('a pushed name over 1,024 characters is a 400 naming it, as a StatsD line would be too_long', () => {
  assert.equal(parsePush(JSON.stringify({ gauges: { ['o'.repeat(1024)]: 1 } }), {})[0]?.name.length, 1024);
  assert.throws(
    () => parsePush(JSON.stringify({ gauges: { ok: 1, ['n'.repeat(900_000)]: 1 } }), {}),
    (e: PushError) => e.status === 400 && /"gauges" has a name of 900000 characters \("n{40}…"\); a name has at most 1024/.test(e.message),
  );
});
