/**
 * Instructions per request, counted by valgrind's callgrind: stable on a shared VM where CPU time
 * is not (two runs of one case agree within ~0.5 %). Each case is a hello world served over an
 * in-memory connection (inprocess.ts) with one part of ekg on; counting starts after warm-up
 * (`callgrind_control -i on`) and covers the main thread only, run with V8's `--single-threaded`
 * so that garbage collection is counted where it happens. JIT compilation is subtracted (it is
 * start-up, and its timing varies); GC is shown apart, as it moves with where a run's collections fall.
 *   node dist/instructions.js [case...]   (from bench/; cases below; default all; BENCH_REQUESTS; BENCH_BATCH
 *   requests at a time, default 1 (server.ts); BENCH_REPEAT=n median of n runs; BENCH_KEEP=dir
 *   keeps each case's callgrind file for callgrind_annotate; BENCH_REGISTER=/abs/register.js another build's)
 * Per case (`case:NAME=value`): BENCH_LIB=/abs/dist/index.js another build of the library for the `ekg*`
 * variants; BENCH_PATH=/ops/heartbeat the path requested (mounted ekg answers it; bare's hello world ignores
 * it, so `bare:BENCH_PATH=/ops/heartbeat` is the like-for-like base); `ekg-watchdog:BENCH_STALL_MS=600000`
 * the watchdog on with a threshold valgrind's slowed thread stays under (its beat is the default 250 ms).
 * A case is a server.ts variant, or `register` (bare under `--import ekg-vitals/register`), either
 * followed by `:NAME=value,…` for its environment (`register:EKG_WATCHDOG=0`).
 * Timers (the event-loop delay monitor, the window's timer, the watchdog's beat) fire by wall time,
 * which valgrind slows ~100×: their cost per request here is inflated, so it is shown apart
 * ("timers"); components.ts measures them per second. With BENCH_REQUESTS=10000 every case's JIT
 * compile in the counted phase came out equal (14,249 per request): fewer requests leave tiering
 * still moving, and cases then differ by thousands of instructions for that alone.
 * Bare is a clean room: node's own constructors (EventEmitter, streams) have seen few object shapes, so
 * their property accesses are monomorphic. Constructing eight kinds of EventEmitter or of stream once at
 * start (`bare:BENCH_IMPORT=/tmp/ee.mjs`) adds ~1,500 instructions to every later request (megamorphic
 * LoadIC/StoreIC/KeyedStoreIC in the request path), as does loading a graph of 200 unrelated classes
 * (~900–1,160); any real app pays this with or without ekg, and over such a bare register's excess falls
 * from ~2,650 to ~2,100 (issue 20). `BENCH_APP=1` (server.ts) does such a start-up in the server itself:
 * `bare:BENCH_APP=1 register:BENCH_APP=1,EKG_WATCHDOG=0` compares ekg with an app that is no clean room.
 * Over a clean bare, loading ekg's modules alone (nothing started) costs +700 to +1,860 a request by the same
 * effect, which is the ~800 that the parts' costs left unexplained; node's own modules that ekg loads (cluster,
 * https, dgram, zlib, worker_threads…) cost ~0 (issue 20). Over a bare that has loaded 200 classes and
 * made its emitters, register's extra is the sampler's (HTTP monitor + GC observer), nothing else.
 * Medians of 3 (BENCH_REPEAT=3): clean bare 52,815, register +2,827 (0.949×); after 200 classes and the
 * emitters, bare 54,283, register +1,218 (0.978×); `BENCH_APP=1` bare 54,231, register +1,386 (0.975×).
 * One case's count moves between runs (register's by up to ~1,700): BENCH_REPEAT=n keeps the median of n.
 * 2026-12-03, medians of 3, this build against the one before (BENCH_REGISTER/BENCH_LIB): bare 52,780; register
 * EKG_WATCHDOG=0 54,991 (0.960×), was 55,240 (0.955×); mounted /ops/heartbeat 58,903 against a bare asked the
 * same path 52,873 (0.898×), was 59,372 (0.891×). The GC observer costs ~93,000 a collection (~43 collections
 * per 10,000 requests, ~400 a request), 88,000 of it node's own entry (observerCallback, MakeSyncCallback).
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const N = Number(process.env.BENCH_REQUESTS ?? 10_000);
// one request at a time by default, as wrk and browsers send them (server.ts BENCH_BATCH)
const BATCH = process.env.BENCH_BATCH ?? '1';
// Not `register` with its watchdog: under valgrind the main thread runs ~50× slower, the watchdog sees
// stalls and captures them through the inspector, and the count is then the inspector hashing every
// script (SHA256, 88k instructions a request seen), not the request path.
const CASES = ['bare', 'dc-noop', 'ekg-http', 'ekg', 'register:EKG_WATCHDOG=0'];
// BENCH_REGISTER=/abs/dist/register.js: another build's register (before/after a change)
const REGISTER = process.env.BENCH_REGISTER ?? createRequire(import.meta.url).resolve('ekg-vitals/register');

/** `variant[:NAME=value,…]` → the server variant, node flags and environment. */
function parseCase(spec: string): { variant: string; execArgv: string[]; env: Record<string, string> } {
  const [name = '', vars = ''] = spec.split(':');
  const env = Object.fromEntries(vars ? vars.split(',').map((kv) => kv.split('=') as [string, string]) : []);
  return name === 'register' ? { variant: 'bare', execArgv: ['--import', REGISTER], env } : { variant: name, execArgv: [], env };
}

