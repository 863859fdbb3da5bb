import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));

export const cores = availableParallelism();
const hasTaskset = spawnSync('sh', ['-c', 'command -v taskset']).status === 0;
export const hasWrk = spawnSync('sh', ['-c', 'command -v wrk']).status === 0;

/** argv prefixed with `taskset -c <core>` when taskset exists and the machine has the core. */
export function pinned(core: number, argv: string[]): string[] {
  return hasTaskset && core < cores ? ['taskset', '-c', String(core), ...argv] : argv;
}

export interface Load {
  rps: number;
  p99ms: number;
}

function run(argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv as [string, ...string[]];
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.stderr.on('data', (d) => {
      out += d;
    });
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${argv.join(' ')} exited ${code}: ${out}`))));
  });
}

/**
 * Drives `url` for `seconds` from core 1 (the server sits on core 0): wrk when installed (C, so
 * the load generator is not the bottleneck), else autocannon.
 */
export async function drive(url: string, seconds: number, connections = 32, headers: Record<string, string> = {}): Promise<Load> {
  if (hasWrk) {
    const h = Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
    let out = await run(pinned(1, ['wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...h, url]));
    // wrk now and then exits with no report on this VM; one retry, then the run fails loudly
    if (!/Requests\/sec/.test(out)) out = await run(pinned(1, ['wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...h, url]));
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
    const p99 = /99%\s+([\d.]+)(us|ms|s)/.exec(out);
    const p99ms = p99 ? Number(p99[1]) * (p99[2] === 'us' ? 0.001 : p99[2] === 's' ? 1000 : 1) : Number.NaN;
    if (!(rps > 0)) throw new Error(`wrk gave no rate: ${out}`);
    return { rps, p99ms };
  }
  const bin = createRequire(import.meta.url).resolve('autocannon/autocannon.js');
  const h = Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}=${v}`]);
  const out = await run(pinned(1, [process.execPath, bin, '-j', '-c', String(connections), '-d', String(seconds), ...h, url]));
  const j = JSON.parse(out.slice(out.indexOf('{'))) as { requests: { average: number }; latency: { p99: number } };
  return { rps: j.requests.average, p99ms: j.latency.p99 };
}

/** A bench/src/server.ts variant in its own process, pinned to core 0; resolves with its port. */
export interface Server {
  proc: ChildProcess;
  port: number;
}

export interface ServerOptions {
  /** extra node flags, e.g. ['--import', 'ekg-vitals/register'] */
  execArgv?: string[];
  env?: Record<string, string>;
}

export function startServer(variant: string, expose = false, opts: ServerOptions = {}): Promise<Server> {
  // fork runs `execPath ...execArgv server.js`: with taskset, execPath is taskset and node follows
  const pin = pinned(0, [process.execPath]);
  const proc = fork(here('./server.js'), [variant], {
    execPath: pin[0] as string,
    execArgv: [...pin.slice(1), ...(expose ? ['--expose-gc'] : []), ...(opts.execArgv ?? [])],
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout?.on('data', (d) => {
      out += d;
      const m = /ready (\d+)/.exec(out);
      if (m) resolve({ proc, port: Number(m[1]) });
    });
    proc.on('exit', (code) => reject(new Error(`server ${variant} exited ${code}`)));
  });
}

export async function stop(s: Server): Promise<void> {
  s.proc.removeAllListeners('exit');
  const done = new Promise((r) => s.proc.once('exit', r));
  s.proc.kill('SIGKILL');
  await done;
}

/** One side of a paired measurement: a server.ts variant (with its node options) and the path driven. */
export interface PairSide {
  variant: string;
  path?: string;
  opts?: ServerOptions;
}

/**
 * The case's req/s over its base's, `rounds` times: both servers on core 0, started, warmed and
 * driven alike and at the same moment from core 1, so they split one core and the ratio is their
 * per-request cost ratio whatever the machine's drift. Each pair gets servers of its own: with one
 * base shared by several cases, the base ran in every pair and each case only in its turn, idle
 * between, and that alone read bare against bare at 0.944× (A/A, 10 rounds). Rounds alternate which
 * wrk starts first.
 */
export async function pairedRatios(c: PairSide, base: PairSide, rounds: number, seconds: number, connections = 16): Promise<number[]> {
  const pair = [await startServer(base.variant, false, base.opts), await startServer(c.variant, false, c.opts)] as const;
  const [ub, uc] = [`http://127.0.0.1:${pair[0].port}${base.path ?? '/'}`, `http://127.0.0.1:${pair[1].port}${c.path ?? '/'}`];
  const out: number[] = [];
  try {
    await Promise.all([drive(ub, 1, connections), drive(uc, 1, connections)]); // warm up, together
    for (let r = 0; r < rounds; r++) {
      const [a, b] =
        r % 2 === 0
          ? await Promise.all([drive(uc, seconds, connections), drive(ub, seconds, connections)])
          : ((await Promise.all([drive(ub, seconds, connections), drive(uc, seconds, connections)])).reverse() as [Load, Load]);
      out.push(a.rps / b.rps);
    }
  } finally {
    for (const s of pair) await stop(s);
  }
  return out;
}
