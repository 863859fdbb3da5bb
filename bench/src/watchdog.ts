/**
 * The stall watchdog: hello-world req/s with it on against off (paired rounds: both servers on core 0,
 * driven at the same moment), the time from a stall's start to the watchdog's stderr line, and the
 * time to capture the main thread's stack. Prints JSON for sections.ts.
 */
import { spawn } from 'node:child_process';
import { drive, startServer, stop } from './load.js';
import { median } from './stats.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);

const off = await startServer('ekg');
const on = await startServer('ekg-watchdog');
const ratios: number[] = [];
try {
  await Promise.all([drive(`http://127.0.0.1:${off.port}/`, 1, 16), drive(`http://127.0.0.1:${on.port}/`, 1, 16)]);
  for (let r = 0; r < ROUNDS; r++) {
    const [a, b] = await Promise.all([
      drive(`http://127.0.0.1:${on.port}/`, SECONDS, 16),
      drive(`http://127.0.0.1:${off.port}/`, SECONDS, 16),
    ]);
    ratios.push(a.rps / b.rps);
  }
} finally {
  await stop(off);
  await stop(on);
}

/** One stall of 2 s in a child: when its stderr line arrives after the stall began, and the capture time. */
const REGISTER = import.meta.resolve('ekg-vitals/register');
const INDEX = import.meta.resolve('ekg-vitals');
function stallOnce(): Promise<{ detectMs: number; captureMs: number; readyMs: number }> {
  const port = 20000 + Math.floor(Math.random() * 30000);
  const app = `
import { registered } from '${INDEX}';
function burnCpu(ms) { const end = Date.now() + ms; let x = 0; while (Date.now() < end) x += Math.sqrt(x + 1); return x; }
setTimeout(() => { process.stdout.write('START ' + Date.now() + '\\n'); burnCpu(2000); }, 300);
setTimeout(() => { process.stdout.write('CAPTURE ' + registered().watchdog.lastCaptureMs + '\\n'); process.exit(0); }, 3000);
`;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', REGISTER, '--input-type=module', '-e', app], {
      env: { ...process.env, EKG_INTERVAL: '10s', EKG_PORT: String(port) },
    });
    let out = '';
    let detectedAt = 0;
    let readyAt = 0;
    let polling = false;
    // from the block's start, /ready on the side port until it answers 503
    const poll = async () => {
      polling = true;
      while (!readyAt && p.exitCode === null) {
        const s = await fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(2000) }).then(
          (r) => r.status,
          () => 0,
        );
        if (s === 503) readyAt = Date.now();
        else await new Promise((r) => setTimeout(r, 10));
      }
    };
    p.stderr.on('data', (d: Buffer) => {
      if (!detectedAt && String(d).includes('has been blocked')) detectedAt = Date.now();
    });
    p.stdout.on('data', (d) => {
      out += d;
      if (/START/.test(out) && !polling) void poll();
    });
    p.on('close', () => {
      const start = Number(/START (\d+)/.exec(out)?.[1]);
      const capture = Number(/CAPTURE ([\d.]+)/.exec(out)?.[1]);
      if (!start || !detectedAt) reject(new Error(`no stall seen: ${out}`));
      else resolve({ detectMs: detectedAt - start, captureMs: capture, readyMs: readyAt ? readyAt - start : Number.NaN });
    });
  });
}
const stalls: Array<{ detectMs: number; captureMs: number; readyMs: number }> = [];
for (let i = 0; i < 5; i++) stalls.push(await stallOnce());
console.log(
  JSON.stringify({
    ratio: median(ratios),
    min: Math.min(...ratios),
    max: Math.max(...ratios),
    rounds: ratios.length,
    detectMs: median(stalls.map((s) => s.detectMs)),
    captureMs: median(stalls.map((s) => s.captureMs)),
    readyMs: median(stalls.map((s) => s.readyMs)),
  }),
);
