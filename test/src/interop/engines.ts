import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listenedPorts } from '../../../packages/ekg/dist/testing/ports.js';

/** A Prometheus-compatible engine started for a test: its query API base and remote-write URL. */
export interface Engine {
  name: string;
  url: string;
  writeUrl: string;
  proc: ChildProcess;
  log(): string;
  stop(): void;
}

let started = 0;
/** A directory name no other engine of this run (or another run beside it) uses. */
const fresh = (dir: string, name: string) => join(dir, `${name}-${process.pid}-${++started}`);

/** The HTTP port of a program asked for port 0: of the ports it listens on, the one answering `path`. */
async function httpPort(proc: ChildProcess, log: () => string, path: string, count: number): Promise<number> {
  const end = Date.now() + 60_000;
  for (;;) {
    const ports = await listenedPorts(proc, { count }).catch((e: Error) => {
      throw new Error(`${e.message}: ${log().slice(-2000)}`);
    });
    for (const p of ports) {
      // one of the ports may be a plain TCP listener (VictoriaMetrics' Graphite one) that never answers HTTP:
      // without a timeout the fetch waits for undici's 300 s headers timeout
      const ok = await fetch(`http://127.0.0.1:${p}${path}`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return p;
    }
    if (Date.now() > end) throw new Error(`not ready after 60 s: ${log().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function launch(name: string, cmd: string, args: string[]): { proc: ChildProcess; log: () => string } {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d).slice(-20_000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  proc.on('error', (e) => keep(Buffer.from(`${name}: ${e.message}`)));
  return { proc, log: () => out };
}

/**
 * Debian's victoria-metrics, answering queries for data up to the present moment. Every listener
 * is asked for port 0; `ports` are all the TCP ports it took (with `-graphiteListenAddr=127.0.0.1:0`,
 * the one that is not `port` is Graphite's).
 */
export async function startVictoria(dir: string, extra: string[] = []): Promise<Engine & { port: number; ports: number[] }> {
  const data = fresh(dir, 'vm');
  mkdirSync(data, { recursive: true });
  const { proc, log } = launch('victoria-metrics', 'victoria-metrics', [
    '-httpListenAddr=127.0.0.1:0',
    `-storageDataPath=${data}`,
    '-search.latencyOffset=0s',
    '-search.disableCache',
    '-retentionPeriod=100y',
    ...extra,
  ]);
  const listeners = 1 + extra.filter((a) => /^-\w+ListenAddr=/.test(a)).length;
  const p = await httpPort(proc, log, '/health', listeners);
  const url = `http://127.0.0.1:${p}`;
  const ports = await listenedPorts(proc, { count: listeners });
  return { name: 'victoria-metrics', url, writeUrl: `${url}/api/v1/write`, proc, log, port: p, ports, stop: () => proc.kill('SIGKILL') };
}

/** Debian's prometheus with its remote-write receiver on. */
export async function startPrometheus(dir: string): Promise<Engine> {
  const data = fresh(dir, 'prom');
  mkdirSync(data, { recursive: true });
  writeFileSync(join(data, 'prometheus.yml'), 'global:\n  scrape_interval: 1m\n');
  const { proc, log } = launch('prometheus', 'prometheus', [
    `--config.file=${join(data, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(data, 'tsdb')}`,
    '--web.listen-address=127.0.0.1:0',
    '--web.enable-remote-write-receiver',
  ]);
  const url = `http://127.0.0.1:${await httpPort(proc, log, '/-/ready', 1)}`;
  return { name: 'prometheus', url, writeUrl: `${url}/api/v1/write`, proc, log, stop: () => proc.kill('SIGKILL') };
}
