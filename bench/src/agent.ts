/**
 * ekg-agent against the etsy StatsD server, fed by the same generator (../shared/tools/statsd-blast.c),
 * each server on core 0 and the generator on core 1: the highest offered rate at which ≥ 99.9 % of
 * metrics arrive, with 20 lines per packet and with 1; then RSS and flush time with 100k series, the
 * SQLite store on (the default; BENCH_AGENT_STORE=off leaves it out).
 * Prints JSON for run.ts. `BENCH_AGENT_ONLY=series` runs the 100k-series part alone, `=agent20` the agent's ladder
 * at 20 lines a packet alone.
 * The generator's source: $STATSD_BLAST_SRC, else ../shared/tools/ beside the checkout, else beside the
 * main checkout of a git worktree (a worktree under /work/wt/<name> has no ../shared of its own).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pinned } from './load.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(root, 'bench/.bin/statsd-blast');
function blastSource(): string {
  if (process.env.STATSD_BLAST_SRC) return process.env.STATSD_BLAST_SRC;
  const beside = join(root, '../shared/tools/statsd-blast.c');
  if (existsSync(beside)) return beside;
  try {
    // a linked worktree: its common git dir is the main checkout's .git
    const common = resolve(root, execFileSync('git', ['rev-parse', '--git-common-dir'], { cwd: root, encoding: 'utf8' }).trim());
    const main = join(dirname(common), '../shared/tools/statsd-blast.c');
    if (existsSync(main)) return main;
  } catch {
    // not a git checkout
  }
  throw new Error(`statsd-blast.c not found at ${beside}: set STATSD_BLAST_SRC`);
}
const src = blastSource();
// rebuilt when the source is newer than the binary
if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) {
  mkdirSync(join(root, 'bench/.bin'), { recursive: true });
  execFileSync('gcc', ['-O2', '-o', bin, src]);
}
const require = createRequire(import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'ekg-agent-bench-'));
const SECONDS = Number(process.env.BENCH_AGENT_SECONDS ?? 3);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The agent's /api/v1/self. A loaded machine can delay a poll past the server's keep-alive timeout,
 * which then closes the connection as fetch reuses it (ECONNRESET): such a poll is tried again.
 */
async function selfOf(http: number): Promise<unknown> {
  for (let i = 0; ; i++) {
    try {
      return await (await fetch(`http://127.0.0.1:${http}/api/v1/self`)).json();
    } catch (err) {
      if (i >= 3) throw err;
      await sleep(100);
    }
  }
}

/** Resolves once the server says it listens (then a moment for the socket to settle). */
function upWhen(proc: ChildProcess, re: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 60_000);
    proc.stdout?.on('data', (d: Buffer) => {
      out += d;
      if (re.test(out)) {
        clearTimeout(t);
        setTimeout(resolve, 300);
      }
    });
  });
}

interface Server {
  name: string;
  proc: ChildProcess;
  port: number;
  received(): Promise<number>;
}

async function startEtsy(port: number): Promise<Server> {
  const out = join(dir, `etsy-${port}.jsonl`);
  writeFileSync(out, '');
  const backend = join(root, 'test/dist/interop/statsd-backend.cjs');
  writeFileSync(
    join(dir, `etsy-${port}.js`),
    JSON.stringify({
      port,
      address: '127.0.0.1',
      mgmt_port: port + 1,
      mgmt_address: '127.0.0.1',
      flushInterval: 1000,
      backends: [backend],
      jsonOut: out,
    }),
  );
  const argv = pinned(0, [process.execPath, require.resolve('statsd/stats.js'), join(dir, `etsy-${port}.js`)]);
  const proc = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
  await upWhen(proc, /server is up/);
  return {
    name: 'etsy statsd 0.9.0',
    proc,
    port,
    async received() {
      await sleep(3200); // flushes after the last packet
      return readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .reduce((a, l) => a + ((JSON.parse(l) as { counters: Record<string, number> }).counters['statsd.metrics_received'] ?? 0), 0);
    },
  };
}

