import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Agent } from '../agent.js';
import { loadConfig } from '../config.js';
import { QueryBudget } from '../store/budget.js';
import { compileGlob } from '../store/reader.js';
import { API_PARAMS, handleApi, newApiCounters } from './api.js';

const dir = mkdtempSync(join(tmpdir(), 'ekg-api-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function agentOn(data: string, ...flags: string[]): Promise<{ agent: Agent; base: string }> {
  const c = loadConfig([
    '--statsd',
    'off',
    '--http',
    '127.0.0.1:0',
    '--flush-interval',
    '1s',
    '--data',
    data,
    '--console',
    'off',
    ...flags,
  ]);
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
    ['/api/v1/series?limit=10001', 'limit'],
    // an unknown parameter is not ignored (this one used to give the default avg)
    ['/api/v1/query?name=level&aggregation=max', 'aggregation'],
    ['/api/v1/query?name=level&agg=max&agg=min', 'agg'],
    ['/api/v1/series?glob=*', 'glob'],
    ['/api/v1/instances?x=1', 'x'],
    ['/api/v1/events?from=now-1h&limit=5', 'limit'],
    // junk durations and times: numbers past any date or step
    [`/api/v1/query?name=level&step=${'9'.repeat(400)}`, 'step'],
    ['/api/v1/query?name=level&step=1e9', 'step'],
    ['/api/v1/query?name=level&step=400d', 'step'],
    ['/api/v1/query?name=level&from=-99999999999999999999999d', 'from'],
    [`/api/v1/query?name=level&from=${'9'.repeat(30)}`, 'from'],
    ['/api/v1/query?name=level&to=-1h&from=-1e3d', 'from'],
    [`/api/v1/series?match=${'*a'.repeat(200)}`, 'match'],
  ];
  for (const [path, param] of cases) {
    const r = await get(`${base}${path}`);
    assert.equal(r.status, 400, path);
    assert.equal(r.body.param, param, `${path}: ${r.body.error}`);
    assert.match(String(r.body.error), new RegExp(`^${param}: `));
  }
  // the meanings kept: relative times, epoch seconds and ms, ISO dates, steps with or without a unit
  for (const ok of [
    'from=now-90s',
    'from=-2m&to=now',
    `from=${Math.floor(Date.now() / 1000) - 60}`,
    `from=${Date.now() - 60_000}&step=5000`,
    `from=${new Date(Date.now() - 60_000).toISOString()}&step=10s`,
  ])
    assert.equal((await get(`${base}/api/v1/query?name=level&${ok}`)).status, 200, ok);
  const inBatch = await get(`${base}/api/v1/batch?q=${encodeURIComponent('name=level&aggregation=max')}`);
  assert.deepEqual((inBatch.body.results as unknown[])[0], {
    error: 'aggregation: unknown parameter in q; it takes name, tags, from, to, step, agg, by (docs/agent-api.md)',
    param: 'aggregation',
  });
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
  assert.deepEqual(b, { error: 'agg: "p42" must be one of avg, min, max, sum, last, rate, p50, p90, p95, p99, p999', param: 'agg' });
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

test('a query over the points budget (series × steps, counted before reading) is a 413 naming it; a batch shares one budget', async () => {
  const { agent, base } = await agentOn(join(dir, 'budget'), '--query-max-points', '1000');
  after(() => agent.stop());
  agent.ingest(Array.from({ length: 100 }, (_, i) => `wide:${i}|g|#pid:${i}`).join('\n'));
  agent.flush();
  // 100 series × 61 steps: over 1000 points, however they are grouped
  for (const by of ['', '&by=']) {
    const r = await get(`${base}/api/v1/query?name=wide&agg=sum&from=now-1m&step=1s${by}`);
    assert.equal(r.status, 413);
    assert.equal(r.body.budget, 'query_max_points');
    assert.equal(r.body.limit, 1000);
    assert.match(String(r.body.error), /^query_max_points: 100 series × 6[01] steps = 6[01]00 points; the budget is 1000 points/);
  }
  // within it: 100 series × 7 steps
  assert.equal((await get(`${base}/api/v1/query?name=wide&agg=sum&by=&from=now-1m&step=10s`)).status, 200);
  // a batch: the first query takes 700 of the 1000 points, the second would take 700 more
  const q = `q=${encodeURIComponent('name=wide&agg=sum&by=&from=now-1m&step=10s')}`;
  const b = await get(`${base}/api/v1/batch?${q}&${q}`);
  assert.equal(b.status, 200);
  const [first, second] = b.body.results as Array<Record<string, unknown>>;
  assert.ok(Array.isArray(first?.series));
  assert.equal(second?.budget, 'query_max_points');
  assert.equal(second?.status, 413);
  const self = (await get(`${base}/api/v1/self`)).body;
  assert.equal(self.queries_over_points, 3);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /^ekg_agent_queries_refused_total\{budget="query_max_points"\} 3$/m);
  assert.match(metrics, /^ekg_agent_queries_refused_total\{budget="query_timeout"\} 0$/m);
});

