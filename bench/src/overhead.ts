/**
 * Per-request overhead of a hello world under each instrumentation, two ways, in one run:
 *  - CPU ns per request with no socket (inprocess.ts): the whole node:http request path in one
 *    process, CPU time over a fixed request count, minus bare's in the same round. No kernel and no
 *    load generator share the measurement, so it resolves what req/s on this VM cannot.
 *  - paired req/s ratio over real sockets: the case and bare, both on core 0, driven at the same
 *    moment from core 1.
 *  - instructions per request (instructions.ts, callgrind, one request at a time): a count, so the
 *    machine's load does not move it; the target is read from it and the paired ratio, not from CPU.
 * Rounds alternate the order of the cases, so that a drifting machine hurts every case alike.
 * Prints JSON for sections.ts (and a line per round on stderr).
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { count, noValgrind } from './instructions.js';
import { pairedRatios, pinned, type ServerOptions } from './load.js';
import { median, type Spread, spreadOf } from './stats.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const PAIRED_ROUNDS = Number(process.env.BENCH_PAIRED_ROUNDS ?? ROUNDS);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 20_000);
const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const REGISTER = createRequire(import.meta.url).resolve('ekg-vitals/register');

/** The case the register target reads its instruction ratio from (the watchdog-on count is not the request path). */
export const TARGET = 'ekg-vitals/register, EKG_WATCHDOG=0';
const INSTRUCTION_REPEAT = Number(process.env.BENCH_INSTRUCTION_REPEAT ?? 3);

/** The median of n callgrind counts of one case (instructions per request outside JIT, GC and timers). */
export async function medianCount(caseSpec: string, n: number): Promise<number> {
  const runs: number[] = [];
  for (let i = 0; i < n; i++) runs.push((await count(caseSpec)).net);
  return median(runs);
}

/**
 * Bare and register again, each after an app-like start-up in the server (server.ts BENCH_APP=1: 50 modules of 4
 * classes, eight kinds of emitter and stream): a clean-room bare is faster than any app with a few libraries, and
 * loading ekg's modules costs a clean room ~700–1,900 instructions a request that such an app has already paid.
 */
export async function appLike(): Promise<{ bare: number; register: number } | undefined> {
  if (noValgrind()) return undefined;
  return {
    bare: await medianCount('bare:BENCH_APP=1', INSTRUCTION_REPEAT),
    register: await medianCount('register:BENCH_APP=1,EKG_WATCHDOG=0', INSTRUCTION_REPEAT),
  };
}

export interface Case {
  label: string;
  variant: string;
  opts?: ServerOptions;
}

const register = (env: Record<string, string> = {}): ServerOptions => ({ execArgv: ['--import', REGISTER], env });
export const CASES: Case[] = [
  { label: 'bare', variant: 'bare' },
  { label: 'bare again', variant: 'bare' },
  { label: 'no-op diagnostics_channel subscriber', variant: 'dc-noop' },
  { label: "ekg's HTTP monitor alone", variant: 'ekg-http' },
  { label: 'ekg-vitals/register', variant: 'bare', opts: register() },
  { label: TARGET, variant: 'bare', opts: register({ EKG_WATCHDOG: '0' }) },
  { label: 'prom-client', variant: 'prom' },
  { label: 'OpenTelemetry', variant: 'otel' },
];

export interface OverheadCase {
  label: string;
  /** CPU ns per request, median over rounds */
  ns: number;
  /** ns per request above bare's: the per-round differences */
  extra: Spread;
  /** bare's CPU per request over this case's (what req/s would be on a saturated core), median */
  cpuRatio: number;
  /** paired req/s ratio vs bare (NaN when not measured) */
  paired: Spread;
  /** instructions per request outside GC and timers (instructions.ts); undefined when not counted */
  instructions?: number;
}

/** Why a case has no instruction count, when it has none (shown in the table). */
export function instructionsSkipped(c: Case): string | undefined {
  const missing = noValgrind();
  if (missing) return missing;
  // under valgrind the main thread runs ~50× slower: the watchdog sees stalls, reads stacks through the
  // inspector, and the count is that, not the request path (the watchdog adds nothing per request on the
  // main thread: its beat is a timer, measured per second below)
  if (c.opts?.execArgv?.length && c.opts.env?.EKG_WATCHDOG !== '0') return 'the watchdog under valgrind sees stalls';
  return undefined;
}

/** The instructions.ts spec of a case: `variant` or `register`, then `:NAME=value,…`. */
function spec(c: Case): string {
  const env = Object.entries(c.opts?.env ?? {});
  return `${c.opts?.execArgv?.length ? 'register' : c.variant}${env.length ? `:${env.map(([k, v]) => `${k}=${v}`).join(',')}` : ''}`;
}

