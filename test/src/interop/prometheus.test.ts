import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createEkg } from 'ekg-vitals';
import { listenedPorts } from '../../../packages/ekg/dist/testing/ports.js';
import { need } from './system.js';

const skip = need('prometheus');

test('the real Prometheus scrapes /metrics (OpenMetrics negotiated) and can query every family', { skip, timeout: 60_000 }, async () => {
  const ekg = createEkg({ interval: 500, signals: false, labels: { service: 'demo' } });
  const mw = ekg.node();
  const app = createServer((req, res) => mw(req, res, () => res.end('hi')));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
  const appPort = (app.address() as AddressInfo).port;
  const dir = mkdtempSync(join(tmpdir(), 'ekg-prom-'));
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: ekg\n    metrics_path: /ops/metrics\n    static_configs:\n      - targets: ['127.0.0.1:${appPort}']\n`,
  );
  const prom: ChildProcess = spawn(
    'prometheus',
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, '--web.listen-address=127.0.0.1:0'],
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
  // asked for port 0: the port it took is read from the kernel, never guessed
  const [promPort] = await listenedPorts(prom).catch((e: Error) => assert.fail(`${e.message}: ${promLog.slice(-2000)}`));
  const api = `http://127.0.0.1:${promPort}/api/v1`;
  const query = async (q: string) => {
    const r = await fetch(`${api}/query?query=${encodeURIComponent(q)}`);
    const j = (await r.json()) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
    return j.data.result;
  };
  const lastError = async () => {
    const targets = (await (await fetch(`${api}/targets`)).json()) as {
      data: { activeTargets: Array<{ lastError: string; health: string }> };
    };
    return targets.data.activeTargets[0]?.lastError;
  };
  const families = [
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
  ];
  const requests2xx = async () => Number((await query('sum(ekg_http_requests_total{class="2xx"})'))[0]?.value[1] ?? 0);
  // traffic for the http vital, until a scrape that went through whole holds every family and the
  // requests (a window must close after the traffic, then a scrape must come: neither is timed here)
  const deadline = Date.now() + 60_000;
  let up: Awaited<ReturnType<typeof query>> = [];
  let error: string | undefined;
  while (Date.now() < deadline) {
    await fetch(`http://127.0.0.1:${appPort}/hello`).catch(() => {});
    up = await query('up{job="ekg"}').catch(() => []);
    error = await lastError().catch(() => undefined);
    if (up[0]?.value[1] === '1' && error === '') {
      const present = await Promise.all(
        families.map((f) =>
          query(f).then(
            (r) => r.length > 0,
            () => false,
          ),
        ),
      );
      if (present.every(Boolean) && (await requests2xx().catch(() => 0)) >= 1) break;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  assert.equal(up[0]?.value[1], '1', `target not up; prometheus said: ${promLog.slice(-2000)}`);
  assert.equal(error, '', 'a scrape parsed without error');
  for (const name of families) {
    const r = await query(name);
    assert.ok(r.length > 0, `${name} missing in Prometheus`);
    assert.equal(r[0]?.metric.service, 'demo', `${name} lost its constant label`);
  }
  const spaces = await query('nodejs_heap_space_size_used_bytes');
  assert.ok(spaces.some((s) => s.metric.space === 'old'));
  assert.ok((await requests2xx()) >= 1);
});
