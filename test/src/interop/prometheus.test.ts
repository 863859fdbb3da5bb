import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createEkg } from 'ekg';
import { need } from './system.js';

const skip = need('prometheus');

test('the real Prometheus scrapes /metrics (OpenMetrics negotiated) and can query every family', { skip, timeout: 60_000 }, async () => {
  const ekg = createEkg({ interval: 500, signals: false, labels: { service: 'demo' } });
  const mw = ekg.node();
  const app = createServer((req, res) => mw(req, res, () => res.end('hi')));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
  const appPort = (app.address() as AddressInfo).port;
  const dir = mkdtempSync(join(tmpdir(), 'ekg-prom-'));
  const promPort = 20000 + Math.floor(Math.random() * 20000);
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: ekg\n    metrics_path: /ops/metrics\n    static_configs:\n      - targets: ['127.0.0.1:${appPort}']\n`,
  );
  const prom: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let promLog = '';
  prom.stderr?.on('data', (d) => {
    promLog += d;
  });
  after(async () => {
    prom.kill('SIGKILL');
    app.close();
    await ekg.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const api = `http://127.0.0.1:${promPort}/api/v1`;
  const query = async (q: string) => {
    const r = await fetch(`${api}/query?query=${encodeURIComponent(q)}`);
    const j = (await r.json()) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
    return j.data.result;
  };
  // traffic for the http vital
  const deadline = Date.now() + 30_000;
  let up: Awaited<ReturnType<typeof query>> = [];
  while (Date.now() < deadline) {
    await fetch(`http://127.0.0.1:${appPort}/hello`).catch(() => {});
    up = await query('up{job="ekg"}').catch(() => []);
    if (up[0]?.value[1] === '1') {
      const heap = await query('nodejs_heap_size_used_bytes').catch(() => []);
      if (heap.length > 0) break;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  assert.equal(up[0]?.value[1], '1', `target not up; prometheus said: ${promLog.slice(-2000)}`);
  const targets = (await (await fetch(`${api}/targets`)).json()) as {
    data: { activeTargets: Array<{ lastError: string; health: string }> };
  };
  assert.equal(targets.data.activeTargets[0]?.lastError, '');
  for (const name of [
    'process_cpu_user_seconds_total',
    'process_resident_memory_bytes',
    'nodejs_eventloop_lag_p99_seconds',
    'nodejs_heap_space_size_used_bytes',
    'nodejs_version_info',
    'nodejs_gc_duration_seconds_bucket',
    'nodejs_active_handles_total',
    'ekg_eventloop_utilization_ratio',
    'ekg_http_requests_total',
    'ekg_http_request_duration_seconds_bucket',
  ]) {
    const r = await query(name);
    assert.ok(r.length > 0, `${name} missing in Prometheus`);
    assert.equal(r[0]?.metric.service, 'demo', `${name} lost its constant label`);
  }
  const spaces = await query('nodejs_heap_space_size_used_bytes');
  assert.ok(spaces.some((s) => s.metric.space === 'old'));
  const reqs = await query('sum(ekg_http_requests_total{class="2xx"})');
  assert.ok(Number(reqs[0]?.value[1]) >= 1);
});