/**
 * How the agent is started: through its bin, as a user starts it (with the memory settings the bin adds,
 * docs/agent-store.md#memory), or with BENCH_AGENT_LAUNCH=node as `node dist/cli.js` (none of them).
 */
const launch =
  process.env.BENCH_AGENT_LAUNCH === 'node'
    ? [process.execPath, join(root, 'packages/agent/dist/cli.js')]
    : [join(root, 'packages/agent/bin/ekg-agent.js')];

async function startAgent(port: number, flushInterval = '1s', store = false): Promise<Server> {
  const http = port + 1;
  const argv = pinned(0, [
    ...launch,
    '--statsd',
    `127.0.0.1:${port}`,
    '--http',
    `127.0.0.1:${http}`,
    '--console',
    'off',
    '--flush-interval',
    flushInterval,
    // the ladders: ingest and aggregation alone, as etsy's (the store is measured on its own, store.ts)
    ...(store ? ['--store', 'sqlite', '--data', mkdtempSync(join(dir, 'data-'))] : ['--store', 'off']),
  ]);
  const proc = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  // its last words, for a run that fails (an agent that died mid-run)
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d).slice(-4000);
  });
  proc.on('exit', (code, signal) => {
    if (signal !== 'SIGKILL') process.stderr.write(`ekg-agent exited (${code ?? signal}): ${stderr}\n`);
  });
  await upWhen(proc, /ekg-agent: statsd/);
  return {
    name: 'ekg-agent',
    proc,
    port,
    async received() {
      await sleep(500);
      const self = (await selfOf(http)) as { metrics_received: number };
      return self.metrics_received;
    },
  };
}

function blast(port: number, lpp: number, rate: number, names = 100): number {
  const argv = pinned(1, [bin, String(port), String(SECONDS), String(lpp), String(rate), String(names)]);
  const out = execFileSync(argv[0] as string, argv.slice(1), { encoding: 'utf8' });
  return Number(/sent_metrics=(\d+)/.exec(out)?.[1]);
}

/** One fresh server per step, so a backlog from an overload never leaks into the next rate. */
async function ladder(start: (port: number) => Promise<Server>, lpp: number, rates: number[]) {
  let best = 0;
  const steps: Array<{ rate: number; ratio: number }> = [];
  let port = 40000 + Math.floor(Math.random() * 10000);
  for (const rate of rates) {
    const s = await start(port);
    const before = await s.received();
    const sent = blast(port, lpp, rate);
    const got = (await s.received()) - before;
    s.proc.kill('SIGKILL');
    const ratio = got / sent;
    steps.push({ rate, ratio });
    if (ratio >= 0.999) best = rate;
    else break;
    port += 3;
  }
  return { best, steps };
}

/** UDP datagrams the kernel dropped for a full receive buffer, machine-wide (/proc/net/snmp). */
function rcvbufErrors(): number {
  const udp = readFileSync('/proc/net/snmp', 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('Udp:'))
    .map((l) => l.split(' '));
  return Number(udp[1]?.[(udp[0] ?? []).indexOf('RcvbufErrors')]);
}

/** What the 100k-series test prints (read by run.ts). */
export interface SeriesResult {
  store: boolean;
  rssMb: number;
  heapUsedMb: number;
  flushMs: number;
  flushBusyMs: number;
  flushBusyMaxMs: number;
  flushBusyMinMs: number;
  /** the store write's CPU (user + system), median: against storeWriteMs, what it waited */
  storeWriteCpuMs: number;
  storeWriteMs: number;
  flushes: number;
  ratio: number;
  rcvbufErrors: number;
  series: number;
  seconds: number;
  /** at the highest RSS (/proc/<pid>/status and smaps): anonymous, file-backed, glibc's brk heap */
  rssAnonMb: number;
  rssFileMb: number;
  brkHeapMb: number;
  /** over the steady windows (/proc/<pid>/stat): CPU (user + system) per window, minor page faults a second */
  cpuMsPerWindow: number;
  minorFaultsPerS: number;
}

