/**
 * The dashboard in a real browser (Debian's chromium via playwright-core): time until the overview
 * of 50 instances and an instance view over 24 h of 10 s windows have rendered, and the JavaScript
 * it ships (gzipped). Data is written straight into the agent's SQLite file, then the real agent
 * serves it. Prints JSON for sections.ts.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Flushed, SqliteStore } from 'ekg-agent';
import { chromium, type Page } from 'playwright-core';

const BIN = fileURLToPath(new URL('../../packages/agent/bin/ekg-agent.js', import.meta.url));
const STEP = 10_000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const dirs: string[] = [];
process.on('exit', () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The series one instance reports each window, as ekg's StatsD reporter names them. */
function vitals(tags: string, w: number, i: number): Flushed[] {
  const wave = Math.sin((w + i * 7) / 30);
  const g = (name: string, value: number): Flushed => ({ name, tags, kind: 'gauge', value });
  const c = (name: string, value: number): Flushed => ({ name, tags, kind: 'counter', value, rate: value / 10, total: value });
  const out: Flushed[] = [
    g('runtime.eventloop.delay.p50', 1.1 + wave * 0.2),
    g('runtime.eventloop.delay.p99', 3 + wave * 2 + (w % 97 === 0 ? 40 : 0)),
    g('runtime.eventloop.delay.max', 6 + wave * 4),
    g('runtime.eventloop.utilization', 0.2 + wave * 0.1),
    g('runtime.memory.heap.used', 40e6 + wave * 8e6 + i * 1e6),
    g('runtime.memory.heap.total', 60e6 + i * 1e6),
    g('runtime.memory.heap.limit', 4.2e9),
    g('runtime.memory.rss', 120e6 + wave * 10e6 + i * 2e6),
    g('runtime.memory.external', 3e6),
    g('runtime.memory.arrayBuffers', 1e6),
    g('runtime.cpu.utilization', 0.25 + wave * 0.1),
    c('runtime.cpu.user', 2000 + wave * 500),
    c('runtime.cpu.system', 400 + wave * 100),
    c('http.requests.total', 1000 + wave * 200),
    c('http.requests.2xx', 950 + wave * 190),
    c('http.requests.4xx', 40),
    c('http.requests.5xx', 10),
    g('http.duration.p50', 4 + wave),
    g('http.duration.p90', 12 + wave * 3),
    g('http.duration.p99', 40 + wave * 10),
    g('runtime.active.total', 25),
    g('runtime.resources.fds.open', 30),
    g('http.inFlight', 3),
  ];
  for (const k of ['minor', 'major', 'incremental', 'weakcb']) {
    out.push(c(`runtime.gc.${k}.pause`, k === 'minor' ? 12 : 2), c(`runtime.gc.${k}.count`, k === 'minor' ? 8 : 1));
  }
  for (const s of ['new', 'old', 'code', 'large_object', 'read_only', 'shared', 'new_large_object', 'code_large_object']) {
    out.push(g(`runtime.memory.spaces.${s}.used`, 2e6 + (s === 'old' ? 30e6 + wave * 5e6 : 0)));
  }
  return out;
}

async function fill(instances: number, windows: number, only?: Set<string>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'ekg-dash-bench-'));
  dirs.push(dir);
  const store = new SqliteStore({ path: join(dir, 'ekg.db'), flushInterval: STEP });
  const last = Math.floor(Date.now() / STEP) * STEP;
  for (let w = 0; w < windows; w++) {
    const end = last - (windows - 1 - w) * STEP;
    const series: Flushed[] = [];
    for (let i = 0; i < instances; i++) {
      const tags = `host:web-${(i % 5) + 1},pid:${1000 + i},service:${i % 2 ? 'api' : 'web'}`;
      for (const f of vitals(tags, w, i)) if (!only || only.has(f.name)) series.push(f);
    }
    store.write({ start: end - STEP, end, series });
  }
  await store.maintain(Date.now());
  await store.close();
  return dir;
}

function agentOn(dir: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const proc = spawn(process.execPath, [BIN, '--statsd', 'off', '--http', '127.0.0.1:0', '--data', dir, '--console', 'off'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout?.on('data', (d) => {
      out += d;
      const m = /http (http:\/\/[\d.]+:\d+)/.exec(out);
      if (m)
        resolve({
          url: m[1] as string,
          stop: () =>
            new Promise<void>((r) => {
              proc.once('exit', () => r());
              proc.kill('SIGTERM');
            }),
        });
    });
    proc.once('exit', (code) => reject(new Error(`ekg-agent exited ${code}`)));
  });
}

/** ms from navigation start to the view's first complete render, median of `n` loads. */
async function renderTime(page: Page, url: string, n: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    await page.goto('about:blank');
    await page.goto(url);
    await page.waitForSelector('main[data-state="ready"]', { timeout: 30_000 });
    times.push(Number(await page.getAttribute('main', 'data-rendered-ms')));
  }
  return median(times);
}

const SPARKS = new Set([
  'runtime.eventloop.delay.p99',
  'runtime.eventloop.utilization',
  'runtime.memory.heap.used',
  'runtime.memory.rss',
  'runtime.cpu.utilization',
  'http.requests.total',
]);
const overviewDir = await fill(50, 360, SPARKS);
const instanceDir = await fill(1, 8640);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });

const a = await agentOn(overviewDir);
const overviewMs = await renderTime(page, `${a.url}/#/?range=1h`, 7);
const rows = await page.locator('#instances tbody tr').count();
await a.stop();

const b = await agentOn(instanceDir);
const key = encodeURIComponent('service=web,host=web-1,pid=1000');
const instanceMs = await renderTime(page, `${b.url}/#/instance?key=${key}&range=24h`, 7);
const charts = await page.$$eval('.chart', (els) => els.filter((e) => Number((e as HTMLElement).dataset.points) > 0).length);
const points = await page.$$eval('.chart', (els) => els.reduce((n, e) => n + Number((e as HTMLElement).dataset.points), 0));
// what the page loaded, gzipped as the agent serves it
const scripts = await page.evaluate(() =>
  performance
    .getEntriesByType('resource')
    .map((e) => e.name)
    .filter((n) => n.endsWith('.js')),
);
let jsGzip = 0;
for (const s of scripts) {
  const r = await fetch(s, { headers: { 'accept-encoding': 'gzip' } });
  jsGzip += Number(r.headers.get('content-length'));
}
await b.stop();
await browser.close();
console.log(JSON.stringify({ overviewMs, rows, instanceMs, charts, points, jsGzip, scripts: scripts.length }));
