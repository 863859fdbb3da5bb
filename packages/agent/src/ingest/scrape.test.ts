import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createEkg } from 'ekg-vitals';
import { Agent } from '../agent.js';
import { Aggregator } from '../aggregate/aggregator.js';
import { loadConfig } from '../config.js';
import type { Sample } from '../model/sample.js';
import { flattenJson, MAX_SCRAPE_SAMPLES, parsePrometheus, Scraper, targetOf } from './scrape.js';

test('flattening /stats JSON and parsing Prometheus text', () => {
  const s = flattenJson({ runtime: { memory: { rss: 5 }, ok: true, name: 'x' }, list: [1, 2] }, 'target:t');
  assert.deepEqual(
    s.map((x) => [x.name, x.value]),
    [
      ['runtime.memory.rss', 5],
      ['runtime.ok', 1],
      ['list.0', 1],
      ['list.1', 2],
    ],
  );
  const prev = new Map<string, number>();
  const text = (n: number) => `# TYPE req_total counter\nreq_total{code="200"} ${n}\n# TYPE temp gauge\ntemp 21.5\nthis is not a sample\n`;
  const first = parsePrometheus(text(10), 'target:t', prev);
  assert.deepEqual(
    first.samples.map((x) => [x.name, x.type, x.value]),
    [['temp', 'g', 21.5]],
    'a counter needs a baseline first',
  );
  assert.equal(first.bad, 1);
  const second = parsePrometheus(text(17), 'target:t', prev);
  assert.deepEqual(second.samples[0], { name: 'req_total', tags: 'code:200,target:t', type: 'c', value: 7, weight: 1 });
  const reset = parsePrometheus(text(3), 'target:t', prev);
  assert.equal(reset.samples[0]?.value, 3, 'a counter reset counts from zero');
  assert.equal(targetOf('http://a:1/ops/stats').heartbeat, 'http://a:1/ops/heartbeat');
  assert.equal(targetOf('http://a:1/metrics').format, 'prometheus');
});

test('the agent scrapes an ekg app and a Prometheus target, and probes each heartbeat into `up`', { timeout: 30_000 }, async () => {
  const ekg = createEkg({ signals: false });
  await ekg.flush();
  const side = await ekg.listen({ port: 0, prefix: '/ops' });
  after(() => {
    side?.close();
    return ekg.close();
  });
  let n = 100;
  const prom = createServer((req, res) => {
    if (req.url === '/heartbeat') return res.end('heartbeat:ok');
    res.setHeader('content-type', 'text/plain; version=0.0.4');
    n += 5;
    res.end(`# TYPE jobs_total counter\njobs_total ${n}\n`);
  });
  await new Promise<void>((r) => prom.listen(0, '127.0.0.1', () => r()));
  after(() => prom.close());
  assert.ok(side, 'the side server listens');
  const ekgUrl = `http://127.0.0.1:${(side.address() as AddressInfo).port}/ops/stats`;
  const promUrl = `http://127.0.0.1:${(prom.address() as AddressInfo).port}/metrics`;
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
  const deadPort = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  const deadUrl = `http://127.0.0.1:${deadPort}/ops/stats`;
  const config = loadConfig([
    '--statsd',
    'off',
    '--http',
    'off',
    '--flush-interval',
    '1h',
    '--store',
    'off',
    '--scrape',
    ekgUrl,
    '--scrape',
    promUrl,
    '--scrape',
    deadUrl,
    '--scrape-interval',
    '1h',
  ]);
  assert.ok(config !== 'help');
  assert.equal(config.scrape.length, 3);
  const agent = new Agent(config, []);
  await agent.start({ timer: false });
  after(() => agent.stop());
  const scraper = agent.scraper;
  assert.ok(scraper);
  for (const end = Date.now() + 60_000; scraper.scrapes < 3; await new Promise((r) => setTimeout(r, 25)))
    if (Date.now() > end) throw new Error(`${scraper.scrapes} scrapes after 60 s`);
  await scraper.once(targetOf(promUrl)); // a second scrape: the counter's first delta
  // the delta describes the time since the first scrape, spread over as long after its arrival: a window reaching past that has it all
  const w = agent.flush(Date.now() + 3_600_000);
  const rss = w.series.find((s) => s.name === 'runtime.memory.rss');
  assert.equal(rss?.tags, `target:${ekgUrl}`);
  assert.ok((rss?.value ?? 0) > 1e6);
  assert.equal(w.series.find((s) => s.name === 'jobs_total')?.value, 5);
  const up = w.series.filter((s) => s.name === 'up');
  assert.equal(up.find((s) => s.tags === `target:${ekgUrl}`)?.value, 1);
  assert.equal(up.find((s) => s.tags === `target:${promUrl}`)?.value, 1);
  const dead = up.find((s) => s.tags.includes(deadUrl));
  assert.equal(dead?.value, 0);
  assert.match(dead?.tags ?? '', /reason:ECONNREFUSED/);
  assert.match(scraper.failures.get(deadUrl) ?? '', /ECONNREFUSED/);
  assert.throws(() => loadConfig(['--scrape', 'ftp://x/stats']), /scrape: "ftp:\/\/x\/stats" must be an http/);
});