test('a request past its time budget is stopped with a 503 naming it', async () => {
  const { agent } = await agentOn(join(dir, 'time'));
  after(() => agent.stop());
  agent.ingest(Array.from({ length: 10 }, (_, i) => `slow:${i}|g|#pid:${i}`).join('\n'));
  agent.flush();
  const counters = newApiCounters();
  // a request that started 5 s ago with 1 s to run: the store stops it at its first series
  const now = Date.now();
  const params = new URLSearchParams({ name: 'slow', agg: 'max', from: String(now - 60_000), to: String(now) });
  const reader = agent.reader as NonNullable<Agent['reader']>;
  const limits = { queryMaxPoints: 1_000_000, queryTimeout: 1000 };
  const [status, body] = await handleApi(reader, '/api/v1/query', params, now, { ...limits, started: now - 5000 }, counters);
  assert.equal(status, 503);
  assert.deepEqual(
    { budget: (body as Record<string, unknown>).budget, limit: (body as Record<string, unknown>).limit },
    { budget: 'query_timeout', limit: 1000 },
  );
  assert.equal(counters.queries_over_time, 1);
  assert.equal((await handleApi(reader, '/api/v1/query', params, now, limits, counters))[0], 200);
  // the budget itself, at its edges
  const b = new QueryBudget(10, 100, 0);
  b.check(100);
  assert.throws(() => b.check(101), /query_timeout/);
  b.take(2, 5);
  assert.throws(() => b.take(1, 1), /after 10 already read/);
});

test('/api/v1/series caps its answer and says so; a glob never backtracks', { timeout: 60_000 }, async () => {
  const { agent, base } = await agentOn(join(dir, 'glob'));
  after(() => agent.stop());
  // a long name planted over StatsD: with a RegExp per glob, *a*a*a*a*a*b over it ran for minutes
  agent.ingest(`${'a'.repeat(200)}:1|c\nab.c:1|c\nab.d:1|c\nabc:1|c`);
  agent.flush();
  const slow = await get(`${base}/api/v1/series?match=*a*a*a*a*a*b`);
  assert.equal(slow.status, 200);
  assert.deepEqual(slow.body.series, []);
  assert.equal((await get(`${base}/api/v1/series?match=*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a`)).status, 200);
  const cut = await get(`${base}/api/v1/series?match=ab*&limit=2`);
  assert.deepEqual(
    (cut.body.series as Array<{ name: string }>).map((s) => s.name),
    ['ab.c', 'ab.d'],
  );
  assert.equal(cut.body.truncated, true);
  assert.equal((await get(`${base}/api/v1/series?match=ab*&limit=3`)).body.truncated, undefined);
  assert.equal((await get(`${base}/api/v1/self`)).body.series_truncated, 1);
});

