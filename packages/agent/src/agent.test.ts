import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { createEkg } from 'ekg-vitals';
import StatsD from 'hot-shots';
import { Agent } from './agent.js';
import type { FlushResult } from './aggregate/aggregator.js';
import { loadConfig } from './config.js';

let agent: Agent;
const windows: FlushResult[] = [];
let http = '';
let udpPort = 0;
let tcpPort = 0;

before(async () => {
  const config = loadConfig(['--statsd', '127.0.0.1:0', '--http', '127.0.0.1:0', '--flush-interval', '1h', '--store', 'off']);
  assert.notEqual(config, 'help');
  agent = new Agent(config as Exclude<typeof config, 'help'>, [{ name: 'test', write: (w) => void windows.push(w) }]);
  // no timer: its 1 h windows are aligned to the clock, so at the top of the hour it would close a
  // window in the middle of a test; every test closes its own with flush()
  await agent.start({ timer: false });
  const a = agent.addresses();
  udpPort = a.udp as number;
  tcpPort = a.tcp as number;
  http = `http://127.0.0.1:${a.http}`;
});
after(() => agent.stop());

// the bound is for a failure, not the expected wait
const until = async (fn: () => boolean, ms = 60_000) => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('hot-shots (the most used Node StatsD client) over UDP: counters, gauges, timers, sets, tags', async () => {
  const client = new StatsD({ host: '127.0.0.1', port: udpPort, prefix: 'hs.', globalTags: { env: 'test' } });
  const before = agent.self.metrics_received;
  client.increment('requests', 3);
  client.increment('requests');
  client.gauge('queue', 12);
  client.timing('latency', 40);
  client.timing('latency', 60);
  client.set('users', 'u1');
  client.set('users', 'u2');
  client.set('users', 'u1');
  client.distribution('size', 1024, { kind: 'upload' });
  await until(() => agent.self.metrics_received - before >= 9);
  await new Promise<void>((r) => client.close(() => r()));
  const w = agent.flush();
  const by = (name: string) => w.series.find((s) => s.name === name);
  assert.equal(by('hs.requests')?.value, 4);
  assert.equal(by('hs.requests')?.tags, 'env:test');
  assert.equal(by('hs.queue')?.value, 12);
  assert.equal(by('hs.latency')?.count, 2);
  assert.equal(by('hs.latency')?.max, 60);
  assert.equal(by('hs.users')?.value, 2);
  assert.equal(by('hs.size')?.tags, 'env:test,kind:upload');
  assert.equal(agent.self.bad_lines, 0, agent.self.last_bad_lines.join('\n'));
});

test("ekg's own reporter, over UDP and TCP, arrives as tagged series", async () => {
  const ekg = createEkg({
    signals: false,
    labels: { service: 'api' },
    report: { statsd: [`udp://127.0.0.1:${udpPort}`, `tcp://127.0.0.1:${tcpPort}`] },
  });
  try {
    const before = agent.self.metrics_received;
    await ekg.flush();
    await until(() => agent.self.metrics_received - before > 100);
    const w = agent.flush();
    const rss = w.series.filter((s) => s.name === 'runtime.memory.rss');
    assert.equal(rss.length, 1, 'UDP and TCP copies land in the same series');
    assert.match(rss[0]?.tags ?? '', /^host:[^,]+,pid:\d+,service:api$/);
    assert.ok((rss[0]?.value ?? 0) > 1e7);
    const gc = w.series.find((s) => s.name === 'runtime.gc.count');
    assert.equal(gc?.kind, 'counter');
    assert.equal(agent.self.bad_lines, 0, agent.self.last_bad_lines.join('\n'));
  } finally {
    await ekg.close();
  }
});

test('a bad line is counted by reason, visible to the operator, and never stops its packet', async () => {
  const sock = dgram.createSocket('udp4');
  const before = agent.self.bad_lines;
  sock.send('good.one:1|c\nbroken|c\ngood.two:2|c\nx:1|zz', udpPort, '127.0.0.1');
  await until(() => agent.self.bad_lines - before === 2);
  sock.close();
  const self = (await (await fetch(`${http}/api/v1/self`)).json()) as Record<string, unknown>;
  for (const k of ['packets_received', 'metrics_received', 'bad_lines', 'series_active']) assert.equal(typeof self[k], 'number', k);
  assert.ok(((self.bad_lines_by_reason as Record<string, number>).no_value ?? 0) >= 1);
  assert.ok((self.last_bad_lines as string[]).some((l) => l === 'bad_type: x:1|zz'));
  const w = agent.flush();
  assert.ok(w.series.some((s) => s.name === 'good.two'));
});