test('each target keeps its own schedule, and a target without a probe records no `up`', { timeout: 30_000 }, async () => {
  const hits = new Map<string, number>();
  const srv = createServer((req, res) => {
    hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1);
    if (req.url?.endsWith('/ready')) return res.end('ok');
    res.setHeader('content-type', 'application/json');
    res.end('{"jobs":{"queued":3}}');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  after(() => srv.close());
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const dir = mkdtempSync(join(tmpdir(), 'ekg-agent-scrape-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'agent.yaml');
  writeFileSync(
    file,
    `statsd: 'off'
http: 'off'
store: 'off'
flush_interval: 1h
scrape:
  - url: ${base}/fast/stats
    interval: 100ms
    heartbeat: ready
  - url: ${base}/slow/stats
    interval: 1h
    heartbeat: false
`,
  );
  const config = loadConfig(['--config', file]);
  assert.ok(config !== 'help');
  const agent = new Agent(config, []);
  await agent.start({ timer: false });
  after(() => agent.stop());
  // however slow the machine, the 100 ms target keeps coming round while the hourly one waits
  while ((agent.scraper?.rounds.get(`${base}/fast/stats`) ?? 0) < 4) await new Promise((r) => setTimeout(r, 50));
  const fast = agent.scraper?.rounds.get(`${base}/fast/stats`) ?? 0;
  assert.equal(agent.scraper?.rounds.get(`${base}/slow/stats`), 1, 'the hourly target ran once, at start');
  const probes = hits.get('/fast/ready') ?? 0;
  // a round may be in flight as we look
  assert.ok(probes >= fast && probes <= fast + 1, `probed at /ready beside the URL, every round: ${probes} for ${fast}`);
  assert.equal(hits.has('/slow/heartbeat'), false);
  const w = agent.flush();
  assert.deepEqual(
    w.series.filter((s) => s.name === 'up').map((s) => [s.tags, s.value]),
    [[`target:${base}/fast/stats`, 1]],
  );
  assert.equal(w.series.find((s) => s.name === 'jobs.queued' && s.tags === `target:${base}/slow/stats`)?.value, 3);
});

test('a target that goes down is one stderr line when the outage starts and one when it ends, not one per round', async () => {
  let failing = false;
  const srv = createServer((_req, res) => {
    if (failing) {
      res.statusCode = 500;
      return res.end('down');
    }
    res.setHeader('content-type', 'application/json');
    res.end('{"jobs":{"queued":3}}');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  after(() => srv.close());
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/stats`;
  const lines: string[] = [];
  const t = targetOf({ url, heartbeat: false });
  const scraper = new Scraper(
    [t],
    () => {},
    (l) => lines.push(l),
  );
  await scraper.once(t);
  failing = true;
  for (let i = 0; i < 5; i++) await scraper.once(t);
  assert.equal(scraper.failures.get(url), 'HTTP 500');
  failing = false;
  await scraper.once(t);
  await scraper.once(t);
  assert.equal(scraper.failures.has(url), false);
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.match(lines[0] ?? '', new RegExp(`^scrape ${url}: failing \\(HTTP 500\\)`));
  assert.match(lines[1] ?? '', new RegExp(`^scrape ${url}: back after 5 failed rounds`));
});

test('a scrape describes the time since the target’s previous successful scrape: counters spread over it, gauges held for it', async () => {
  let n = 1000;
  let failing = false;
  const srv = createServer((_req, res) => {
    if (failing) {
      res.statusCode = 503;
      return res.end('busy');
    }
    n += 100;
    res.setHeader('content-type', 'text/plain; version=0.0.4');
    res.end(`# TYPE jobs_total counter\njobs_total ${n}\n# TYPE queued gauge\nqueued 7\n`);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  after(() => srv.close());
  const t = targetOf({ url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/metrics`, heartbeat: false, interval: 10_000 });
  const got: Array<{ at: number; samples: Sample[] }> = [];
  let round = 0;
  const scraper = new Scraper(
    [t],
    (samples) => got.push({ at: round, samples }),
    () => {},
  );
  const t0 = Math.floor(Date.now() / 1000) * 1000 - 120_000;
  // rounds at 0, 10 s, (20 s fails), 30 s: each stamped with when it began
  for (const [i, d] of [0, 10_000, 20_000, 30_000].entries()) {
    round = t0 + d;
    failing = i === 2;
    await scraper.once(t, t0 + d);
  }
  const by = (at: number) => got.find((g) => g.at === t0 + at)?.samples ?? [];
  assert.deepEqual(
    by(0).map((s) => [s.name, s.interval]),
    [['queued', 10_000]],
    'the first: the schedule’s interval (the counter only sets its baseline)',
  );
  assert.deepEqual(
    by(10_000).map((s) => [s.name, s.value, s.interval]),
    [
      ['jobs_total', 100, 10_000],
      ['queued', 7, 10_000],
    ],
  );
  assert.deepEqual(
    by(30_000).map((s) => [s.name, s.value, s.interval]),
    [
      ['jobs_total', 100, 20_000],
      ['queued', 7, 20_000],
    ],
    'after a failed round: the 20 s since the last success',
  );
  // into an aggregator with 1 s windows: 10 jobs a window for the 10 s after the second scrape's arrival, the level held throughout
  const agg = new Aggregator();
  agg.flush(t0 + 10_000);
  for (const s of by(10_000)) agg.add(s, t0 + 10_000);
  const jobs: number[] = [];
  const queued: Array<boolean | undefined> = [];
  for (let k = 1; k <= 10; k++) {
    const w = agg.flush(t0 + 10_000 + k * 1000);
    jobs.push(w.series.find((f) => f.name === 'jobs_total')?.value ?? 0);
    queued.push(w.series.find((f) => f.name === 'queued')?.carried);
  }
  assert.deepEqual(jobs, Array(10).fill(10));
  assert.deepEqual(queued, Array(10).fill(undefined), 'an observation in every window of its interval, never carried');
});

test('a target that streams without end is refused at 16 MiB, not read into memory until the timeout', { timeout: 60_000 }, async () => {
  const chunk = Buffer.alloc(1 << 20, 'a');
  let sent = 0;
  const srv = createServer((req, res) => {
    res.setHeader('content-type', 'text/plain');
    const more = () => {
      while (!res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) return;
      }
    };
    res.on('drain', more);
    req.socket.on('close', () => res.destroy());
    more();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  after(() => {
    srv.closeAllConnections();
    srv.close();
  });
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/metrics`;
  const t = targetOf({ url, heartbeat: false, timeout: 30_000 });
  const got: Sample[] = [];
  const scraper = new Scraper(
    [t],
    (s) => got.push(...s),
    () => {},
  );
  await scraper.once(t);
  assert.equal(scraper.failures.get(url), 'body over 16 MiB');
  assert.equal(got.length, 0);
  assert.ok(sent > 16 << 20, `${sent}`);
});

test('a scrape gives at most 100,000 samples, and no name over 1,024 characters however deep the JSON', () => {
  const wide = Object.fromEntries(Array.from({ length: 150_000 }, (_, i) => [`k${i}`, i]));
  assert.equal(flattenJson(wide, '').length, MAX_SCRAPE_SAMPLES);
  // 100,000 levels: the names would grow by two characters a level (and the stack overflow); they stop at 1,024
  const deep = JSON.parse(`${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`);
  assert.deepEqual(flattenJson({ ok: 1, deep }, ''), [{ name: 'ok', tags: '', type: 'g', value: 1, weight: 1 }]);
  const prom = `${'n'.repeat(1025)} 1\nok{a="${'x'.repeat(2100)}"} 1\nfine 2\n`;
  const { samples, bad } = parsePrometheus(prom, '', new Map());
  assert.deepEqual(
    samples.map((x) => x.name),
    ['fine'],
  );
  assert.equal(bad, 2);
});