test('the glob matcher agrees with the regular expression it replaced', () => {
  const reference = (glob: string) =>
    new RegExp(
      `^${glob
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
    );
  // a fixed pseudo-random sequence over a small alphabet, so that matches are frequent
  let seed = 42;
  const rnd = (k: number) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed % k;
  };
  const word = (alphabet: string, max: number) => Array.from({ length: rnd(max) }, () => alphabet[rnd(alphabet.length)]).join('');
  let matches = 0;
  for (let i = 0; i < 20_000; i++) {
    const glob = word('ab.*?', 7);
    const name = word('ab.', 9);
    const want = reference(glob).test(name);
    assert.equal(compileGlob(glob).test(name), want, `${glob} ~ ${name}`);
    if (want) matches++;
  }
  assert.ok(matches > 1000, `${matches}`);
  assert.equal(compileGlob('runtime.*').source, '^runtime\\..*$');
});

test('a series listing counts the series it examines against the points budget: a name reads its own series only, a glob every name', async () => {
  const { agent, base } = await agentOn(join(dir, 'examine'), '--query-max-points', '1000');
  after(() => agent.stop());
  agent.ingest(Array.from({ length: 5000 }, (_, i) => `big:1|g|#pid:${i}`).join('\n'));
  agent.ingest(Array.from({ length: 10 }, (_, i) => `small:1|g|#pid:${i}`).join('\n'));
  agent.flush();
  // 10 series examined of the 5,010 the store holds: within 1,000
  const one = await get(`${base}/api/v1/series?match=small&tags=pid:3`);
  assert.equal(one.status, 200);
  assert.deepEqual(
    (one.body.series as Array<{ name: string; tags: unknown }>).map((s) => [s.name, s.tags]),
    [['small', { pid: '3' }]],
  );
  // a glob tests two names, then reads small's ten series
  assert.equal(((await get(`${base}/api/v1/series?match=s*`)).body.series as unknown[]).length, 10);
  // big's 5,000 series, by name or by glob: over the budget, refused naming it
  for (const q of ['match=big&tags=pid:5', 'match=b*&tags=pid:5', 'match=*']) {
    const r = await get(`${base}/api/v1/series?${q}`);
    assert.equal(r.status, 413, q);
    assert.equal(r.body.budget, 'query_max_points', q);
    assert.equal(r.body.limit, 1000, q);
    assert.match(
      String(r.body.error),
      /^query_max_points: the series listing examined \d+ series, one point each; the budget is 1000 points/,
      q,
    );
  }
  assert.equal((await get(`${base}/api/v1/self`)).body.queries_over_points, 3);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /^ekg_agent_queries_refused_total\{budget="query_max_points"\} 3$/m);
});

test('a big listing within the budget answers in name and tag order, filtered by tags', async () => {
  const { agent, base } = await agentOn(join(dir, 'order'));
  after(() => agent.stop());
  agent.ingest(Array.from({ length: 3000 }, (_, i) => `m.big:1|g|#pid:${i}`).join('\n'));
  agent.ingest('m.a:1|g|#pid:5\nm.z:1|c|#pid:5,host:h\nm.z:1|c|#pid:50');
  agent.flush();
  const r = await get(`${base}/api/v1/series?match=m.*&tags=pid:5`);
  assert.equal(r.status, 200);
  assert.deepEqual(
    (r.body.series as Array<{ name: string; tags: unknown; kind: string }>).map((s) => [s.name, s.tags, s.kind]),
    [
      ['m.a', { pid: '5' }, 'gauge'],
      ['m.big', { pid: '5' }, 'gauge'],
      ['m.z', { host: 'h', pid: '5' }, 'counter'],
    ],
  );
  const first = await get(`${base}/api/v1/series?match=m.big&limit=3`);
  assert.deepEqual(
    (first.body.series as Array<{ tags: { pid: string } }>).map((s) => s.tags.pid),
    ['0', '1', '10'],
  );
  assert.equal(first.body.truncated, true);
});

