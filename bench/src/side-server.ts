/**
 * The zero-code side server (EKG_PORT, answered from the watchdog's thread) against its peers: an
 * app that serves nothing else, started with `--import ekg-vitals/register`, its /metrics and /heartbeat
 * driven alone from core 1 while the process (both its threads) sits on core 0; then, in the same
 * round, a bare hello world, prom-client's /metrics and OpenTelemetry's /metrics (server.ts). Rounds
 * alternate, and each ratio is taken within its round, so a drifting machine hurts both sides alike.
 * Prints JSON for sections.ts (and a line per round on stderr).
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { drive, pinned, startServer, stop } from './load.js';
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

/** ekg's side server: req/s of /metrics and of /heartbeat on EKG_PORT. */
async function side(): Promise<{ metrics: number; heartbeat: number; metricsP99: number; heartbeatP99: number }> {
  const port = 20_000 + Math.floor(Math.random() * 30_000);
  const argv = pinned(0, [process.execPath, '--import', REGISTER, '-e', 'setInterval(() => {}, 1e9)']);
  const app = spawn(argv[0] as string, argv.slice(1), {
    env: { ...process.env, EKG_PORT: String(port), EKG_INTERVAL: '1s' },
    stdio: 'ignore',
  });
  try {
    const base = `http://127.0.0.1:${port}`;
    await until(`${base}/heartbeat`);
    await new Promise((r) => setTimeout(r, 1500)); // the first window closes: its pages are posted to the side server
    const m = await drive(`${base}/metrics`, SECONDS, CONNECTIONS);
    const h = await drive(`${base}/heartbeat`, SECONDS, CONNECTIONS);
    return { metrics: m.rps, heartbeat: h.rps, metricsP99: m.p99ms, heartbeatP99: h.p99ms };
  } finally {
    const done = new Promise((r) => app.once('exit', r));
    app.kill('SIGKILL');
    await done;
  }
}

async function peer(variant: string, path: string): Promise<{ rps: number; p99ms: number }> {
  const s = await startServer(variant);
  try {
    return await drive(`http://127.0.0.1:${s.port}${path}`, SECONDS, CONNECTIONS);
  } finally {
    await stop(s);
  }
}

const rows: Record<string, number[]> = {};
const add = (k: string, v: number) => {
  rows[k] ??= [];
  rows[k].push(v);
};
for (let r = 0; r < ROUNDS; r++) {
  const e = await side();
  const hello = await peer('bare', '/');
  const prom = await peer('prom', '/metrics');
  const otel = await peer('otel', '/metrics');
  add('ekgMetrics', e.metrics);
  add('ekgHeartbeat', e.heartbeat);
  add('ekgMetricsP99', e.metricsP99);
  add('ekgHeartbeatP99', e.heartbeatP99);
  add('hello', hello.rps);
  add('helloP99', hello.p99ms);
  add('prom', prom.rps);
  add('promP99', prom.p99ms);
  add('otel', otel.rps);
  add('otelP99', otel.p99ms);
  add('metricsVsProm', e.metrics / prom.rps);
  add('metricsVsOtel', e.metrics / otel.rps);
  add('heartbeatVsHello', e.heartbeat / hello.rps);
  console.error(
    `  side-server round ${r + 1}: ekg /metrics ${Math.round(e.metrics)}, /heartbeat ${Math.round(e.heartbeat)}; hello ${Math.round(hello.rps)}, prom-client /metrics ${Math.round(prom.rps)}, OpenTelemetry /metrics ${Math.round(otel.rps)}`,
  );
}
const out: Record<string, Spread> = {};
for (const [k, v] of Object.entries(rows)) out[k] = spreadOf(v);
console.log(JSON.stringify({ rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, ...out }));
