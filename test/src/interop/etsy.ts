import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
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
  port: number;
  proc: ChildProcess;
  /** every flush so far, as the JSON backend wrote it */
  flushes(): EtsyFlush[];
  log(): string;
}

/** Starts the real etsy StatsD server on a random port, with a backend that writes each flush as JSON. */
export function startEtsy(dir: string, extra: Record<string, unknown> = {}): Etsy {
  const port = 30000 + Math.floor(Math.random() * 20000);
  const out = join(dir, `flushes-${port}.jsonl`);
  const backend = fileURLToPath(new URL('./statsd-backend.cjs', import.meta.url));
  const config = join(dir, `config-${port}.js`);
  writeFileSync(
    config,
    JSON.stringify({
      port,
      address: '127.0.0.1',
      mgmt_port: port + 1,
      mgmt_address: '127.0.0.1',
      backends: [backend],
      jsonOut: out,
      ...extra,
    }),
  );
  const main = createRequire(import.meta.url).resolve('statsd/stats.js');
  const proc = spawn(process.execPath, [main, config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout?.on('data', (d) => (log += d));
  proc.stderr?.on('data', (d) => (log += d));
  return {
    port,
    proc,
    log: () => log,
    flushes: () =>
      existsSync(out)
        ? readFileSync(out, 'utf8')
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as EtsyFlush)
        : [],
  };
}