/** utime + stime in ms and minor faults of a process, from /proc/<pid>/stat. */
function procStat(pid: number): { cpuMs: number; minflt: number; t: number } {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const x = f.slice(f.lastIndexOf(')') + 2).split(' '); // fields from the 3rd (state) on
  const tick = 1000 / 100; // USER_HZ
  return { cpuMs: (Number(x[11]) + Number(x[12])) * tick, minflt: Number(x[7]), t: performance.now() };
}

/** RSS parts of a process in MB: anonymous and file-backed (status), and the brk heap's resident size (smaps). */
function rssParts(pid: number): { anon: number; file: number; brk: number } {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (re: RegExp, t: string) => Number(re.exec(t)?.[1] ?? 0) / 1024;
  const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const heap = smaps.indexOf('[heap]');
  return {
    anon: kb(/RssAnon:\s+(\d+)/, st),
    file: kb(/RssFile:\s+(\d+)/, st),
    brk: heap === -1 ? 0 : kb(/\nRss:\s+(\d+)/, smaps.slice(heap)),
  };
}

/**
 * 100k active series under steady load at the default 10 s window, the SQLite store on: the highest
 * RSS seen once every series exists (and the JS heap then), each flush's wall and busy time (busy:
 * summarising the window and every sink's write, the store's included), and loss over the whole run
 * (flushes included).
 */
async function seriesTest(): Promise<SeriesResult> {
  const port = 45000 + Math.floor(Math.random() * 5000);
  const store = process.env.BENCH_AGENT_STORE !== 'off';
  const s = await startAgent(port, '10s', store);
  try {
    return await underLoad(s, port, store);
  } finally {
    s.proc.kill('SIGKILL');
  }
}

