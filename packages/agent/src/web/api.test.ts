import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Agent } from '../agent.js';
import { loadConfig } from '../config.js';

const dir = mkdtempSync(join(tmpdir(), 'ekg-api-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function agentOn(data: string): Promise<{ agent: Agent; base: string }> {
  const c = loadConfig(['--statsd', 'off', '--http', '127.0.0.1:0', '--flush-interval', '1s', '--data', data, '--console', 'off']);
  assert.ok(c !== 'help');
  const agent = new Agent(c, []);
  await agent.start({ timer: false }); // the test closes each window itself
  return { agent, base: `http://127.0.0.1:${agent.addresses().http}` };
}

const get = async (url: string) => {
  const r = await fetch(url);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

test('the query API over HTTP: instances, series, query; history survives a restart', { timeout: 30_000 }, async () => {
  const data = join(dir, 'a');
  const first = await agentOn(data);
  for (let i = 0; i < 5; i++) {
    first.agent.ingest(
      `runtime.eventloop.delay.p99:${10 + i}|g|#service:web,host:h1,pid:7\nhttp.requests:4|c|#service:web,host:h1,pid:7\nhttp.duration:${i + 1}|ms|#service:web,host:h1,pid:7`,
    );
    first.agent.flush();
    await new Promise((r) => setTimeout(r, 1010)); // one window per second of the store's resolution
  }
  const inst = await get(`${first.base}/api/v1/instances`);
  assert.equal(inst.status, 200);
  const list = inst.body.instances as Array<Record<string, unknown>>;
  assert.deepEqual(
    list.map((i) => [i.service, i.host, i.pid, i.health]),
    [['web', 'h1', '7', 'reporting']],
  );
  const series = await get(`${first.base}/api/v1/series?match=runtime.*&tags=service:web`);
  assert.deepEqual(
    (series.body.series as Array<Record<string, unknown>>).map((s) => [s.name, s.kind, s.unit]),
    [['runtime.eventloop.delay.p99', 'gauge', 'ms']],
  );
  const q = await get(`${first.base}/api/v1/query?name=runtime.eventloop.delay.p99&from=now-1m&step=1s&agg=max`);
  assert.equal(q.status, 200);
  assert.equal(q.body.agg, 'max');
  const values = (q.body.series as Array<{ values: Array<number | null> }>)[0]?.values.filter((v) => v !== null);
  assert.deepEqual(values, [10, 11, 12, 13, 14]);
  const t = q.body.t as number[];
  assert.ok(
    t.length >= 60 && t.length <= 61 && t[1] === (t[0] as number) + 1,
    'columnar: one time axis, one point a second over the minute',
  );
  // a counter defaults to its rate; a distribution to its p99
  assert.equal((await get(`${first.base}/api/v1/query?name=http.requests&from=now-1m`)).body.agg, 'rate');
  assert.equal((await get(`${first.base}/api/v1/query?name=http.duration&from=now-1m`)).body.agg, 'p99');
  await first.agent.stop();

  const second = await agentOn(data);
  after(() => second.agent.stop());
  const again = await get(`${second.base}/api/v1/query?name=runtime.eventloop.delay.p99&from=now-1m&step=1s&agg=max`);
  const kept = (again.body.series as Array<{ values: Array<number | null> }>)[0]?.values.filter((v) => v !== null) ?? [];
  // the windows are still there after a restart, with the one stop() flushed (the gauge carried)
  assert.deepEqual(kept.slice(0, 5), [10, 11, 12, 13, 14]);
  assert.ok(kept.slice(5).every((v) => v === 14) && kept.length <= 6, `${kept}`);
});

test('bad parameters are a 400 naming the parameter', async () => {
  const { agent, base } = await agentOn(join(dir, 'b'));
  after(() => agent.stop());
  agent.ingest('level:1|g');
  agent.flush();
  const cases: Array<[string, string]> = [
    ['/api/v1/query', 'name'],
    ['/api/v1/query?name=level&agg=median', 'agg'],
    ['/api/v1/query?name=level&agg=p99', 'agg'],
    ['/api/v1/query?name=level&step=0.5s', 'step'],
    ['/api/v1/query?name=level&from=yesterday-ish', 'from'],
    ['/api/v1/query?name=level&from=now&to=now-1h', 'from'],
    ['/api/v1/query?name=level&to=soon', 'to'],
    ['/api/v1/query?name=level&tags=service', 'tags'],
    ['/api/v1/query?name=level&from=now-14d&step=1s', 'step'],
    ['/api/v1/series?limit=0', 'limit'],
  ];
  for (const [path, param] of cases) {
    const r = await get(`${base}${path}`);
    assert.equal(r.status, 400, path);
    assert.equal(r.body.param, param, `${path}: ${r.body.error}`);
    assert.match(String(r.body.error), new RegExp(`^${param}: `));
  }
  assert.equal((await get(`${base}/api/v1/nothing`)).status, 404);
  assert.equal((await fetch(`${base}/api/v1/query?name=level`, { method: 'POST' })).status, 405);
});

test('a batch answers many queries in order, each with its own result or error', async () => {
  const { agent, base } = await agentOn(join(dir, 'batch'));
  after(() => agent.stop());
  agent.ingest('heap:5|g|#service:web,pid:1\nheap:7|g|#service:web,pid:2\nreqs:3|c|#service:web,pid:1');
  agent.flush();
  const q = (s: string) => `q=${encodeURIComponent(s)}`;
  const r = await get(
    `${base}/api/v1/batch?${q('name=heap&agg=max&by=service&from=now-5m')}&${q('name=reqs&agg=p42')}&${q('name=reqs&agg=sum&by=&from=now-5m')}`,
  );
  assert.equal(r.status, 200);
  const [a, b, c] = r.body.results as Array<Record<string, unknown>>;
  const last = (x: Record<string, unknown> | undefined) =>
    (((x?.series ?? []) as Array<{ values: Array<number | null> }>)[0]?.values ?? []).filter((v) => v !== null).at(-1);
  assert.equal(a?.name, 'heap');
  assert.equal(last(a), 7);
  assert.deepEqual(b, { error: 'agg: "p42" must be one of avg, min, max, sum, last, rate, p50, p90, p95, p99', param: 'agg' });
  assert.equal(last(c), 3);
  const none = await get(`${base}/api/v1/batch`);
  assert.equal(none.status, 400);
  assert.equal(none.body.param, 'q');
  const many = await get(`${base}/api/v1/batch?${Array.from({ length: 201 }, () => q('name=heap')).join('&')}`);
  assert.equal(many.status, 400);
  assert.match(String(many.body.error), /at most 200/);
});

test('events (a stall an app reported) are kept with their instance and listed by /api/v1/events', async () => {
  const { agent, base } = await agentOn(join(dir, 'events'));
  after(() => agent.stop());
  const title = 'event loop stalled';
  const text = 'blocked for 3017 ms at burnCpu (file:///app/server.js:6:3)';
  const ts = Math.floor(Date.now() / 1000) - 5;
  agent.ingest(`_e{${title.length},${text.length}}:${title}|${text}|d:${ts}|t:warning|#service:shop,host:h1,pid:42`);
  agent.ingest(`_e{5,5}:other|thing|#service:else,pid:7`);
  const r = await get(`${base}/api/v1/events?from=now-1m&instance=${encodeURIComponent('service=shop,host=h1,pid=42')}`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.events, [
    { t: ts, instance: 'service=shop,host=h1,pid=42', title, text, alert: 'warning', tags: { host: 'h1', pid: '42', service: 'shop' } },
  ]);
  const bySvc = await get(`${base}/api/v1/events?from=now-1m&service=else`);
  assert.deepEqual(
    (bySvc.body.events as Array<{ title: string }>).map((e) => e.title),
    ['other'],
  );
  assert.equal((await get(`${base}/api/v1/events?from=now&to=now-1h`)).status, 400);
});