test('/api/v1/instances answers at most `limit` (1,000 by default) with the total, filtered by service or instance', async () => {
  const { agent, base } = await agentOn(join(dir, 'instances'));
  after(() => agent.stop());
  agent.ingest(Array.from({ length: 30 }, (_, i) => `up.x:1|g|#service:${i % 3 ? 'a' : 'b'},pid:${i}`).join('\n'));
  // a service whose name starts with another's, and an instance of no service
  agent.ingest('up.x:1|g|#service:ab,pid:99\nup.x:1|g|#pid:98');
  agent.flush();
  const all = await get(`${base}/api/v1/instances`);
  assert.equal(all.status, 200);
  assert.equal((all.body.instances as unknown[]).length, 32);
  assert.equal(all.body.total, 32);
  assert.equal(all.body.truncated, undefined);
  const cut = await get(`${base}/api/v1/instances?limit=10`);
  assert.equal((cut.body.instances as unknown[]).length, 10);
  assert.equal(cut.body.total, 32);
  assert.equal((await get(`${base}/api/v1/instances?service=a&limit=1`)).body.total, 20);
  assert.equal(cut.body.truncated, true);
  const b = await get(`${base}/api/v1/instances?service=b&limit=5`);
  assert.deepEqual(
    (b.body.instances as Array<{ service: string }>).map((i) => i.service),
    ['b', 'b', 'b', 'b', 'b'],
  );
  assert.equal(b.body.total, 10);
  const one = await get(`${base}/api/v1/instances?instance=${encodeURIComponent('service=a,pid=7')}`);
  assert.deepEqual(
    (one.body.instances as Array<{ key: string }>).map((i) => i.key),
    ['service=a,pid=7'],
  );
  for (const bad of ['0', '10001', 'x']) {
    const r = await get(`${base}/api/v1/instances?limit=${bad}`);
    assert.equal(r.status, 400, bad);
    assert.equal(r.body.param, 'limit');
  }
  const self = (await get(`${base}/api/v1/self`)).body;
  assert.equal(self.instances_truncated, 3);
  assert.match(await (await fetch(`${base}/metrics`)).text(), /^ekg_agent_instances_truncated_total 3$/m);
});

test("docs/agent-api.md's table of parameters is the API's own (API_PARAMS)", () => {
  const page = readFileSync(new URL('../../../../docs/agent-api.md', import.meta.url), 'utf8');
  for (const [path, params] of Object.entries(API_PARAMS)) {
    const row = new RegExp(`^\\| \`${path.replace(/\//g, '\\/')}\`[^|]*\\| ([^|]+) \\|$`, 'm').exec(page);
    assert.ok(row, `docs/agent-api.md has no row for ${path}`);
    const documented = [...(row[1] as string).matchAll(/`([a-z_]+)`/g)].map((m) => m[1]);
    assert.deepEqual(documented, params.length ? [...params] : [], path);
  }
});

test('a query that meets SQLITE_BUSY is answered 503 with Retry-After, not 500, and served on the next ask', {
  timeout: 30_000,
}, async () => {
  const { agent, base } = await agentOn(join(dir, 'busy'));
  try {
    agent.ingest('runtime.eventloop.delay.p99:12|g|#service:web,host:h1,pid:7');
    agent.flush();
    const url = `${base}/api/v1/query?name=runtime.eventloop.delay.p99&from=now-1h&step=1m&agg=max`;
    assert.equal((await get(url)).status, 200);
    // the store's connection never waits on SQLite's locks (busy_timeout 0): a read that meets one (another
    // process recovering the WAL index, a backup in exclusive mode) raises SQLITE_BUSY, as here once
    const reader = agent.reader as NonNullable<typeof agent.reader>;
    const query = reader.query;
    reader.query = () => {
      reader.query = query;
      throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
    };
    const locked = await fetch(url);
    assert.equal(locked.status, 503);
    assert.equal(locked.headers.get('retry-after'), '1');
    assert.match(((await locked.json()) as { error: string }).error, /store is busy/);
    const self = (await get(`${base}/api/v1/self`)).body as { queries_store_busy?: number; http_errors?: number };
    assert.equal(self.queries_store_busy, 1);
    assert.equal(self.http_errors, 0, 'not counted as a failure of the agent');
    assert.match(await (await fetch(`${base}/metrics`)).text(), /^ekg_agent_queries_store_busy_total 1$/m);
    assert.equal((await get(url)).status, 200);
  } finally {
    await agent.stop();
  }
});