async function underLoad(s: Server, port: number, store: boolean): Promise<Awaited<ReturnType<typeof seriesTest>>> {
  // 64 s: 6 steady flushes (the 2nd window's among them, still warming: the WAL file's first growth, fresh pages), a
  // compaction pass of a whole minute among them; 34 s gave 2, whose 'median' was the larger (94.8 ms, a warm-up flush)
  const seconds = Number(process.env.BENCH_AGENT_SERIES_SECONDS ?? 64);
  const drops0 = rcvbufErrors();
  const argv = pinned(1, [bin, String(port), String(seconds), '20', '100000', '100000']); // 100k names: 25k per type × 4 types
  const gen = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  gen.stdout.on('data', (d: Buffer) => {
    out += d;
  });
  const exited = new Promise((r) => gen.on('exit', r));
  let done = false;
  void exited.then(() => {
    done = true;
  });
  let rssMax = 0;
  let heapAtMax = 0;
  let partsAtMax = { anon: 0, file: 0, brk: 0 };
  let stat0: ReturnType<typeof procStat> | undefined;
  let stat1: ReturnType<typeof procStat> | undefined;
  let windows = 0;
  let flushesSeen = 0;
  let series = 0;
  const walls: number[] = [];
  const busies: number[] = [];
  const writes: number[] = [];
  // each steady flush by phase, wall against CPU (the agent's self-measurement): printed with BENCH_VERBOSE
  const phases: Array<Record<string, number>> = [];
  while (!done) {
    await sleep(250);
    const self = (await selfOf(port + 1)) as {
      flushes: number;
      last_flush_ms: number;
      last_flush_busy_ms: number;
      last_flush_series: number;
      heap_used_bytes: number;
      heap_total_bytes: number;
      store?: {
        last_write_ms: number;
        last_write_cpu_ms: number;
        last_write_minflt: number;
        last_write_vcsw: number;
        last_write_ivcsw: number;
      };
      last_flush_phases?: Record<string, number>;
    };
    if (process.env.BENCH_VERBOSE) console.error(JSON.stringify({ ...self, rcvbufErrors: rcvbufErrors() - drops0 }));
    if (self.flushes > flushesSeen) {
      // the first window is where the 100k series are created: steady state starts after it
      if (flushesSeen > 0 || self.flushes > 1) {
        walls.push(self.last_flush_ms);
        busies.push(self.last_flush_busy_ms);
        if (self.store) writes.push(self.store.last_write_ms);
        phases.push({
          busy: self.last_flush_busy_ms,
          ...self.last_flush_phases,
          write_ms: self.store?.last_write_ms ?? 0,
          write_cpu_ms: self.store?.last_write_cpu_ms ?? 0,
          write_minflt: self.store?.last_write_minflt ?? 0,
          write_vcsw: self.store?.last_write_vcsw ?? 0,
          write_ivcsw: self.store?.last_write_ivcsw ?? 0,
        });
        series = Math.max(series, self.last_flush_series);
        // CPU and faults from the end of the first steady window on, whole windows only
        if (stat0) windows += self.flushes - flushesSeen;
        if (stat0) stat1 = procStat(s.proc.pid as number);
        else stat0 = procStat(s.proc.pid as number);
      }
      flushesSeen = self.flushes;
    }
    if (flushesSeen > 0) {
      const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${s.proc.pid}/status`, 'utf8'))?.[1]);
      if (rssKb / 1024 > rssMax) {
        rssMax = rssKb / 1024;
        heapAtMax = self.heap_used_bytes / 2 ** 20;
        partsAtMax = rssParts(s.proc.pid as number);
      }
    }
  }
  const sent = Number(/sent_metrics=(\d+)/.exec(out)?.[1]);
  const got = await s.received();
  // of an even count, the mean of the middle two (not the upper one: of 2 flushes that was the max)
  const median = (xs: number[]) => {
    const o = [...xs].sort((a, b) => a - b);
    const m = o.length / 2;
    return o.length === 0 ? Number.NaN : o.length % 2 ? (o[Math.floor(m)] as number) : ((o[m - 1] as number) + (o[m] as number)) / 2;
  };
  if (process.env.BENCH_VERBOSE && phases.length > 0) {
    // (GC pauses are those reported by the poll that first saw the flush: one that ended after it is left out)
    console.error('phase           median     min     max');
    for (const k of Object.keys(phases[0] as object)) {
      const xs = phases.map((p) => p[k] ?? Number.NaN);
      console.error(`${k.padEnd(14)} ${[median(xs), Math.min(...xs), Math.max(...xs)].map((x) => x.toFixed(1).padStart(7)).join(' ')}`);
    }
  }
  return {
    store,
    rssMb: rssMax,
    heapUsedMb: heapAtMax,
    flushMs: median(walls),
    flushBusyMs: median(busies),
    flushBusyMaxMs: Math.max(...busies),
    flushBusyMinMs: Math.min(...busies),
    storeWriteCpuMs: median(phases.map((p) => p.write_cpu_ms ?? Number.NaN)),
    storeWriteMs: median(writes),
    flushes: busies.length,
    ratio: got / sent,
    rcvbufErrors: rcvbufErrors() - drops0,
    series,
    seconds,
    rssAnonMb: partsAtMax.anon,
    rssFileMb: partsAtMax.file,
    brkHeapMb: partsAtMax.brk,
    cpuMsPerWindow: stat0 && stat1 && windows ? (stat1.cpuMs - stat0.cpuMs) / windows : Number.NaN,
    minorFaultsPerS: stat0 && stat1 ? ((stat1.minflt - stat0.minflt) * 1000) / (stat1.t - stat0.t) : Number.NaN,
  };
}

const rates20 = [25_000, 50_000, 100_000, 150_000, 200_000, 300_000, 400_000, 500_000, 600_000, 800_000, 1_000_000, 1_200_000, 1_500_000];
const rates1 = [5_000, 10_000, 25_000, 40_000, 50_000, 75_000, 100_000, 125_000, 150_000, 200_000, 250_000, 300_000];
if (process.env.BENCH_AGENT_ONLY === 'series') {
  console.log(JSON.stringify(await seriesTest()));
  process.exit(0);
}
if (process.env.BENCH_AGENT_ONLY === 'agent20') {
  console.log(JSON.stringify(await ladder(startAgent, 20, rates20)));
  process.exit(0);
}
const result = {
  etsy20: await ladder(startEtsy, 20, rates20),
  agent20: await ladder(startAgent, 20, rates20),
  etsy1: await ladder(startEtsy, 1, rates1),
  agent1: await ladder(startAgent, 1, rates1),
  series: await seriesTest(),
};
console.log(JSON.stringify(result));
