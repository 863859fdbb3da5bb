/**
 * The benchmark's server, one variant per process: `bare`, `ekg` (runtime + http vitals, mounted
 * at /ops), `prom` (prom-client collectDefaultMetrics + an http_request_duration_seconds
 * histogram observed per request, the usual setup), `otel` (OpenTelemetry's runtime-node
 * instrumentation and Prometheus exporter + an http.server.request.duration histogram recorded per
 * request), `ekg-http` (ekg's HTTP monitor alone) or `dc-noop` (no-op subscribers on the two HTTP diagnostics channels ekg uses: the
 * channel's own cost). `bare` started with `--import ekg-vitals/register` is ekg with no code change.
 * Prints `ready <port>`. `server.js <variant> inprocess <requests> <rounds>` instead serves that many
 * requests per round over an in-memory connection (inprocess.ts) and prints CPU ns per request.
 */
import diagnostics from 'node:diagnostics_channel';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

const variant = process.argv[2] ?? 'bare';
// BENCH_LIB=/abs/dist/index.js: another build of the library (before/after a change; instructions.ts)
const LIB = process.env.BENCH_LIB ? `file://${process.env.BENCH_LIB}` : import.meta.resolve('ekg-vitals');
const HELLO = 'hello world';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '11' });
  res.end(HELLO);
};

if (variant === 'ekg' || variant === 'ekg-watchdog' || variant === 'ekg1s' || variant === 'ekg1s-report') {
  const { createEkg } = (await import(LIB)) as typeof import('ekg-vitals');
  const report =
    variant === 'ekg1s-report'
      ? { statsd: `udp://127.0.0.1:${process.env.BENCH_UDP_PORT}`, push: `http://127.0.0.1:${process.env.BENCH_HTTP_PORT}/push` }
      : undefined;
  const ekg = createEkg({
    signals: false,
    ...(variant === 'ekg' || variant === 'ekg-watchdog' ? {} : { interval: 1000 }),
    ...(report ? { report } : {}),
    // BENCH_STALL_MS: a threshold that valgrind's slowed thread stays under (instructions.ts), the beat unchanged
    ...(variant === 'ekg-watchdog'
      ? { watchdog: process.env.BENCH_STALL_MS ? { stallThreshold: Number(process.env.BENCH_STALL_MS) } : true }
      : {}),
  });
  const ops = ekg.node();
  const hello = handler;
  handler = (req, res) => ops(req, res, () => hello(req, res));
} else if (variant === 'ekg-http') {
  // the http vital's monitor alone (no timers, no runtime monitors): the request path's own cost
  const { HttpMonitor } = await import(new URL('./vitals/http.js', LIB).href);
  new HttpMonitor().start();
} else if (variant === 'sampler') {
  // the process sampler alone: the HTTP and runtime monitors and the window's timer (bisection of register)
  const { Sampler } = await import(new URL('./sampler.js', LIB).href);
  Sampler.acquire(10_000);
} else if (variant === 'ekg-core') {
  // createEkg() as register makes it, with nothing mounted on the app's server and no watchdog
  const { createEkg } = (await import(LIB)) as typeof import('ekg-vitals');
  createEkg({});
} else if (variant === 'ekg-import') {
  // the library imported, nothing started: what loading its modules alone does to the request path
  await import(LIB);
} else if (variant === 'eld10' || variant === 'eld20') {
  // the event-loop delay monitor alone, at the resolution ekg uses (bisection of ekg's cost)
  const { monitorEventLoopDelay } = await import('node:perf_hooks');
  monitorEventLoopDelay({ resolution: variant === 'eld10' ? 10 : 20 }).enable();
} else if (variant === 'gc-observer') {
  const { PerformanceObserver } = await import('node:perf_hooks');
  new PerformanceObserver(() => {}).observe({ entryTypes: ['gc'] });
} else if (variant === 'ekg-runtime') {
  // ekg's runtime monitor alone (event-loop delay, GC observer; no window timer)
  const { RuntimeMonitor } = await import(new URL('./vitals/runtime.js', LIB).href);
  new RuntimeMonitor().start();
} else if (variant === 'dc-noop') {
  const noop = () => {};
  diagnostics.subscribe('http.server.request.start', noop);
  diagnostics.subscribe('http.server.response.finish', noop);
} else if (variant === 'otel') {
  const { MeterProvider } = await import('@opentelemetry/sdk-metrics');
  const { PrometheusExporter } = await import('@opentelemetry/exporter-prometheus');
  const { RuntimeNodeInstrumentation } = await import('@opentelemetry/instrumentation-runtime-node');
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter] });
  const runtime = new RuntimeNodeInstrumentation();
  runtime.setMeterProvider(provider);
  runtime.enable();
  const hist = provider.getMeter('bench').createHistogram('http.server.request.duration', { unit: 's' });
  const hello = handler;
  handler = (req, res) => {
    if (req.url === '/metrics') {
      exporter.getMetricsRequestHandler(req, res);
      return;
    }
    const start = performance.now();
    res.on('finish', () =>
      hist.record((performance.now() - start) / 1000, {
        'http.request.method': req.method ?? 'GET',
        'http.route': '/',
        'http.response.status_code': res.statusCode,
      }),
    );
    hello(req, res);
  };
} else if (variant === 'prom') {
  const client = await import('prom-client');
  const prom = client.default ?? client;
  prom.collectDefaultMetrics();
  const hist = new prom.Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration in seconds.',
    labelNames: ['method', 'route', 'code'],
  });
  const hello = handler;
  handler = (req, res) => {
    if (req.url === '/metrics') {
      prom.register.metrics().then((text) => {
        res.writeHead(200, { 'content-type': prom.register.contentType });
        res.end(text);
      });
      return;
    }
    const end = hist.startTimer({ method: req.method ?? 'GET', route: '/' });
    res.on('finish', () => end({ code: res.statusCode }));
    hello(req, res);
  };
}

