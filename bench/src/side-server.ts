/**
 * The zero-code side server (EKG_PORT, answered from the watchdog's thread) against its peers: an
 * app that serves nothing else, started with `--import ekg-vitals/register`, beside a bare hello world,
 * prom-client's /metrics and OpenTelemetry's /metrics (server.ts), every process pinned to core 0.
 * Paired rounds: ekg and its peer are driven at the same moment from core 1 (one wrk each), so they
 * split one core and their req/s ratio is their per-request cost ratio, whatever the machine's drift;
 * the pairs alternate order from round to round. Prints JSON for sections.ts (and a line per round on
 * stderr): `node dist/side-server.js` from bench/ (BENCH_ROUNDS, BENCH_SECONDS).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { drive, type Load, pinned, type Server, startServer, stop } from './load.js';
import { type Spread, spreadOf } from './stats.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const CONNECTIONS = 20;
const REGISTER = createRequire(import.meta.url).resolve('ekg-vitals/register');

async function until(url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} never answered`);
}

/** The app with ekg's side server on EKG_PORT (1 s windows: its pages change under the load, as in production). */
async function startSide(): Promise<{ proc: ChildProcess; base: string }> {
  const port = 20_000 + Math.floor(Math.random() * 30_000);
  const argv = pinned(0, [process.execPath, '--import', REGISTER, '-e', 'setInterval(() => {}, 1e9)']);
  const proc = spawn(argv[0] as string, argv.slice(1), {
    env: { ...process.env, EKG_PORT: String(port), EKG_INTERVAL: '1s' },
    stdio: 'ignore',
  });
  const base = `http://127.0.0.1:${port}`;
  await until(`${base}/heartbeat`);
  await new Promise((r) => setTimeout(r, 1500)); // the first window closes: the side server has its pages
  return { proc, base };
}

const side = await startSide();
const peers: Record<'hello' | 'prom' | 'otel', Server> = {
  hello: await startServer('bare'),
  prom: await startServer('prom'),
  otel: await startServer('otel'),
};
const peerUrl = (k: keyof typeof peers, path: string) => `http://127.0.0.1:${peers[k].port}${path}`;
/** what Prometheus sends when it scrapes (prom-client's handler here ignores both; ekg serves its page gzipped) */
const SCRAPE = {
  accept: 'application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1',
  'accept-encoding': 'gzip',
};
const pairs: Array<{ key: string; ekg: string; peer: string; headers?: Record<string, string> }> = [
  { key: 'metricsVsProm', ekg: `${side.base}/metrics`, peer: peerUrl('prom', '/metrics') },
  { key: 'scrapeVsProm', ekg: `${side.base}/metrics`, peer: peerUrl('prom', '/metrics'), headers: SCRAPE },
  { key: 'metricsVsOtel', ekg: `${side.base}/metrics`, peer: peerUrl('otel', '/metrics') },
  { key: 'heartbeatVsHello', ekg: `${side.base}/heartbeat`, peer: peerUrl('hello', '/') },
];
const rows: Record<string, number[]> = {};
const add = (k: string, v: number) => {
  rows[k] ??= [];
  rows[k].push(v);
};
try {
  for (const p of pairs) await Promise.all([drive(p.ekg, 1, CONNECTIONS, p.headers), drive(p.peer, 1, CONNECTIONS, p.headers)]); // warm up
  for (let r = 0; r < ROUNDS; r++) {
    const line: string[] = [];
    for (const p of r % 2 ? [...pairs].reverse() : pairs) {
      const [e, q]: Load[] = await Promise.all([
        drive(p.ekg, SECONDS, CONNECTIONS, p.headers),
        drive(p.peer, SECONDS, CONNECTIONS, p.headers),
      ]);
      add(p.key, (e as Load).rps / (q as Load).rps);
      add(`${p.key}:ekg`, (e as Load).rps);
      add(`${p.key}:peer`, (q as Load).rps);
      add(`${p.key}:ekgP99`, (e as Load).p99ms);
      add(`${p.key}:peerP99`, (q as Load).p99ms);
      line.push(
        `${p.key} ${((e as Load).rps / (q as Load).rps).toFixed(2)} (${Math.round((e as Load).rps)}/${Math.round((q as Load).rps)})`,
      );
    }
    console.error(`  side-server round ${r + 1}: ${line.join(', ')}`);
  }
} finally {
  side.proc.kill('SIGKILL');
  for (const s of Object.values(peers)) await stop(s);
}
const out: Record<string, Spread> = {};
for (const [k, v] of Object.entries(rows)) out[k] = spreadOf(v);
console.log(JSON.stringify({ rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, ...out }));
