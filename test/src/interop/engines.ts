import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A Prometheus-compatible engine started for a test: its query API base and remote-write URL. */
export interface Engine {
  name: string;
  url: string;
  writeUrl: string;
  proc: ChildProcess;
  log(): string;
  stop(): void;
}

const port = () => 20000 + Math.floor(Math.random() * 30000);

async function ready(url: string, proc: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`exited ${proc.exitCode}: ${log().slice(-2000)}`);
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not ready after 30 s: ${log().slice(-2000)}`);
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

/** Debian's victoria-metrics, answering queries for data up to the present moment. */
export async function startVictoria(dir: string, extra: string[] = []): Promise<Engine & { port: number }> {
  const p = port();
  const data = join(dir, `vm-${p}`);
  mkdirSync(data, { recursive: true });
  const { proc, log } = launch('victoria-metrics', 'victoria-metrics', [
    `-httpListenAddr=127.0.0.1:${p}`,
    `-storageDataPath=${data}`,
    '-search.latencyOffset=0s',
    '-search.disableCache',
    '-retentionPeriod=100y',
    ...extra,
  ]);
  const url = `http://127.0.0.1:${p}`;
  await ready(`${url}/health`, proc, log);
  return { name: 'victoria-metrics', url, writeUrl: `${url}/api/v1/write`, proc, log, port: p, stop: () => proc.kill('SIGKILL') };
}

/** Debian's prometheus with its remote-write receiver on. */
export async function startPrometheus(dir: string): Promise<Engine> {
  const p = port();
  const data = join(dir, `prom-${p}`);
  mkdirSync(data, { recursive: true });
  writeFileSync(join(data, 'prometheus.yml'), 'global:\n  scrape_interval: 1m\n');
  const { proc, log } = launch('prometheus', 'prometheus', [
    `--config.file=${join(data, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(data, 'tsdb')}`,
    `--web.listen-address=127.0.0.1:${p}`,
    '--web.enable-remote-write-receiver',
  ]);
  const url = `http://127.0.0.1:${p}`;
  await ready(`${url}/-/ready`, proc, log);
  return { name: 'prometheus', url, writeUrl: `${url}/api/v1/write`, proc, log, stop: () => proc.kill('SIGKILL') };
}