/** One case under callgrind: instructions per request (total, JIT compile, GC). */
export async function count(spec: string): Promise<{ total: number; compile: number; gc: number; timers: number; net: number }> {
  const { variant, execArgv, env } = parseCase(spec);
  const dir = mkdtempSync(join(tmpdir(), 'ekg-cg-'));
  const go = join(dir, 'go');
  const server = fileURLToPath(new URL('./server.js', import.meta.url));
  const p = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      '--instr-atstart=no',
      '--separate-threads=yes',
      `--callgrind-out-file=${join(dir, 'out')}`,
      process.execPath,
      '--single-threaded',
      ...execArgv,
      server,
      variant,
      'inprocess',
      String(N),
      '1',
    ],
    { env: { ...process.env, ...env, BENCH_CALLGRIND: go, BENCH_WARM: '3', BENCH_BATCH: BATCH }, stdio: ['ignore', 'pipe', 'ignore'] },
  );
  let out = '';
  p.stdout.on('data', (d) => {
    out += d;
    if (out.includes('warm') && !existsSync(go)) {
      spawnSync('callgrind_control', ['-i', 'on', String(p.pid)]);
      spawnSync('touch', [go]);
    }
  });
  await new Promise((r) => p.on('exit', r));
  const main = readdirSync(dir).find((f) => f.endsWith('-01')) as string;
  const ann = spawnSync('callgrind_annotate', ['--inclusive=yes', '--threshold=100', join(dir, main)], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  }).stdout;
  // BENCH_KEEP=<dir>: keep each case's callgrind file there, for callgrind_annotate by function (bisection)
  if (process.env.BENCH_KEEP) {
    mkdirSync(process.env.BENCH_KEEP, { recursive: true });
    copyFileSync(join(dir, main), join(process.env.BENCH_KEEP, `${spec.replace(/[^\w=.-]+/g, '_')}.callgrind`));
  }
  rmSync(dir, { recursive: true, force: true });
  const sum = (re: RegExp) =>
    ann
      .split('\n')
      .filter((l) => re.test(l))
      .reduce((a, l) => a + Number((l.trim().split(' ')[0] as string).replace(/,/g, '')), 0);
  const total = sum(/PROGRAM TOTALS/);
  const compile = sum(
    /Runtime_CompileOptimized\(|Runtime_CompileLazy\(|Runtime_CompileBaseline|Runtime_InstallBaselineCode\(|Runtime_NotifyDeoptimized\(/,
  );
  const gc = sum(/Heap::CollectGarbage\(/);
  // timer callbacks (libuv's timer run: the event-loop delay monitor, the window's timer, the beat)
  const timers = sum(/timer\.c:uv__run_timers \[/);
  // what a request costs: JIT compile is start-up, GC lands where a run's collections fall (under valgrind
  // bistable, ~2,200 or ~4,100 a request), timers fire by wall time that valgrind slows; none is the request path
  const net = (total - compile - gc - timers) / N;
  return { total: total / N, compile: compile / N, gc: gc / N, timers: timers / N, net };
}

/** Why instructions cannot be counted here, or undefined when they can. */
export function noValgrind(): string | undefined {
  return spawnSync('sh', ['-c', 'command -v valgrind && command -v callgrind_control']).status === 0
    ? undefined
    : 'valgrind is not installed (apt-get install valgrind)';
}

async function main(): Promise<void> {
  const missing = noValgrind();
  if (missing) {
    console.error(`instructions: ${missing}`);
    process.exit(1);
  }
  const cases = process.argv.slice(2).length ? process.argv.slice(2) : CASES;
  // BENCH_REPEAT=n: each case n times, the median run kept (register's count moves by up to ~1,700 between
  // runs of one build, bare's by ~500: where timers and collections fall under valgrind's slowed wall clock)
  const repeat = Math.max(1, Number(process.env.BENCH_REPEAT ?? 1));
  let bare: number | undefined;
  for (const c of cases) {
    const runs: Awaited<ReturnType<typeof count>>[] = [];
    for (let i = 0; i < repeat; i++) runs.push(await count(c));
    runs.sort((a, b) => a.net - b.net);
    const r = runs[(runs.length - 1) >> 1] as (typeof runs)[number];
    const spread =
      repeat > 1
        ? ` (${repeat} runs, ${Math.round((runs[0] as typeof r).net)}–${Math.round((runs[runs.length - 1] as typeof r).net)})`
        : '';
    // the first case is the base when it is bare (`bare` or `bare:BENCH_IMPORT=…`)
    const isBase = c === cases[0] && c.split(':')[0] === 'bare';
    if (isBase) bare = r.net;
    const extra = bare !== undefined && !isBase ? `, ${Math.round(r.net - bare)} over bare (${(bare / r.net).toFixed(3)}× bare)` : '';
    console.log(
      `${c}: ${Math.round(r.net)} instructions per request outside GC and timers${spread}${extra}; GC ${Math.round(r.gc)}, timers ${Math.round(r.timers)}`,
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
