/**
 * CPU of reporting in an 8-worker cluster: the same idle cluster app for 10 s with 1 s windows,
 * once reporting over StatsD (UDP) and once not; total CPU of all nine processes from /proc.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const app = fileURLToPath(new URL('../../packages/ekg/dist/testing/fixtures/cluster-app.js', import.meta.url));
const ekgDir = fileURLToPath(new URL('../../packages/ekg/', import.meta.url));
const WORKERS = 8;
const SECONDS = 10;

function cpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
  } catch {
    return 0;
  }
}

async function run(report: boolean, udpPort: number): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env, EKG_INTERVAL: '1s' };
  if (report) env.EKG_STATSD = `udp://127.0.0.1:${udpPort}`;
  delete env.NODE_OPTIONS;
  const p = spawn(process.execPath, ['--import', 'ekg/register', app, String(WORKERS)], {
    cwd: ekgDir,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const pids = await new Promise<number[]>((resolve) => {
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = /ready \d+ ([\d,]+)/.exec(out);
      if (m) resolve([p.pid ?? 0, ...(m[1] as string).split(',').map(Number)]);
    });
  });
  await new Promise((r) => setTimeout(r, 1500)); // past start-up
  const before = pids.reduce((a, pid) => a + cpuMs(pid), 0);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const after = pids.reduce((a, pid) => a + cpuMs(pid), 0);
  p.kill('SIGTERM');
  await new Promise((r) => p.on('exit', r));
  return after - before;
}

const udp = dgram.createSocket('udp4');
await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
let bytes = 0;
udp.on('message', (m) => {
  bytes += m.length;
});
const port = udp.address().port;
const off = await run(false, port);
const on = await run(true, port);
udp.close();
// per window and process: (CPU with − without) / (windows × processes)
const processes = WORKERS + 1;
console.log(
  JSON.stringify({
    workers: WORKERS,
    seconds: SECONDS,
    cpuOffMs: off,
    cpuOnMs: on,
    perWindowPerProcessUs: ((on - off) * 1000) / (SECONDS * processes),
    bytesPerSecond: bytes / (SECONDS + 1.5),
  }),
);
