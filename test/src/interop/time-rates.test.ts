import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Agent, loadConfig, SqliteStore } from 'ekg-agent';
import { statsdLines } from '../../../packages/ekg/dist/formats/statsd.js';

/**
 * The time model end to end (docs/time-model.md): an app's windows of one length, the agent's of
 * another, and the query's step a third. The app's StatsD lines are the library's own
 * (`statsdLines` with the window, as its reporters send them); a real agent (SQLite store, HTTP API)
 * takes them at their arrival times and closes its windows at its ticks, both driven explicitly, so
 * no timer or loaded machine moves a window. The app serves exactly 20 requests a second.
 */

const RATE = 20;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Reading {
  step: number;
  values: Array<number | null>;
}

async function run(appS: number, agentS: number): Promise<Reading[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ekg-time-'));
  dirs.push(dir);
  const config = loadConfig(
    ['--statsd', 'udp://127.0.0.1:0', '--http', '127.0.0.1:0', '--data', dir, '--flush-interval', `${agentS}s`],
    {},
  );
  assert.notEqual(config, 'help');
  const agent = new Agent(config as Exclude<typeof config, 'help'>, []);
  await agent.start({ timer: false });
  try {
    // five minutes ago, on a minute: inside the raw resolution, and every window closed
    const t0 = Math.floor(Date.now() / 60_000) * 60_000 - 300_000;
    const events: Array<{ at: number; run(): void }> = [];
    // the app's windows end 3.2 s past the agent's ticks (they are not aligned); each line arrives 5 ms later
    for (let end = t0 + 3200; end <= t0 + 200_000; end += appS * 1000) {
      const e = end;
      const lines = statsdLines(
        [
          { name: 'http.requests.2xx', value: RATE * appS, type: 'counter' },
          { name: 'runtime.memory.rss', value: 100_000_000, type: 'gauge' },
        ],
        { tags: { service: 'shop', pid: '4242', host: 'h' } },
        { start: e - appS * 1000, end: e },
      );
      events.push({ at: e + 5, run: () => agent.ingest(lines.join('\n'), e + 5) });
    }
    for (let t = t0 + agentS * 1000; t <= t0 + 200_000; t += agentS * 1000) {
      const at = t;
      events.push({ at, run: () => agent.flush(at) });
    }
    agent.flush(t0);
    for (const ev of events.sort((a, b) => a.at - b.at)) ev.run();

    const port = agent.addresses().http as number;
    // the range after the first minute (the pipeline filling) up to two minutes later, on minute ends
    const from = t0 + 60_001;
    const to = t0 + 180_000;
    const out: Reading[] = [];
    for (const step of [1, 5, 10, 60]) {
      const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?name=http.requests.2xx&agg=rate&step=${step}s&from=${from}&to=${to}`);
      assert.equal(r.status, 200, await r.clone().text());
      const body = (await r.json()) as { t: number[]; series: Array<{ values: Array<number | null> }> };
      assert.equal(body.series.length, 1, JSON.stringify(body));
      out.push({ step, values: (body.series[0] as { values: Array<number | null> }).values });
    }
    // the gauge, sent once per app window, holds for its window: every step has it, none twice
    for (const step of [1, 5, 60]) {
      const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?name=runtime.memory.rss&agg=max&step=${step}s&from=${from}&to=${to}`);
      const body = (await r.json()) as { series: Array<{ values: Array<number | null> }> };
      assert.deepEqual(new Set(body.series[0]?.values), new Set([100_000_000]), `rss at step ${step}s`);
    }
    return out;
  } finally {
    await agent.stop();
  }
}

