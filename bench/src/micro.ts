/**
 * In-process measurements, in a child of their own: CPU µs per /metrics render (ekg uncached vs
 * prom-client's register.metrics() for the same default set), and µs per sampler window.
 */
import { performance } from 'node:perf_hooks';
import { createEkg } from 'ekg';
import client from 'prom-client';

const N = Number(process.argv[2] ?? 2000);

async function timeIt(n: number, fn: () => unknown | Promise<unknown>): Promise<number> {
  for (let i = 0; i < Math.min(200, n); i++) await fn(); // warm up the JIT
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

client.collectDefaultMetrics();
new client.Histogram({ name: 'http_request_duration_seconds', help: 'h', labelNames: ['method', 'route', 'code'] });
const promUs = await timeIt(N, () => client.register.metrics());

const ekg = createEkg({ signals: false });
const snap = await ekg.flush();
const { renderPrometheus } = await import('../../packages/ekg/dist/formats/prometheus.js');
const ekgRenderUs = await timeIt(N, () => renderPrometheus(snap, false));
const windowUs = await timeIt(Math.min(N, 1000), () => ekg.flush());
const tickCosts: number[] = [];
for (let i = 0; i < 200; i++) {
  const t0 = performance.now();
  (ekg as unknown as { sampler: { tick(): void } }).sampler.tick();
  tickCosts.push((performance.now() - t0) * 1000);
}
tickCosts.sort((a, b) => a - b);
await ekg.close();
console.log(JSON.stringify({ promUs, ekgRenderUs, windowUs, tickP50: tickCosts[100], tickMax: tickCosts.at(-1) }));