/** Runs `node [execArgv] <file> args` pinned to core 0 and returns its last stdout line as JSON. */
export function pinnedJson<T>(file: string, args: string[], opts: ServerOptions = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    const argv = pinned(0, [process.execPath, ...(opts.execArgv ?? []), here(file), ...args]);
    const p = spawn(argv[0] as string, argv.slice(1), { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim().split('\n').at(-1) as string) as T)
        : reject(new Error(`${file} ${args.join(' ')} exited ${code}`)),
    );
  });
}

export async function measure(cases: Case[], rounds = ROUNDS, seconds = SECONDS, pairedRounds = PAIRED_ROUNDS): Promise<OverheadCase[]> {
  const ns: number[][] = cases.map(() => []);
  const paired: number[][] = cases.map(() => []);
  // CPU per request with no socket (inprocess.ts): one process per case and round, in rotating order
  for (let r = 0; r < rounds; r++) {
    for (const i of cases.map((_, i) => (i + r) % cases.length)) {
      const c = cases[i] as Case;
      const out = await pinnedJson<{ ns: number[] }>('./server.js', [c.variant, 'inprocess', String(REQUESTS), '3'], c.opts);
      (ns[i] as number[]).push(median(out.ns));
    }
    console.error(`  overhead round ${r + 1}: ${cases.map((c, i) => `${c.label} ${Math.round(ns[i]?.at(-1) ?? 0)} ns`).join(', ')}`);
  }
  // paired req/s over real sockets: the case and a bare of its own on core 0 (load.ts pairedRatios)
  if (pairedRounds > 0) {
    for (let i = 1; i < cases.length; i++) {
      const c = cases[i] as Case;
      paired[i] = await pairedRatios(c, cases[0] as Case, pairedRounds, seconds);
      console.error(`  paired ${c.label}: ${(paired[i] as number[]).map((x) => x.toFixed(3)).join(' ')}`);
    }
  }
  // instructions per request: one callgrind run per case (~25 s each); bare and the target's register the median of
  // INSTRUCTION_REPEAT (register's count moves by up to ~1,700 between runs of one build, bare's by ~500)
  const instructions: Array<number | undefined> = [];
  for (const c of cases) {
    const n = c.label === 'bare' || c.label === TARGET ? INSTRUCTION_REPEAT : 1;
    instructions.push(instructionsSkipped(c) ? undefined : await medianCount(spec(c), n));
    console.error(
      `  instructions ${c.label}: ${instructions.at(-1) === undefined ? instructionsSkipped(c) : Math.round(instructions.at(-1) as number)}`,
    );
  }
  const bare = ns[0] as number[];
  return cases.map((c, i) => {
    const mine = ns[i] as number[];
    const extra = mine.map((v, r) => v - (bare[r] as number));
    return {
      label: c.label,
      ns: median(mine),
      extra: spreadOf(extra),
      cpuRatio: median(mine.map((v, r) => (bare[r] as number) / v)),
      paired: spreadOf(i === 0 ? [1] : (paired[i] as number[])),
      instructions: instructions[i],
    };
  });
}

export interface Components {
  /** ns per request: no-op subscribers on both channels over none */
  channel: number;
  /** ns per request: ekg's HTTP monitor over no-op subscribers */
  monitor: number;
  ops: Record<string, number>;
  /** CPU µs per second of an idle process, by what it runs */
  idle: Record<string, number>;
}

/** Each part's cost on its own (components.ts): alternating child processes, medians. */
export async function components(rounds = ROUNDS): Promise<Components> {
  const loop: Record<string, number[]> = { none: [], noop: [], ekg: [] };
  for (let r = 0; r < rounds; r++) {
    for (const k of ['none', 'noop', 'ekg']) loop[k]?.push((await pinnedJson<{ ns: number }>('./components.js', ['loop', k])).ns);
  }
  const diff = (a: string, b: string) => median((loop[a] as number[]).map((v, i) => v - ((loop[b] as number[])[i] as number)));
  const ops = await pinnedJson<Record<string, number>>('./components.js', ['ops']);
  delete ops.sink;
  // idle processes do not compete for the core, so they run side by side
  const idleCases: Array<[string, string, ServerOptions]> = [
    ['nothing', 'none', {}],
    ['monitorEventLoopDelay, 10 ms resolution', 'eld', {}],
    ['GC PerformanceObserver', 'gc', {}],
    ['the watchdog (beat timer and its thread)', 'watchdog', {}],
    ['ekg-vitals/register', 'none', register()],
    ['ekg-vitals/register, EKG_WATCHDOG=0', 'none', register({ EKG_WATCHDOG: '0' })],
  ];
  const idleRuns = await Promise.all(idleCases.map(([, w, o]) => pinnedJson<{ usPerSecond: number }>('./components.js', ['idle', w], o)));
  const idle: Record<string, number> = {};
  idleCases.forEach(([label], i) => {
    idle[label] = (idleRuns[i] as { usPerSecond: number }).usPerSecond;
  });
  return { channel: diff('noop', 'none'), monitor: diff('ekg', 'noop'), ops, idle };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify({ cases: await measure(CASES), appLike: await appLike(), components: await components() }));
}