for (const [appS, agentS] of [
  [10, 5],
  [5, 10],
  [10, 10],
] as const) {
  test(`${appS} s app windows, ${agentS} s agent windows, 20 req/s: every step reads 20/s within 5 %, no nulls`, async () => {
    const readings = await run(appS, agentS);
    const table: string[] = [];
    for (const { step, values } of readings) {
      const nums = values.filter((v): v is number => v !== null);
      table.push(
        `step ${step}s: ${values.length} points, nulls ${values.length - nums.length}, min ${Math.min(...nums).toFixed(2)}, max ${Math.max(...nums).toFixed(2)}`,
      );
    }
    process.stdout.write(`# ${appS} s app / ${agentS} s agent\n${table.map((l) => `#   ${l}`).join('\n')}\n`);
    for (const { step, values } of readings) {
      // the step asked for, not the store's resolution: one point a step over the two minutes
      assert.equal(values.length, 120 / step, `step ${step}s: ${values.length} points`);
      for (const [i, v] of values.entries()) {
        assert.notEqual(v, null, `step ${step}s: a null at point ${i} of ${values.length}`);
        assert.ok(Math.abs((v as number) - RATE) <= RATE * 0.05, `step ${step}s: ${v} at point ${i}`);
      }
    }
  });
}

test('an app restarted ten times leaves one live row: the old instances go stale, then gone after --instance-retention, their series with them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ekg-time-'));
  dirs.push(dir);
  const config = loadConfig(
    ['--statsd', 'udp://127.0.0.1:0', '--http', '127.0.0.1:0', '--data', dir, '--flush-interval', '5s', '--instance-retention', '100s'],
    {},
  );
  assert.notEqual(config, 'help');
  const agent = new Agent(config as Exclude<typeof config, 'help'>, []);
  await agent.start({ timer: false });
  try {
    // ten lives of 30 s each, one after the other, each a new pid; the last one ends now
    const t0 = Math.floor(Date.now() / 5000) * 5000 - 300_000;
    agent.flush(t0);
    for (let t = t0 + 5000; t <= t0 + 300_000; t += 5000) {
      const pid = 1000 + Math.min(9, Math.floor((t - t0 - 1) / 30_000));
      const lines = statsdLines(
        [{ name: 'runtime.memory.rss', value: 1e8, type: 'gauge' }],
        { tags: { service: 'shop', pid: String(pid), host: 'h' } },
        { start: t - 5000, end: t - 100 },
      );
      agent.ingest(lines.join('\n'), t - 100);
      agent.flush(t);
    }
    const r = await fetch(`http://127.0.0.1:${agent.addresses().http}/api/v1/instances`);
    const rows = ((await r.json()) as { instances: Array<{ pid?: string; health: string }> }).instances;
    assert.deepEqual(
      rows.filter((i) => i.health === 'reporting').map((i) => i.pid),
      ['1009'],
    );
    // lives that ended within the retention are listed as stale; older ones are gone
    assert.deepEqual(rows.map((i) => [i.pid, i.health]).sort(), [
      ['1006', 'stale'],
      ['1007', 'stale'],
      ['1008', 'stale'],
      ['1009', 'reporting'],
    ]);
    // the series listing (the dashboard's explorer and instance pages read it) has the same four lives
    const api = `http://127.0.0.1:${agent.addresses().http}/api/v1`;
    const listed = ((await (await fetch(`${api}/series?match=runtime.memory.rss`)).json()) as { series: Array<{ tags: { pid: string } }> })
      .series;
    assert.deepEqual(listed.map((x) => x.tags.pid).sort(), ['1006', '1007', '1008', '1009']);
    const all = ((await (await fetch(`${api}/series`)).json()) as { series: Array<{ tags: { pid?: string } }> }).series;
    assert.deepEqual([...new Set(all.map((x) => x.tags.pid))].sort(), ['1006', '1007', '1008', '1009']);
    // a gone life's data stays queryable by name and time until the store's retention
    const q = (await (
      await fetch(`${api}/query?name=runtime.memory.rss&tags=pid:1000&agg=max&from=${t0}&to=${t0 + 30_000}&step=30s`)
    ).json()) as { series: Array<{ values: Array<number | null> }> };
    assert.deepEqual(new Set(q.series[0]?.values.filter((v) => v !== null)), new Set([1e8]), JSON.stringify(q));
  } finally {
    await agent.stop();
  }
});

test("stopping mid-period delivers the partial period to the Heroku exporter and the store, with the interval's remainder", async () => {
  const posts: Array<{ counters?: Record<string, number> }> = [];
  const server = createServer((req, res) => {
    let b = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (b += d));
    req.on('end', () => {
      posts.push(JSON.parse(b));
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  after(() => server.close());
  const dir = mkdtempSync(join(tmpdir(), 'ekg-time-'));
  dirs.push(dir);
  writeFileSync(
    join(dir, 'agent.yaml'),
    `exporters:\n  - type: heroku\n    url: http://127.0.0.1:${(server.address() as AddressInfo).port}/m\n    period: 20s\n`,
  );
  const config = loadConfig(
    ['--config', join(dir, 'agent.yaml'), '--statsd', 'udp://127.0.0.1:0', '--http', 'off', '--data', dir, '--flush-interval', '5s'],
    {},
  );
  assert.notEqual(config, 'help');
  const agent = new Agent(config as Exclude<typeof config, 'help'>, []);
  await agent.start({ timer: false });
  // two 5 s windows of a 20 s period, then the stop (what SIGTERM calls): 2 × 100 requests from 5 s app windows
  const t0 = Math.floor(Date.now() / 5000) * 5000 - 10_000;
  agent.flush(t0);
  for (const end of [t0 + 2000, t0 + 7000]) {
    const lines = statsdLines([{ name: 'jobs', value: 100, type: 'counter' }], { tags: { pid: '1' } }, { start: end - 5000, end });
    agent.ingest(lines.join('\n'), end);
  }
  agent.flush(t0 + 5000);
  agent.flush(t0 + 10_000);
  const store = agent.store;
  await agent.stop();
  // the whole 200 reached the exporter in one partial period
  const deadline = Date.now() + 10_000;
  while (posts.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(posts.length, 1);
  assert.equal(posts[0]?.counters?.jobs, 200);
  // and the store has every one of them, the last window included
  assert.ok(store);
  const reopened = new SqliteStore({ path: join(dir, 'ekg.db'), flushInterval: 5000 });
  try {
    const q = await reopened.query({ name: 'jobs', tags: {}, from: t0, to: Date.now() + 60_000, step: 3_600_000, agg: 'sum', by: [] });
    assert.equal(
      q.series[0]?.values.reduce((a: number, v) => a + (v ?? 0), 0),
      200,
    );
  } finally {
    await reopened.close();
  }
});
