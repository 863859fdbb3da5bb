import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listenedPorts } from '../../../packages/ekg/dist/testing/ports.js';

/** The real `ekg-agent` bin and a real app with `--import ekg-vitals/register`, as separate processes. */

const BIN = fileURLToPath(new URL('../../../packages/agent/bin/ekg-agent.js', import.meta.url));
const REGISTER = import.meta.resolve('ekg-vitals/register');

export interface AgentProcess {
  proc: ChildProcess;
  http: string;
  udp: number;
  /** StatsD over TCP: with port 0 it is not the UDP port, and the start line names only that one */
  tcp: number;
  data: string;
  stderr: () => string;
  stop(): Promise<void>;
}

/** Starts the agent on free ports with a fresh data dir (or `data`), and waits for its start line. */
export function startAgent(args: string[] = [], env: Record<string, string> = {}, data?: string): Promise<AgentProcess> {
  const dir = data ?? mkdtempSync(join(tmpdir(), 'ekg-agent-'));
  const proc = spawn(
    process.execPath,
    [BIN, '--statsd', '127.0.0.1:0', '--http', '127.0.0.1:0', '--data', dir, '--console', 'off', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
  let err = '';
  proc.stderr?.on('data', (d) => {
    err += d;
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let found = false;
    const timer = setTimeout(() => reject(new Error(`ekg-agent did not start: ${err}`)), 60_000);
    proc.stdout?.on('data', (d) => {
      out += d;
      const m = /statsd udp(?:\+tcp)? [\d.]+:(\d+)(?: \+ tcp [\d.]+:\d+)?, http (http:\/\/[\d.]+:\d+)/.exec(out);
      if (!m || found) return;
      found = true;
      clearTimeout(timer);
      const http = m[2] as string;
      listenedPorts(proc, { except: [Number(new URL(http).port)] }).then(
        ([tcp]) =>
          resolve({
            proc,
            udp: Number(m[1]),
            tcp: tcp as number,
            http,
            data: dir,
            stderr: () => err,
            stop: async () => {
              if (proc.exitCode === null && proc.signalCode === null) {
                const done = new Promise((r) => proc.once('exit', r));
                proc.kill('SIGTERM');
                await done;
              }
              if (!data) rmSync(dir, { recursive: true, force: true });
            },
          }),
        reject,
      );
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ekg-agent exited ${code}: ${err}`));
    });
  });
}

export interface AppProcess {
  proc: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

const APP = `
import { createServer } from 'node:http';
function burnCpu(ms) {
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) x += Math.sqrt(x + 1);
  return x;
}
const server = createServer((req, res) => {
  if (req.url === '/block') return res.end(String(burnCpu(1500)));
  if (req.url === '/slow') return setTimeout(() => res.end('slow'), 20);
  if (req.url === '/missing') { res.statusCode = 404; return res.end('no'); }
  if (req.url === '/error') { res.statusCode = 500; return res.end('oops'); }
  // some garbage per request, so the GC charts have something to show
  const junk = Array.from({ length: 2000 }, (_, i) => ({ i, s: String(i) }));
  res.end(junk.length ? 'ok' : '');
});
server.listen(0, '127.0.0.1', () => console.log('app ' + server.address().port));
`;

/**
 * A small HTTP app with ekg attached by `--import ekg-vitals/register`, reporting over StatsD to the
 * agent's `statsdPort`: over TCP, as no test using it is about loss (a lost window would only make
 * the test wait for the next one, or miss a stall event that is sent once).
 */
export function startApp(statsdPort: number, env: Record<string, string> = {}): Promise<AppProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'ekg-app-'));
  const file = join(dir, 'app.mjs');
  writeFileSync(file, APP);
  const proc = spawn(process.execPath, ['--import', REGISTER, file], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, EKG_STATSD: `tcp://127.0.0.1:${statsdPort}`, EKG_INTERVAL: '1s', EKG_SERVICE: 'shop', ...env },
  });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout?.on('data', (d) => {
      out += d;
      const m = /app (\d+)/.exec(out);
      if (m)
        resolve({
          proc,
          url: `http://127.0.0.1:${m[1]}`,
          stop: async () => {
            if (proc.exitCode === null && proc.signalCode === null) {
              const done = new Promise((r) => proc.once('exit', r));
              proc.kill('SIGKILL');
              await done;
            }
            rmSync(dir, { recursive: true, force: true });
          },
        });
    });
    proc.once('exit', (code) => reject(new Error(`app exited ${code}`)));
  });
}

/** Sends `n` requests to the app, a few of them slow, 404 or 500. */
export async function traffic(app: AppProcess, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const path = i % 7 === 0 ? '/slow' : i % 11 === 0 ? '/missing' : i % 29 === 0 ? '/error' : '/';
    await fetch(`${app.url}${path}`).then((r) => r.arrayBuffer());
  }
}

/** Polls until `fn` returns a truthy value or `ms` pass. */
export async function until<T>(fn: () => Promise<T | undefined | false>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
