import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startEtsy } from './etsy.js';

const packageDir = fileURLToPath(new URL('../../../packages/ekg/', import.meta.url));
const fixture = fileURLToPath(new URL('../../../packages/ekg/dist/testing/fixtures/reporting-worker.js', import.meta.url));

const dir = mkdtempSync(join(tmpdir(), 'ekg-statsd-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// Delivery is the subject here, not loss: the worker reports to etsy over TCP, counts only windows
// sent on a live connection, and ends once its reporters have handed everything over (see the
// fixture); the etsy flushes are then read until they hold what was counted.
test('ekg-vitals/register delivers every window to the real etsy StatsD server and to a Heroku-style sink', {
  timeout: 180_000,
}, async () => {
  const etsy = await startEtsy(dir, { transport: 'tcp', config: { flushInterval: 500 } });
  after(() => etsy.proc.kill('SIGKILL'));
  // the HTTP sink checks what Heroku's metrics endpoint would
  const posts: Array<{ headers: Record<string, unknown>; body: unknown }> = [];
  const sink = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      posts.push({ headers: req.headers, body: JSON.parse(body) });
      res.end();
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
  after(() => sink.close());

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    EKG_STATSD: `tcp://127.0.0.1:${etsy.port}`,
    EKG_PUSH_URL: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/push?app=demo`,
    EKG_INTERVAL: '500ms',
    EKG_SERVICE: 'demo',
    // Heroku's floor: one post per 10 s of windows
    METRICS_INTERVAL_OVERRIDE: '10000',
  };
  delete env.NODE_OPTIONS;
  delete env.HEROKU_METRICS_URL;
  delete env.NODE_TEST_CONTEXT;
  const worker = spawn(process.execPath, ['--import', 'ekg-vitals/register', fixture, '2600'], {
    cwd: packageDir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let wout = '';
  let werr = '';
  worker.stdout.on('data', (d) => (wout += d));
  worker.stderr.on('data', (d) => (werr += d));
  const code = await new Promise((r) => worker.on('exit', r));
  assert.equal(code, 0, werr);
  assert.equal(werr, '', 'no stderr from ekg when the targets are up');
  type Stats = { sent: number; dropped: number; errors: number };
  const sums = JSON.parse(/sums (.*)/.exec(wout)?.[1] ?? '{}') as {
    windows: number;
    gc: number;
    droppedBefore: number;
    reporters: Record<string, Stats>;
  };
  assert.ok(sums.windows >= 1, wout);
  // a window replaced while the first connection was being made (a busy machine) is dropped by design, before counting
  assert.equal((sums.reporters.statsd?.dropped ?? 0) - sums.droppedBefore, 0, 'every counted window went out on a live connection');

  const total = (re: RegExp) =>
    etsy.flushes().reduce((a, f) => a + Object.entries(f.counters).reduce((b, [k, v]) => b + (re.test(k) ? v : 0), 0), 0);
  const gcKey = /^runtime\.gc\.count;service=demo;pid=\d+;host=[^;]+$/;
  // every window's GC collections, summed by StatsD, reach what the app counted (windows sent before it stopped counting)
  assert.ok(sums.gc > 0, 'the worker collected garbage');
  const end = Date.now() + 60_000;
  while (total(gcKey) < sums.gc && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  assert.ok(total(gcKey) >= sums.gc, `StatsD summed ${total(gcKey)}, the app counted ${sums.gc}`);
  const flushes = etsy.flushes();
  assert.equal(total(/^statsd\.bad_lines_seen$/), 0, 'StatsD saw bad lines');
  assert.ok(
    gcKey.test(
      Object.keys(flushes.find((f) => Object.keys(f.counters).some((k) => gcKey.test(k)))?.counters ?? {}).find((k) => gcKey.test(k)) ?? '',
    ),
    'tags arrive',
  );
  const last = flushes.at(-1)?.gauges ?? {};
  const rss = Object.entries(last).find(([k]) => k.startsWith('runtime.memory.rss;'));
  assert.ok(rss && rss[1] > 10_000_000, `rss gauge: ${JSON.stringify(rss)}`);

  // a post is counted sent once the sink has answered, so the sink has every post counted
  assert.ok((sums.reporters.heroku?.sent ?? 0) >= 1);
  assert.ok(posts.length >= (sums.reporters.heroku?.sent ?? 0), `${posts.length} posts, ${sums.reporters.heroku?.sent} sent`);
  for (const p of posts) {
    assert.equal(p.headers['content-type'], 'application/json');
    assert.match(String(p.headers['measurements-count']), /^\d+$/);
    assert.ok(Object.keys((p.body as { counters: object }).counters).includes('node.gc.collections'), JSON.stringify(p.body));
  }
});
