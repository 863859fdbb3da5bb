/**
 * What each part of ekg costs, in a child process per measurement (so one part's JIT state and
 * subscribers do not leak into the next):
 *   components.js loop <none|noop|ekg>  ns per request of the diagnostics-channel path alone: real
 *       IncomingMessage/ServerResponse objects, both channels published as node:http does, with no
 *       subscriber, no-op subscribers, or ekg's HTTP monitor
 *   components.js ops                   ns per call of the monitor's pieces (clock, histogram, buckets)
 *   components.js idle <none|eld|gc|watchdog|register|register-nowd>  CPU µs per second of an idle
 *       process: what each timer or observer costs on its own, whatever the traffic
 * Each prints one JSON line.
 */
import diagnostics from 'node:diagnostics_channel';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { monitorEventLoopDelay, PerformanceObserver, performance } from 'node:perf_hooks';

const dist = (f: string) => new URL(f, import.meta.resolve('ekg-vitals')).href;
const [mode, what] = [process.argv[2], process.argv[3]];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;

function cpuNs(n: number, fn: (n: number) => void): number {
  const a = process.cpuUsage();
  fn(n);
  const b = process.cpuUsage(a);
  return ((b.user + b.system) * 1000) / n;
}

if (mode === 'loop') {
  const start = diagnostics.channel('http.server.request.start');
  const finish = diagnostics.channel('http.server.response.finish');
  const noop = () => {};
  if (what === 'noop') {
    start.subscribe(noop);
    finish.subscribe(noop);
  } else if (what === 'ekg') {
    const { HttpMonitor } = await import(dist('./vitals/http.js'));
    new HttpMonitor().start();
  }
  const server = createServer();
  const sockets = Array.from({ length: 32 }, () => new Socket());
  const loop = (n: number) => {
    for (let i = 0; i < n; i++) {
      const socket = sockets[i & 31] as Socket;
      const request = new IncomingMessage(socket);
      const response = new ServerResponse(request);
      if (start.hasSubscribers) start.publish({ request, response, socket, server });
      response.statusCode = 200;
      if (finish.hasSubscribers) finish.publish({ request, response, socket, server });
    }
  };
  const N = 200_000;
  loop(N);
  const out: number[] = [];
  for (let r = 0; r < 9; r++) out.push(cpuNs(N, loop));
  console.log(JSON.stringify({ ns: median(out) }));
} else if (mode === 'ops') {
  const { Histogram, Buckets } = await import(dist('./histogram.js'));
  const { HTTP_BUCKETS } = await import(dist('./vitals/http.js'));
  const h = new Histogram();
  const b = new Buckets(HTTP_BUCKETS);
  // durations as a hello world sees them: 0.05–3 ms
  const ms = Float64Array.from({ length: 4096 }, (_, i) => 0.05 + ((i * 7919) % 4096) / 1400);
  let sink = 0;
  const ops: Record<string, (n: number) => void> = {
    'performance.now()': (n) => {
      for (let i = 0; i < n; i++) sink += performance.now();
    },
    'Histogram.record': (n) => {
      for (let i = 0; i < n; i++) h.record(ms[i & 4095] as number);
    },
    'Buckets.observe': (n) => {
      for (let i = 0; i < n; i++) b.observe((ms[i & 4095] as number) / 1000);
    },
    'empty loop': (n) => {
      for (let i = 0; i < n; i++) sink += ms[i & 4095] as number;
    },
  };
  const N = 2_000_000;
  const out: Record<string, number[]> = {};
  for (let r = 0; r < 7; r++) {
    for (const [k, f] of Object.entries(ops)) {
      out[k] ??= [];
      out[k].push(cpuNs(N, f));
    }
  }
  const empty = median(out['empty loop'] as number[]);
  const res: Record<string, number> = {};
  for (const [k, v] of Object.entries(out)) if (k !== 'empty loop') res[k] = Math.max(0, median(v) - empty);
  console.log(JSON.stringify({ ...res, sink: sink > 0 ? 0 : 1 }));
} else if (mode === 'idle') {
  if (what === 'eld') monitorEventLoopDelay({ resolution: 10 }).enable();
  if (what === 'gc') new PerformanceObserver(() => {}).observe({ entryTypes: ['gc'] });
  if (what === 'watchdog') {
    const { Watchdog } = await import(dist('./watchdog/watchdog.js'));
    new Watchdog({}).start();
  }
  // `register` and `register-nowd` are this process started with --import ekg-vitals/register
  const seconds = Number(process.env.BENCH_IDLE_SECONDS ?? 6);
  await new Promise((r) => setTimeout(r, 1500)); // start-up done, the watchdog's thread running
  const a = process.cpuUsage();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const b = process.cpuUsage(a);
  console.log(JSON.stringify({ usPerSecond: (b.user + b.system) / seconds }));
  process.exit(0);
}
