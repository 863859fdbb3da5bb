/**
 * In-process measurements, in a child of their own: CPU µs per /metrics render (ekg uncached vs
 * prom-client's register.metrics() for the same default set), and µs per sampler window.
 */
import { performance } from 'node:perf_hooks';
import { createEkg } from 'ekg-vitals';
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

// Reporting: CPU per window with StatsD (UDP) + Heroku JSON to local sinks, against the same
// window close without reporting; and bytes per window on the wire.
const udp = (await import('node:dgram')).createSocket('udp4');
await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
let udpBytes = 0;
udp.on('message', (m) => {
  udpBytes += m.length;
});
const http = await import('node:http');
let httpBytes = 0;
let posts = 0;
const sink = http.createServer((req, res) => {
  req.on('data', (d: Buffer) => {
    httpBytes += d.length;
  });
  req.on('end', () => {
    posts++;
    res.end();
  });
});
await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
const W = 300;
const settle = () => new Promise((r) => setTimeout(r, 5));
async function cpuOf(e: { flush(): Promise<unknown> }): Promise<number> {
  for (let i = 0; i < 20; i++) {
    await e.flush();
    await settle();
  }
  const c0 = process.cpuUsage();
  for (let i = 0; i < W; i++) {
    await e.flush();
    await settle(); // let the sends complete inside the measured span
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / W;
}
// one at a time: instances share the process sampler, so a second one would report during the first's run
const quiet = createEkg({ signals: false });
const without = await cpuOf(quiet);
await quiet.close();
const statsdOnly = createEkg({ signals: false, report: { statsd: `udp://127.0.0.1:${udp.address().port}` } });
const withStatsd = await cpuOf(statsdOnly);
await statsdOnly.close();
const pushOnly = createEkg({ signals: false, report: { push: `http://127.0.0.1:${(sink.address() as { port: number }).port}/push` } });
const withPush = await cpuOf(pushOnly);
await new Promise((r) => setTimeout(r, 200));
const windows = W + 20;
await pushOnly.close();
udp.close();
sink.close();
console.log(
  JSON.stringify({
    promUs,
    ekgRenderUs,
    windowUs,
    tickP50: tickCosts[100],
    tickMax: tickCosts.at(-1),
    statsdUs: withStatsd - without,
    pushUs: withPush - without,
    udpBytesPerWindow: udpBytes / windows,
    httpBytesPerWindow: httpBytes / Math.max(1, posts),
  }),
);
