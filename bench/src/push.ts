/**
 * Push reporting: CPU per window of each pusher, one process per measurement, to local sinks (a UDP
 * socket, an HTTP server that reads the body and answers 200):
 *   push.js <idle|none|statsd|heroku|prom-client|otel>
 * `idle` is the measuring loop alone (its timers), which the section subtracts from every case;
 * `none` is ekg's window close with no reporter; statsd and heroku are the window close plus the report. prom-client pushes its default metrics and a request
 * histogram with `Pushgateway.pushAdd`; OpenTelemetry exports its runtime metrics and a request
 * histogram over OTLP/HTTP (JSON) with `forceFlush` of a PeriodicExportingMetricReader. All of this
 * runs on the main thread today, so the process's CPU is the main thread's. Prints one JSON line.
 */
import dgram from 'node:dgram';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

const mode = process.argv[2] ?? 'none';
const WINDOWS = Number(process.env.BENCH_PUSH_WINDOWS ?? 300);

const udp = dgram.createSocket('udp4');
await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
let udpBytes = 0;
udp.on('message', (m) => {
  udpBytes += m.length;
});
let httpBytes = 0;
let posts = 0;
let answered: (() => void) | undefined;
const sink = createServer((req, res) => {
  req.on('data', (d: Buffer) => {
    httpBytes += d.length;
  });
  req.on('end', () => {
    posts++;
    res.end('{}');
    answered?.();
  });
});
await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
const httpUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;
const udpPort = udp.address().port;
const settle = () => new Promise((r) => setTimeout(r, 5));

/** µs of each measured window's report call on the main thread (wall time: the median resists preemption) */
const reportUs: number[] = [];
let measuring = false;
/** One window: for HTTP pushers, until the sink has answered. */
let window: () => Promise<unknown>;
if (mode === 'idle') {
  window = async () => {};
} else if (mode === 'prom-client') {
  const { default: client } = await import('prom-client');
  client.collectDefaultMetrics();
  const h = new client.Histogram({ name: 'http_request_duration_seconds', help: 'h', labelNames: ['method', 'route', 'code'] });
  h.observe({ method: 'GET', route: '/', code: '200' }, 0.001);
  const gateway = new client.Pushgateway(httpUrl);
  window = () => gateway.pushAdd({ jobName: 'bench' });
} else if (mode === 'otel') {
  const { MeterProvider, PeriodicExportingMetricReader } = await import('@opentelemetry/sdk-metrics');
  const { OTLPMetricExporter } = await import('@opentelemetry/exporter-metrics-otlp-http');
  const { RuntimeNodeInstrumentation } = await import('@opentelemetry/instrumentation-runtime-node');
  const reader = new PeriodicExportingMetricReader({
    exporter: new OTLPMetricExporter({ url: `${httpUrl}/v1/metrics` }),
    exportIntervalMillis: 3_600_000,
  });
  const provider = new MeterProvider({ readers: [reader] });
  const runtime = new RuntimeNodeInstrumentation();
  runtime.setMeterProvider(provider);
  runtime.enable();
  provider.getMeter('bench').createHistogram('http.server.request.duration').record(0.001, { 'http.route': '/' });
  window = async () => {
    const done = new Promise<void>((r) => {
      answered = r;
    });
    await reader.forceFlush();
    await done;
  };
} else {
  const { createEkg } = await import('ekg-vitals');
  const report = mode === 'statsd' ? { statsd: `udp://127.0.0.1:${udpPort}` } : mode === 'heroku' ? { push: `${httpUrl}/push` } : undefined;
  // with the watchdog's thread (EKG_WATCHDOG=0 for none), which formats and sends the reports
  const ekg = createEkg({ signals: false, watchdog: process.env.EKG_WATCHDOG !== '0', ...(report ? { report } : {}) });
  // the main thread's own part of reporting a window: the synchronous call (formatting and sending in-thread, or
  // flattening and posting to the watchdog's thread), timed around ekg's private reporter (read, not changed)
  const r = (ekg as unknown as { reporting?: { window: (...a: unknown[]) => void } }).reporting;
  if (r) {
    const inner = r.window.bind(r);
    r.window = (...a: unknown[]) => {
      const t0 = performance.now();
      inner(...a);
      if (measuring) reportUs.push((performance.now() - t0) * 1000);
    };
  }
  // the Heroku reporter posts on its own schedule after a window closes: the settle below lets it finish
  window = () => ekg.flush();
}

for (let i = 0; i < 20; i++) {
  await window();
  await settle();
}
const bytes0 = udpBytes + httpBytes;
const c0 = process.cpuUsage();
// the main thread's share: the event loop's active time (process CPU also counts the watchdog's thread, which sends)
const elu0 = performance.eventLoopUtilization();
measuring = true;
for (let i = 0; i < WINDOWS; i++) {
  await window();
  await settle(); // the send completes inside the measured span
}
const c = process.cpuUsage(c0);
const elu = performance.eventLoopUtilization(elu0);
console.log(
  JSON.stringify({
    us: (c.user + c.system) / WINDOWS,
    mainUs: (elu.active * 1000) / WINDOWS,
    // the median window: on a shared VM the mean carries every preemption that landed in the call
    reportUs: reportUs.length ? (reportUs.sort((a, b) => a - b)[reportUs.length >> 1] as number) : 0,
    reportMeanUs: reportUs.reduce((a, b) => a + b, 0) / WINDOWS,
    bytes: (udpBytes + httpBytes - bytes0) / WINDOWS,
    posts,
  }),
);
process.exit(0);