// BENCH_IMPORT=node:https,node:cluster: modules loaded first (bisection of what loading a module costs the request path)
for (const m of process.env.BENCH_IMPORT?.split(',') ?? []) if (m) await import(m);
// BENCH_APP=1: what any real app has done before its first request, so that bare is no clean room (issue 20)
if (process.env.BENCH_APP) await loadAppLike();

/**
 * An app's start-up in miniature: 50 modules of 4 classes each, loaded and each class constructed once, and
 * emitters and streams of eight kinds, and ten emitters with differently named events. Node's request path (EventEmitter, streams,
 * http) then runs with the megamorphic inline caches a real app's has: bare costs ~1,500 instructions a request
 * more, and ekg's extra over it is what ekg itself adds (instructions.ts).
 */
async function loadAppLike(): Promise<void> {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { pathToFileURL } = await import('node:url');
  const { EventEmitter } = await import('node:events');
  const { Duplex, PassThrough, Readable, Transform, Writable } = await import('node:stream');
  const dir = mkdtempSync(join(tmpdir(), 'ekg-bench-app-'));
  for (let i = 0; i < 50; i++) {
    let src = '';
    for (let j = 0; j < 4; j++) {
      src += `export class C${i}_${j} { constructor(a) { this.a${j} = a; this.b${i} = [a]; this.m = new Map(); } run(x) { return this.a${j} + x; } }\n`;
      src += `new C${i}_${j}(1).run(2);\n`;
    }
    writeFileSync(join(dir, `m${i}.mjs`), src);
  }
  for (let i = 0; i < 50; i++) await import(pathToFileURL(join(dir, `m${i}.mjs`)).href);
  const names = ['data', 'end', 'error', 'close', 'finish', 'drain', 'ready', 'message', 'timeout', 'connect'];
  class A extends EventEmitter {
    a = 1;
  }
  class B extends EventEmitter {
    b = 1;
    c = 2;
  }
  class C extends EventEmitter {
    x = 'x';
  }
  const kept: InstanceType<typeof EventEmitter>[] = [
    new A(),
    new B(),
    new C(),
    new PassThrough(),
    new Readable({ read() {} }),
    new Writable({ write: (_c, _e, cb) => cb() }),
    new Transform({ transform: (c, _e, cb) => cb(null, c) }),
    new Duplex({ read() {}, write: (_c, _e, cb) => cb() }),
  ];
  for (const e of kept) e.on('x', () => {});
  for (let k = 0; k < 10; k++) kept.push(new EventEmitter());
  kept.forEach((e, k) => {
    for (let n = 0; n <= k % names.length; n++) e.on(names[(n + k) % names.length] as string, () => {});
  });
  (globalThis as { __benchApp?: unknown }).__benchApp = kept;
}

const server = createServer((req, res) => handler(req, res));
server.keepAliveTimeout = 60_000;
if (process.argv[3] === 'inprocess') {
  // `server.js <variant> inprocess <requests> <rounds>`: CPU ns per request with no socket (inprocess.ts)
  const { cpuPerRequest: pipelined, serve } = await import('./inprocess.js');
  const n = Number(process.argv[4] ?? 20_000);
  // BENCH_BATCH: requests sent at a time on the connection (default 64, pipelined). wrk and browsers send
  // one and wait for its answer; with 1 each request has the connection to itself, as they see it.
  const batch = Number(process.env.BENCH_BATCH ?? 64);
  const cpuPerRequest = async (server: Server, n: number) => {
    if (batch === 64) return pipelined(server, n);
    const a = process.cpuUsage();
    await serve(server, n, batch);
    const b = process.cpuUsage(a);
    return ((b.user + b.system) * 1000) / n;
  };
  // warm up: JIT, the first window (instructions.ts asks for more rounds: BENCH_WARM)
  for (let w = Number(process.env.BENCH_WARM ?? 1); w > 0; w--) await cpuPerRequest(server, n);
  if (process.env.BENCH_CALLGRIND) {
    // under `valgrind --tool=callgrind --instr-atstart=no`: the controller turns counting on, then
    // creates the file named by BENCH_CALLGRIND
    const { existsSync } = await import('node:fs');
    console.log('warm');
    while (!existsSync(process.env.BENCH_CALLGRIND)) await new Promise((r) => setTimeout(r, 20));
  }
  const out: number[] = [];
  for (let r = 0; r < Number(process.argv[5] ?? 1); r++) out.push(await cpuPerRequest(server, n));
  console.log(JSON.stringify({ ns: out }));
  process.exit(0);
}
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  console.log(`ready ${typeof a === 'object' && a ? a.port : 0}`);
});
process.on('message', (m) => {
  if (m === 'heap') {
    (globalThis as { gc?: () => void }).gc?.();
    process.send?.({ heap: process.memoryUsage().heapUsed });
  }
});
