/**
 * `npm start`: the most complete chain that exists so far. The Express example with ekg at /ops,
 * reporting every window over StatsD into a local etsy StatsD server (the agent and its dashboard
 * take this place when they exist), a little traffic, and the URLs to open. Ctrl-C stops it all.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const STATSD_PORT = Number(process.env.STATSD_PORT ?? 8125);
const dir = fileURLToPath(new URL('../../.tmp/', import.meta.url));
mkdirSync(dir, { recursive: true });
const flushes = `${dir}statsd-flushes.jsonl`;
writeFileSync(flushes, '');

let statsd: ChildProcess | undefined;
try {
  const main = createRequire(import.meta.url).resolve('statsd/stats.js');
  const backend = fileURLToPath(new URL('../../test/dist/interop/statsd-backend.cjs', import.meta.url));
  writeFileSync(
    `${dir}statsd.json`,
    JSON.stringify({
      port: STATSD_PORT,
      address: '127.0.0.1',
      mgmt_port: STATSD_PORT + 1,
      mgmt_address: '127.0.0.1',
      flushInterval: 10_000,
      backends: [backend],
      jsonOut: flushes,
    }),
  );
  statsd = spawn(process.execPath, [main, `${dir}statsd.json`], { stdio: ['ignore', 'ignore', 'inherit'] });
  process.env.EKG_STATSD = `udp://127.0.0.1:${STATSD_PORT}`;
} catch (err) {
  console.log(`(StatsD server not started: ${(err as Error).message}; the app runs without it)`);
}

const { start } = await import('./express.js');
const { PORT, printUrls } = await import('./shared.js');
const server = await start(PORT);
const port = (server.address() as { port: number }).port;
printUrls('Express', port);
if (statsd) console.log(`  ekg reports every window to the etsy StatsD server on udp://127.0.0.1:${STATSD_PORT}`);
console.log('\nekg closes a window every 10 s; /ops/stats and /ops/metrics show the last one.');

const traffic = setInterval(() => {
  fetch(`http://127.0.0.1:${port}/${Math.random() < 0.2 ? 'slow' : ''}`).catch(() => {});
}, 250);
traffic.unref();

// one line per StatsD flush: what arrived from the app
let seen = 0;
const watch = setInterval(() => {
  const lines = readFileSync(flushes, 'utf8').trim().split('\n').filter(Boolean);
  for (const line of lines.slice(seen)) {
    const f = JSON.parse(line) as { counters: Record<string, number>; gauges: Record<string, number> };
    if (!Object.keys(f.gauges).some((k) => k.startsWith('runtime.'))) continue; // a flush before the first window
    const get = (o: Record<string, number>, prefix: string) => Object.entries(o).find(([k]) => k.startsWith(prefix))?.[1];
    const reqs = get(f.counters, 'http.requests.total;') ?? 0;
    const p99 = get(f.gauges, 'http.duration.p99;') ?? 0;
    const heap = (get(f.gauges, 'runtime.memory.heap.used;') ?? 0) / 1024 / 1024;
    const bad = f.counters['statsd.bad_lines_seen'] ?? 0;
    console.log(`statsd flush: ${reqs} requests, p99 ${p99} ms, heap ${heap.toFixed(1)} MiB, ${bad} bad lines`);
  }
  seen = lines.length;
}, 2000);
watch.unref();

const stop = () => {
  console.log('\nstopping');
  statsd?.kill();
  server.close();
  server.closeAllConnections();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
