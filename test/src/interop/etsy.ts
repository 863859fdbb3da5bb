import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface EtsyFlush {
  ts: number;
  counters: Record<string, number>;
  gauges: Record<string, number>;
  sets: Record<string, number>;
  timers: Record<string, Record<string, number>>;
}

export interface Etsy {
  /** the StatsD port (UDP or TCP, as asked) */
  port: number;
  proc: ChildProcess;
  /** every flush so far, as the JSON backend wrote it */
  flushes(): EtsyFlush[];
  log(): string;
  /** metric lines the server has taken in since it started (read inside it: the acknowledgement) */
  received(): Promise<number>;
  /** SIGTERM: etsy flushes what it holds as it exits; resolves with that last flush */
  stop(): Promise<EtsyFlush | undefined>;
}

const require = createRequire(import.meta.url);
let started = 0;

/**
 * Starts the real etsy StatsD server on a port of the kernel's choosing (port 0; its management
 * port too), with a backend that writes each flush as JSON and reports the port and what arrived.
 * `transport: 'tcp'` where loss is not the subject; a long `flushInterval` with `stop()` gives one
 * flush holding everything sent, with no race against etsy's timer.
 */
export async function startEtsy(dir: string, o: { transport?: 'udp' | 'tcp'; config?: Record<string, unknown> } = {}): Promise<Etsy> {
  const name = `etsy-${process.pid}-${++started}`;
  const out = join(dir, `${name}.jsonl`);
  const backend = fileURLToPath(new URL('./statsd-backend.cjs', import.meta.url));
  const server = require.resolve(`statsd/servers/${o.transport ?? 'udp'}.js`);
  const config = join(dir, `${name}.config.js`);
  writeFileSync(
    config,
    JSON.stringify({
      // strings: etsy writes `port || 8125`, so a number 0 would become 8125; "0" reaches listen() as 0
      servers: [{ server, address: '127.0.0.1', port: '0' }],
      mgmt_port: '0',
      mgmt_address: '127.0.0.1',
      backends: [backend],
      jsonOut: out,
      ...o.config,
    }),
  );
  const main = require.resolve('statsd/stats.js');
  const proc = spawn(process.execPath, [main, config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout?.on('data', (d) => (log += d));
  proc.stderr?.on('data', (d) => (log += d));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const readyFile = `${out}.ready`;
  const deadline = Date.now() + 60_000;
  while (!existsSync(readyFile)) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`etsy statsd exited: ${log}`);
    if (Date.now() > deadline) throw new Error(`etsy statsd did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const ready = JSON.parse(readFileSync(readyFile, 'utf8')) as { port: number; ctl: number };
  const flushes = () =>
    existsSync(out)
      ? readFileSync(out, 'utf8')
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as EtsyFlush)
      : [];
  return {
    port: ready.port,
    proc,
    log: () => log,
    flushes,
    received: () =>
      new Promise((resolve, reject) => {
        let text = '';
        const c = connect(ready.ctl, '127.0.0.1');
        c.setEncoding('utf8');
        c.on('data', (d) => (text += d));
        c.on('end', () => resolve(Number(text)));
        c.on('error', reject);
      }),
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await exited;
      }
      return flushes().at(-1);
    },
  };
}
