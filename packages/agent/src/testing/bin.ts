import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

/** The real `ekg-agent` launcher, as users run it. */
export const BIN = fileURLToPath(new URL('../../bin/ekg-agent.js', import.meta.url));

/** A port free for both TCP and UDP on 127.0.0.1 at the time of asking. */
export async function freePort(): Promise<number> {
  for (;;) {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    const udp = dgram.createSocket('udp4');
    const free = await new Promise<boolean>((r) => {
      udp.once('error', () => r(false));
      udp.bind(port, '127.0.0.1', () => r(true));
    });
    udp.close();
    await new Promise((r) => srv.close(r));
    if (free) return port;
  }
}

export interface Started {
  /** null while it runs; the exit code when it exited before its start line */
  code: number | null;
  pid: number;
  /** stdout and stderr so far */
  out(): string;
  ports: number[];
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts the real bin (through `sh -c` when `shell` prefixes it, e.g. `ulimit -n 400 &&`) with two
 * free ports and waits for its start line or its exit. A port taken by another process between
 * `freePort` and the bind is retried with new ports, so a test does not depend on luck.
 */
export async function startBin(
  args: (ports: number[]) => string[],
  env: (ports: number[]) => NodeJS.ProcessEnv = () => ({}),
  o: { shell?: string } = {},
): Promise<Started> {
  for (;;) {
    const ports = [await freePort(), await freePort()];
    const argv = args(ports);
    const fullEnv = { ...process.env, EKG_AGENT_STATSD: '', EKG_AGENT_HTTP: '', HEROKU_METRICS_URL: '', PORT: '', ...env(ports) };
    const proc = o.shell
      ? spawn('/bin/sh', ['-c', `${o.shell} exec "$0" "$@"`, process.execPath, BIN, ...argv], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: fullEnv,
        })
      : spawn(process.execPath, [BIN, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: fullEnv });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
    const code = await Promise.race([
      exited,
      new Promise<'up'>((r) => {
        const check = () => (/ekg-agent: statsd .*\n/.test(out) ? r('up') : undefined);
        proc.stdout.on('data', check);
      }),
    ]);
    if (code !== 'up' && /EADDRINUSE/.test(out)) continue;
    return {
      code: code === 'up' ? null : code,
      pid: proc.pid as number,
      out: () => out,
      ports,
      exited,
      stop: async (signal = 'SIGTERM') => {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
        return exited;
      },
    };
  }
}

/** Waits for a condition, checking every 20 ms; fails naming `what` after `ms`. */
export async function until(fn: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
