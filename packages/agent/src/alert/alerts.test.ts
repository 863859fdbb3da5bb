import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Aggregator } from '../aggregate/aggregator.js';
import { loadConfig } from '../config.js';
import type { ConfigError } from '../errors.js';
import { parsePacket } from '../ingest/statsd-parse.js';
import type { Instance, InstanceFilter, Query, QueryResult, StoreReader } from '../store/reader.js';
import { SqliteStore } from '../store/sqlite.js';
import { Alerts } from './alerts.js';
import type { Change } from './notify.js';
import { resolveRules } from './rules.js';

const dir = mkdtempSync(join(tmpdir(), 'ekg-alerts-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = (text: string) => {
  const p = join(dir, `c${++n}.yaml`);
  writeFileSync(p, text);
  return p;
};
const IV = 1000;
/** a recent epoch (ms), so times read as ms and not as seconds */
const T = 1_800_000_000_000;

/**
 * A store whose last window holds what the test says: the rules read it through `/api/v1/query`'s
 * code (handleApi), as they read the real store. Times are driven by the test, so no clock matters.
 */
class Scripted implements StoreReader {
  readonly kind = 'scripted';
  value: number | null = null;
  list: Instance[] = [];
  queries: Query[] = [];
  async instances() {
    return this.list;
  }
  async series() {
    return [{ name: 'queue.depth', tags: { service: 'shop' }, kind: 'gauge' as const }];
  }
  async query(q: Query): Promise<QueryResult> {
    this.queries.push(q);
    const step = (q.step ?? IV) / 1000;
    const t = [q.to / 1000 - 2 * step, q.to / 1000 - step, q.to / 1000];
    return { t, step, resolution: step, series: [{ tags: { service: 'shop' }, values: [null, null, this.value] }] };
  }
}

function setup(yaml: string, data = mkdtempSync(join(dir, 'data-'))) {
  const c = loadConfig(['--config', file(`flush_interval: 1s\n${yaml}`), '--store', 'off']);
  assert.ok(c !== 'help');
  const reader = new Scripted();
  const host = { reader, exporters: [] };
  const alerts = new Alerts(host, c.alerts, [], { data, window: IV, agentUrl: 'http://127.0.0.1:8787' });
  return { alerts, reader, data, rules: c.alerts };
}

const RULE = `alerts:
  - name: depth
    metric: queue.depth
    agg: max
    by: [service]
    above: 100
    for: 3s
`;

test('a threshold fires once after `for`, stays through a short dip, and resolves once after `for` below', async () => {
  const { alerts, reader } = setup(RULE);
  const changes: Change[] = [];
  const at = async (s: number, v: number | null) => {
    reader.value = v;
    changes.push(...(await alerts.evaluate(T + s * 1000, T + s * 1000 + 5)).filter((c) => c.alert === 'depth'));
  };
  await at(100, 50);
  await at(101, 150); // seen above at 101 s (the window's end)
  await at(102, 150);
  await at(103, 150);
  assert.equal(changes.length, 0, 'not before `for`');
  await at(104, 150);
  assert.deepEqual(
    changes.map((c) => [c.state, c.value, c.threshold, c.op, c.since, c.at]),
    [['firing', 150, 100, 'above', T + 101_000, T + 104_005]],
  );
  assert.equal(changes[0]?.link, '/#/service?name=shop');
  await at(105, 50); // one window under: clearing, not resolved
  await at(106, 160); // back above: still firing, no second notification
  await at(107, null); // no data: nothing changes
  await at(108, 20); // under from 108 s
  await at(109, 20);
  await at(110, 20);
  assert.equal(changes.length, 1);
  await at(111, 20);
  assert.deepEqual(
    changes.map((c) => c.state),
    ['firing', 'resolved'],
  );
  assert.equal(changes[1]?.since, T + 108_000, 'resolved: since when it has been under');
  // the query is /api/v1/query's: the rule's agg and by, one window's step, up to the window's end
  const q = reader.queries.at(-1) as Query;
  assert.deepEqual([q.name, q.agg, q.by, q.step, q.to], ['queue.depth', 'max', ['service'], IV, T + 111_000]);
});

test('the state survives a restart: a firing alert neither fires again nor is forgotten', async () => {
  const first = setup(RULE);
  first.reader.value = 500;
  await first.alerts.evaluate(T + 200_000, T + 200_000);
  const fired = await first.alerts.evaluate(T + 203_000, T + 203_000);
  assert.equal(fired.filter((c) => c.alert === 'depth').length, 1);
  await first.alerts.close();
  const again = setup(RULE, first.data);
  again.reader.value = 500;
  assert.deepEqual(await again.alerts.evaluate(T + 204_000, T + 204_000), []);
  const v = again.alerts.view() as { firing: Array<{ alert: string; since: number }>; history: Change[] };
  assert.deepEqual(
    v.firing.map((f) => [f.alert, f.since]),
    [['depth', T + 203_000]],
  );
  assert.equal(v.history.length, 1);
  again.reader.value = 1;
  await again.alerts.evaluate(T + 205_000, T + 205_000);
  const resolved = await again.alerts.evaluate(T + 208_000, T + 208_000);
  assert.deepEqual(
    resolved.map((c) => c.state),
    ['resolved'],
  );
  assert.match(again.alerts.metricLines().join('\n'), /ekg_agent_alerts_firing\{alert="depth",severity="critical"\} 0/);
});

test('instance-down learns each group interval and fires past interval × missed; a new pid of the same service resolves it', async () => {
  const { alerts, reader } = setup('');
  const inst = (pid: string, last: number): Instance => ({
    key: `service=shop,host=h,pid=${pid}`,
    service: 'shop',
    host: 'h',
    pid,
    first_seen: 0,
    last_seen: last,
    health: 'reporting',
  });
  const down: Change[] = [];
  const at = async (s: number, ...list: Instance[]) => {
    reader.list = list;
    down.push(...(await alerts.evaluate(T + s * 1000, T + s * 1000)).filter((c) => c.alert === 'instance-down'));
  };
  for (let s = 10; s <= 14; s++) await at(s, inst('1', T + s * 1000)); // reports every second
  await at(16, inst('1', T + 14_000));
  await at(17, inst('1', T + 14_000));
  assert.equal(down.length, 0, 'three missed seconds are not yet down');
  await at(18, inst('1', T + 14_000)); // silent 4 s > 1 s × 3, and for one window
  assert.deepEqual(
    down.map((c) => [c.state, c.group, c.value, c.threshold]),
    [['firing', { service: 'shop', host: 'h' }, 4, 3]],
  );
  assert.match(down[0]?.message ?? '', /no report for 4 s \(interval 1 s × 3\)/);
  await at(19, inst('1', T + 14_000), inst('2', T + 19_000));
  await at(20, inst('1', T + 14_000), inst('2', T + 20_000));
  assert.deepEqual(
    down.map((c) => c.state),
    ['firing', 'resolved'],
  );
});

test('instance-down over the SQLite store reads only the instances heard from since its last look, and fires and resolves as over a whole list', async () => {
  const store = new SqliteStore({ path: join(dir, 'down.db'), flushInterval: IV });
  after(() => store.close());
  const filters: InstanceFilter[] = [];
  const reader = Object.create(store) as SqliteStore;
  reader.listInstances = (f: InstanceFilter) => {
    filters.push(f);
    return store.listInstances(f);
  };
  const c = loadConfig(['--config', file('flush_interval: 1s\n'), '--store', 'off']);
  assert.ok(c !== 'help');
  const alerts = new Alerts({ reader, exporters: [] }, c.alerts, [], { data: mkdtempSync(join(dir, 'data-')), window: IV, agentUrl: '' });
  // real times (the store leaves out instances silent for an hour by the clock), a minute ago
  const base = Math.floor(Date.now() / 1000) * 1000 - 60_000;
  const agg = new Aggregator();
  agg.flush(base);
  const down: Change[] = [];
  const at = async (s: number, packet: string) => {
    parsePacket(packet, { sample: (x) => agg.add(x), bad: () => {} });
    store.write(agg.flush(base + s * 1000));
    down.push(...(await alerts.evaluate(base + s * 1000, base + s * 1000)).filter((x) => x.alert === 'instance-down'));
  };
  for (let s = 1; s <= 5; s++) await at(s, 'a:1|c|#service:shop,pid:1\na:1|c|#service:web,pid:2');
  for (let s = 6; s <= 8; s++) await at(s, 'a:1|c|#service:web,pid:2');
  assert.equal(down.length, 0, 'three missed seconds are not yet down');
  await at(9, 'a:1|c|#service:web,pid:2'); // shop silent 4 s > 1 s × 3
  assert.deepEqual(
    down.map((x) => [x.state, x.group, x.value, x.threshold]),
    [['firing', { service: 'shop' }, 4, 3]],
  );
  await at(10, 'a:1|c|#service:shop,pid:3'); // a new pid of shop: reporting again
  await at(11, 'a:1|c|#service:shop,pid:3\na:1|c|#service:web,pid:2');
  assert.deepEqual(
    down.map((x) => [x.state, x.group]),
    [
      ['firing', { service: 'shop' }],
      ['resolved', { service: 'shop' }],
    ],
  );
  // the whole list once, then what changed since the latest row read
  const since = filters.filter((f) => !f.probed).map((f) => f.seenSince);
  assert.deepEqual(
    since,
    Array.from({ length: 11 }, (_, i) => (i === 0 ? undefined : base + i * 1000 + 1)),
  );
});

test('a stall fires as it arrives, names the function, and resolves after `for` without another', async () => {
  const { alerts } = setup('alerts:\n  - name: event-loop-stall\n    for: 5s\n');
  const stall = (ts: number) =>
    alerts.event({ title: 'event loop stalled', text: 'blocked for 3004 ms at burnCpu (/app.mjs:3:9)', ts, tags: 'pid:7,service:shop' });
  stall(T / 1000 + 300);
  const fired = await alerts.evaluate(T + 301_000, T + 301_000);
  assert.deepEqual(
    fired.map((c) => [c.alert, c.state, c.value, c.group, c.severity]),
    [['event-loop-stall', 'firing', 3004, { pid: '7', service: 'shop' }, 'warning']],
  );
  assert.match(fired[0]?.message ?? '', /at burnCpu \(/);
  assert.equal(fired[0]?.link, `/#/instance?key=${encodeURIComponent('service=shop,pid=7')}`);
  stall(T / 1000 + 303); // another: the quiet period starts again
  assert.deepEqual(await alerts.evaluate(T + 304_000, T + 304_000), []);
  assert.deepEqual(await alerts.evaluate(T + 307_000, T + 307_000), []);
  assert.deepEqual(
    (await alerts.evaluate(T + 308_000, T + 308_000)).map((c) => c.state),
    ['resolved'],
  );
});

test('renotify repeats a firing alert at its interval', async () => {
  const { alerts, reader } = setup(RULE.replace('for: 3s', 'for: 1s\n    renotify: 2s'));
  reader.value = 999;
  const got: Change[] = [];
  for (let s = 400; s <= 405; s++) got.push(...(await alerts.evaluate(T + s * 1000, T + s * 1000)));
  assert.deepEqual(
    got.map((c) => [(c.at - T) / 1000, c.renotify]),
    [
      [401, 0],
      [403, 1],
      [405, 2],
    ],
  );
});

test('bad rules are refused at start, naming the file, the line and the field', () => {
  const bad = (yaml: string, re: RegExp) => assert.throws(() => loadConfig(['--config', file(yaml)]), re);
  bad(
    'alerts:\n  - name: x\n    metric: m\n    above: 1\n    below: 2\n',
    /c\d+\.yaml:5: field "alerts\[0\]\.below": a rule takes above or below, not both/,
  );
  bad(
    'flush_interval: 10s\nalerts:\n  - name: x\n    metric: m\n    above: 1\n    for: 5s\n',
    /c\d+\.yaml:6: field "for" of alert x: 5000 ms is shorter than the window \(10000 ms\)/,
  );
  bad(
    'alerts:\n  - name: x\n    metric: m\n    kind: meter\n    above: 1\n',
    /c\d+\.yaml:4: field "alerts\[0\]\.kind": unknown metric kind "meter"/,
  );
  bad(
    'notify:\n  - type: pagerduty\n    url: http://x/\n',
    /c\d+\.yaml:2: field "notify\[0\]\.type": unknown notifier type "pagerduty"; known: webhook, slack, mackerel/,
  );
  bad(
    'alerts:\n  - name: x\n    metric: m\n    agg: median\n    above: 1\n',
    /c\d+\.yaml:4: field "alerts\[0\]\.agg": "median" must be one of/,
  );
  bad('alerts:\n  - name: x\n    metric: m\n', /c\d+\.yaml:2: field "alerts\[0\]\.above" or "alerts\[0\]\.below" is missing/);
  bad(
    'alerts:\n  - name: x\n    metric: m\n    above: 1\n    for: soon\n',
    /c\d+\.yaml:5: field "alerts\[0\]\.for": "soon" is not a duration/,
  );
  bad(
    'alerts:\n  - name: instance-down\n    metric: m\n',
    /c\d+\.yaml:3: unknown field "alerts\[0\]\.metric" for the built-in rule instance-down/,
  );
  bad(
    'notify:\n  - type: mackerel\n    api_key: abc\n    host_id: h\n',
    /c\d+\.yaml:3: field "notify\[0\]\.api_key": secrets are not read from the file/,
  );
  bad('notify:\n  - type: mackerel\n', /c\d+\.yaml:2: field "notify\[0\]\.host_id" is missing/);
  bad(
    'alerts:\n  - name: x\n    metric: m\n    above: 1\n    severity: page\n',
    /c\d+\.yaml:5: field "alerts\[0\]\.severity": "page" must be critical or warning/,
  );
});

test('an unknown field of a rule or a notifier has the code of every unknown YAML key', () => {
  const codeOf = (yaml: string) => {
    try {
      loadConfig(['--config', file(yaml)]);
    } catch (err) {
      return (err as ConfigError).code;
    }
    return 'accepted';
  };
  const exporter = codeOf('exporters:\n  - type: heroku\n    url: http://x/\n    every: 1s\n');
  assert.equal(exporter, 'EKG_AGENT_ERR_UNKNOWN_OPTION');
  assert.equal(codeOf('alerts:\n  - name: x\n    metric: m\n    above: 1\n    every: 1s\n'), exporter);
  assert.equal(codeOf('alerts:\n  - name: instance-down\n    metric: m\n'), exporter);
  assert.equal(codeOf('notify:\n  - type: webhook\n    url: http://x/\n    every: 1s\n'), exporter);
});

test("a notifier's URL is checked as an exporter's is: the same answer for each bad URL", () => {
  const refusal = (yaml: string): string => {
    try {
      loadConfig(['--config', file(yaml)]);
    } catch (err) {
      // the part after the field's name: what is wrong and the forms
      return (err as Error).message.replace(/^.*?field "[^"]+": /, '');
    }
    return 'accepted';
  };
  for (const u of ['ftp://x/hook', 'not a url', 'x.example.com/hook']) {
    const exporter = refusal(`exporters:\n  - type: heroku\n    url: ${u}\n`);
    assert.notEqual(exporter, 'accepted', u);
    assert.equal(refusal(`notify:\n  - type: webhook\n    url: ${u}\n`), exporter, u);
    assert.equal(refusal(`notify:\n  - type: slack\n    url: https://hooks.example.com/x\n    dashboard_url: ${u}\n`), exporter, u);
  }
});

test('built-ins are on by default, and a rule of the same name overrides or disables one', () => {
  const r = resolveRules([], 1000);
  assert.deepEqual(
    r.map((x) => [x.name, x.enabled, x.severity]),
    [
      ['instance-down', true, 'critical'],
      ['heartbeat-failing', true, 'critical'],
      ['event-loop-stall', true, 'warning'],
      ['agent-store', true, 'critical'],
      ['agent-exporter', true, 'warning'],
    ],
  );
  const c = loadConfig([
    '--config',
    file('alerts:\n  - name: instance-down\n    missed: 5\n    severity: warning\n  - name: agent-exporter\n    enabled: false\n'),
  ]);
  assert.ok(c !== 'help');
  const down = c.alerts.find((x) => x.name === 'instance-down');
  assert.deepEqual([down?.missed, down?.severity, down?.source], [5, 'warning', `config ${join(dir, `c${n}.yaml`)}:2`]);
  assert.equal(c.alerts.find((x) => x.name === 'agent-exporter')?.enabled, false);
});

test("the agent's own parts: a store that cannot write and an exporter that cannot send fire, and resolve when they recover", async () => {
  const store = { status: { ok: true as boolean, error: undefined as string | undefined } };
  const ex = {
    name: 'remote_write vm:8428',
    status: {
      batches_sent: 0,
      samples_sent: 0,
      failures: 0,
      batches_rejected: 0,
      batches_dropped: 0,
      queued: 0,
      queued_bytes: 0,
    } as import('../export/exporter.js').ExporterStatus,
  };
  const c = loadConfig(['--config', file('flush_interval: 1s\nalerts:\n  - name: agent-exporter\n    for: 2s\n'), '--store', 'off']);
  assert.ok(c !== 'help');
  const alerts = new Alerts({ reader: undefined, store, exporters: [ex] }, c.alerts, [], {
    data: mkdtempSync(join(dir, 'data-')),
    window: IV,
    agentUrl: '',
  });
  const at = async (s: number) => (await alerts.evaluate(T + s * 1000, T + s * 1000)).map((x) => [x.alert, x.state, x.group, x.message]);
  assert.deepEqual(await at(1), []);
  store.status = { ok: false, error: 'SQLITE_FULL: database or disk is full' };
  ex.status.last_error = 'ECONNREFUSED';
  ex.status.queued = 4;
  assert.deepEqual(await at(2), [], 'a status read once is pending for `for`');
  assert.deepEqual(await at(3), [['agent-store', 'firing', {}, 'the store cannot write: SQLITE_FULL: database or disk is full']]);
  assert.deepEqual(await at(4), [
    ['agent-exporter', 'firing', { exporter: 'remote_write vm:8428' }, 'cannot send (ECONNREFUSED); 4 batches wait in the spool'],
  ]);
  store.status = { ok: true, error: undefined };
  ex.status.last_error = undefined;
  ex.status.queued = 0;
  assert.deepEqual(await at(5), []);
  assert.deepEqual(
    (await at(6)).map((x) => x.slice(0, 2)),
    [['agent-store', 'resolved']],
  );
  assert.deepEqual(
    (await at(7)).map((x) => x.slice(0, 2)),
    [['agent-exporter', 'resolved']],
  );
  // rules that need a store say why they cannot run
  const v = alerts.view();
  assert.match(v.rules.find((r) => r.name === 'instance-down')?.error ?? '', /no store/);
});

test('a rule holds at most MAX_GROUPS groups; the rest are counted, not kept', async () => {
  const { alerts, reader } = setup(RULE.replace('by: [service]', 'by: [id]'));
  const many = 10_005;
  reader.query = async (q: Query) => ({
    t: [q.to / 1000],
    step: 1,
    resolution: 1,
    series: Array.from({ length: many }, (_, i) => ({ tags: { id: String(i) }, values: [500] })),
  });
  await alerts.evaluate(T + 500_000, T + 500_000);
  const r = alerts.view().rules.find((x) => x.name === 'depth');
  assert.equal(r?.groups.length, 10_000);
  assert.equal(r?.groups_dropped, 5);
});

test('docs/agent-alerts.md: every YAML example loads as typed', () => {
  const doc = readFileSync(new URL('../../../../docs/agent-alerts.md', import.meta.url), 'utf8');
  const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  assert.ok(blocks.length >= 3);
  for (const b of blocks) {
    const c = loadConfig(['--config', file(b)]);
    assert.ok(c !== 'help');
    assert.ok(c.alerts.length >= 5, b);
  }
});

test('below, with a tag filter: the query carries the tags; a value under the threshold fires', async () => {
  const { alerts, reader } = setup(
    'alerts:\n  - name: throughput\n    metric: queue.depth\n    tags: {service: shop, region: "*"}\n    by: []\n    below: 10\n    severity: warning\n',
  );
  reader.value = 3;
  assert.deepEqual(await alerts.evaluate(T + 600_000, T + 600_000), [], 'the default `for` is one window: seen at 600 s, held at 601 s');
  const c = await alerts.evaluate(T + 601_000, T + 601_000);
  assert.deepEqual(
    c.filter((x) => x.alert === 'throughput').map((x) => [x.state, x.value, x.threshold, x.op, x.severity, x.message]),
    [['firing', 3, 10, 'below', 'warning', 'queue.depth avg 3 below 10']],
  );
  const q = reader.queries.at(-1) as Query;
  assert.deepEqual([q.tags, q.by, q.agg], [{ service: 'shop', region: '*' }, [], 'avg']);
});

test('stall events past MAX_STALLS before an evaluation are counted, not kept', async () => {
  const { alerts } = setup('');
  for (let i = 0; i < 10_003; i++) alerts.event({ title: 'event loop stalled', text: 'blocked for 200 ms', tags: 'service:a,pid:1' });
  alerts.event({ title: 'deploy', text: 'not a stall', tags: '' });
  assert.equal(alerts.view().stalls_dropped, 3);
});