test('TCP: a line split across chunks is joined', async () => {
  const s = net.connect(tcpPort, '127.0.0.1');
  await new Promise((r) => s.once('connect', r));
  const before = agent.self.metrics_received;
  s.write('split.me:');
  await new Promise((r) => setTimeout(r, 30));
  s.write('5|c\n');
  await until(() => agent.self.metrics_received > before);
  s.end();
  assert.equal(agent.flush().series.find((x) => x.name === 'split.me')?.value, 5);
});

test('POST /v1/push: the Heroku JSON shape, identity from headers or query; 400 naming the field; 413', async () => {
  const body = JSON.stringify({ counters: { 'node.gc.collections': 3 }, gauges: { 'node.eventloop.delay.ms.p99': 4.5 } });
  const ok = await fetch(`${http}/v1/push?service=web&instance=web.1`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(ok.status, 202);
  assert.deepEqual(await ok.json(), { accepted: 2 });
  const w = agent.flush();
  const gc = w.series.find((s) => s.name === 'node.gc.collections');
  assert.equal(gc?.tags, 'instance:web.1,service:web');
  assert.equal(gc?.value, 3);
  for (const [bad, field] of [
    ['{"counters":{"a":"7"}}', '"counters.a" must be a finite number'],
    ['{"gauges":[]}', '"gauges" must be an object'],
    ['{"counters":{},"extra":1}', 'unknown field "extra"'],
    ['not json', 'body is not JSON'],
  ] as const) {
    const r = await fetch(`${http}/v1/push`, { method: 'POST', body: bad });
    assert.equal(r.status, 400, bad);
    assert.match(((await r.json()) as { error: string }).error, new RegExp(field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  }
  const big = await fetch(`${http}/v1/push`, { method: 'POST', body: 'x'.repeat((1 << 20) + 10) }).catch((e: Error) => e);
  if (!(big instanceof Error)) assert.equal(big.status, 413);
  assert.equal((await fetch(`${http}/v1/push`)).status, 405);
});

test('/metrics: the agent itself and the last window, in Prometheus text', async () => {
  const sock = dgram.createSocket('udp4');
  const before = agent.self.metrics_received;
  sock.send('m.count:2|c|#k:v\nm.level:7|g\nm.lat:5|ms\nm.lat:15|ms', udpPort, '127.0.0.1');
  await until(() => agent.self.metrics_received - before === 4);
  sock.close();
  agent.flush();
  const text = await (await fetch(`${http}/metrics`)).text();
  assert.match(text, /^ekg_agent_metrics_received_total \d+$/m);
  assert.match(text, /^m_count_total\{k="v"\} 2$/m);
  assert.match(text, /^m_level 7$/m);
  assert.match(text, /^m_lat\{quantile="0.99"\} 15$/m);
  assert.match(text, /^m_lat_count 2$/m);
  assert.equal((await fetch(`${http}/heartbeat`)).status, 200);
});

test('config: flags win over env, bad values name the field', () => {
  const c = loadConfig(['--http', '0.0.0.0:9000'], { EKG_AGENT_HTTP: '1.2.3.4:1', EKG_AGENT_FLUSH_INTERVAL: '5s' });
  assert.ok(c !== 'help');
  assert.deepEqual(c.http, { host: '0.0.0.0', port: 9000 });
  assert.equal(c.flushInterval, 5000);
  assert.throws(() => loadConfig(['--flush-interval', 'soon']), /flush-interval: "soon" is not a duration/);
  assert.throws(() => loadConfig(['--statsd', 'x:y']), /statsd: "x:y" is not \[HOST:\]PORT/);
  assert.throws(() => loadConfig(['--nope']), /unknown option --nope/);
  assert.equal(loadConfig(['--help']), 'help');
  assert.equal(windows.length > 0, true, 'the sink received windows');
});
