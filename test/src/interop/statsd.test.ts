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

test('ekg/register delivers every window to the real etsy StatsD server and to a Heroku-style sink', { timeout: 60_000 }, async () => {
  const etsy = await startEtsy(dir, { config: { flushInterval: 500 } });
  const port = etsy.port;
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
  for (let i = 0; i < 100 && !/server is up/i.test(etsy.log()); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(etsy.log(), /server is up/i, etsy.log());

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    EKG_STATSD: `udp://127.0.0.1:${port}`,
    EKG_PUSH_URL: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/push?app=demo`,
    EKG_INTERVAL: '500ms',
    EKG_SERVICE: 'demo',
  };
  delete env.NODE_OPTIONS;
  delete env.HEROKU_METRICS_URL;
  delete env.NODE_TEST_CONTEXT;
  const worker = spawn(process.execPath, ['--import', 'ekg/register', fixture, '2600'], {
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
  const sums = JSON.parse(/sums (.*)/.exec(wout)?.[1] ?? '{}') as { windows: number; gc: number };
  assert.ok(sums.windows >= 4, wout);
  await new Promise((r) => setTimeout(r, 1200)); // two StatsD flushes

  const flushes = etsy.flushes();
  const total = (re: RegExp) =>
    flushes.reduce((a, f) => a + Object.entries(f.counters).reduce((b, [k, v]) => b + (re.test(k) ? v : 0), 0), 0);
  assert.equal(total(/^statsd\.bad_lines_seen$/), 0, 'StatsD saw bad lines');
  const gcKey = /^runtime\.gc\.count;service=demo;pid=\d+;host=[^;]+$/;
  assert.ok(
    gcKey.test(
      Object.keys(flushes.find((f) => Object.keys(f.counters).some((k) => gcKey.test(k)))?.counters ?? {}).find((k) => gcKey.test(k)) ?? '',
    ),
    'tags arrive',
  );
  // every window's GC collections, summed by StatsD, equal what the app counted (windows sent before it stopped counting)
  assert.ok(sums.gc > 0, 'the worker collected garbage');
  assert.ok(total(gcKey) >= sums.gc, `StatsD summed ${total(gcKey)}, the app counted ${sums.gc}`);
  const last = flushes.at(-1)?.gauges ?? {};
  const rss = Object.entries(last).find(([k]) => k.startsWith('runtime.memory.rss;'));
  assert.ok(rss && rss[1] > 10_000_000, `rss gauge: ${JSON.stringify(rss)}`);

  assert.ok(posts.length >= sums.windows, `${posts.length} posts for ${sums.windows} windows`);
  for (const p of posts) {
    assert.equal(p.headers['content-type'], 'application/json');
    assert.equal(p.headers['measurements-count'], '11');
    assert.deepEqual(Object.keys((p.body as { counters: object }).counters).sort(), [
      'node.gc.collections',
      'node.gc.old.collections',
      'node.gc.old.pause.ns',
      'node.gc.pause.ns',
      'node.gc.young.collections',
      'node.gc.young.pause.ns',
    ]);
  }
});
