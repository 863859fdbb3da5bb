/**
 * Reporting in an 8-worker cluster: the cluster app for 10 s with 1 s windows reporting over StatsD
 * (UDP); each worker's main-thread time in its reporter, read from the primary's /stats.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';

const app = fileURLToPath(new URL('../../packages/ekg/dist/testing/fixtures/cluster-app.js', import.meta.url));
const ekgDir = fileURLToPath(new URL('../../packages/ekg/', import.meta.url));
const WORKERS = 8;
const SECONDS = 10;

/** One 8-worker cluster reporting over StatsD at 1 s windows; each worker's reporter time comes from its /stats. */
async function run(udpPort: number): Promise<{ perWindowUs: number; windows: number }> {
  const sidePort = 40000 + Math.floor(Math.random() * 10000);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    EKG_INTERVAL: '1s',
    EKG_STATSD: `udp://127.0.0.1:${udpPort}`,
    EKG_PORT: String(sidePort),
  };
  delete env.NODE_OPTIONS;
  const p = spawn(process.execPath, ['--import', 'ekg-vitals/register', app, String(WORKERS)], {
    cwd: ekgDir,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve) => {
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      if (/ready \d+/.test(out)) resolve();
    });
  });
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const stats = (await (await fetch(`http://127.0.0.1:${sidePort}/stats`)).json()) as {
    workers: Record<string, { ekg: { reporters: Record<string, { sent: number; cpuUs: number }> } }>;
  };
  p.kill('SIGTERM');
  await new Promise((r) => p.on('exit', r));
  let us = 0;
  let windows = 0;
  for (const w of Object.values(stats.workers)) {
    for (const r of Object.values(w.ekg.reporters ?? {})) {
      us += r.cpuUs;
      windows += r.sent;
    }
  }
  return { perWindowUs: windows ? us / windows : Number.NaN, windows };
}

const udp = dgram.createSocket('udp4');
await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
let bytes = 0;
udp.on('message', (m) => {
  bytes += m.length;
});
const t0 = Date.now();
const r = await run(udp.address().port);
const seconds = (Date.now() - t0) / 1000;
udp.close();
console.log(
  JSON.stringify({
    workers: WORKERS,
    seconds: SECONDS,
    perWindowPerProcessUs: r.perWindowUs,
    windows: r.windows,
    bytesPerSecond: bytes / seconds,
  }),
);
