/**
 * One flush's CPU at 100k series, without sockets or a second process: one Aggregator and one
 * SqliteStore fed the agent bench's load (statsd-blast's series: 25k counters, 25k gauges, 25k timers,
 * 25k histograms at @0.5, 1M samples a 10 s window), then per window the CPU (process.cpuUsage: every
 * thread, as a pinned core sees it) of closing the window, of the store's write and of the release.
 * CPU time, not wall time, so a busy shared machine moves it little. Prints JSON, medians over the
 * windows after the first (where the series are created).
 *
 *   node bench/dist/flush.js            (BENCH_FLUSH_WINDOWS=14, BENCH_FLUSH_SERIES=100000)
 *   node --import ./bench/flush-profile.mjs bench/dist/flush.js    (self ms per function, flushes only)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Aggregator, type FlushResult, type Sample, SqliteStore } from 'ekg-agent';

const windows = Number(process.env.BENCH_FLUSH_WINDOWS ?? 14);
const names = Number(process.env.BENCH_FLUSH_SERIES ?? 100_000);
const perWindow = names * 10;
const dir = mkdtempSync(join(tmpdir(), 'ekg-flush-bench-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

// the blaster's lines, parsed once: the same strings every window, as the parser's would be equal ones
const proto: Sample[] = [];
for (let k = 0; k < names; k++) {
  switch (k % 4) {
    case 0:
      proto.push({ name: `app.req.count.${k}`, tags: '', type: 'c', value: 1, weight: 1 });
      break;
    case 1:
      proto.push({ name: `app.heap.used.${k}`, tags: '', type: 'g', value: 0, weight: 1 });
      break;
    case 2:
      proto.push({ name: `app.req.time.${k}`, tags: '', type: 'ms', value: 0, weight: 1 });
      break;
    default:
      proto.push({ name: `app.req.size.${k}`, tags: '', type: 'h', value: 0, weight: 2 });
  }
}

const agg = new Aggregator({ maxSeries: names });
const store = new SqliteStore({ path: join(dir, 'ekg.db'), flushInterval: 10_000 });
const ms = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
/** set by bench/flush-profile.mjs (`node --import ./bench/flush-profile.mjs bench/dist/flush.js`): the profiler on around each flush only */
const hooks = globalThis as { __profStart?: () => Promise<unknown>; __profStop?: () => Promise<unknown> };
const rows: Array<{ close: number; write: number; writeWall: number; writeFaults: number; release: number; total: number; wall: number }> =
  [];
let seq = 0;
let prev: FlushResult | undefined;
/** the most `arrayBuffers` seen after a window (verbose mode): what dead blobs add before a full collection */
let maxArrayBuffers = 0;
const t0 = Date.now() - windows * 10_000;
for (let w = 0; w < windows; w++) {
  for (let i = 0; i < perWindow; i++) {
    const k = seq++;
    const s = proto[k % names] as Sample;
    s.value = s.type === 'c' ? 1 : s.type === 'g' ? k % 100_000 : s.type === 'ms' ? k % 997 : k % 4096;
    agg.add(s, 0);
  }
  if (w > 0) await hooks.__profStart?.();
  const p = performance.now();
  const c0 = process.cpuUsage();
  const r = agg.flush(t0 + (w + 1) * 10_000);
  const c1 = process.cpuUsage();
  const q = performance.now();
  const f0 = process.resourceUsage().minorPageFault;
  store.write(r);
  const writeFaults = process.resourceUsage().minorPageFault - f0;
  const writeWall = performance.now() - q;
  const c2 = process.cpuUsage();
  agg.release(r);
  // as the agent does: the window before is retired once this one replaces it
  if (prev) agg.retire(prev);
  prev = r;
  const c3 = process.cpuUsage();
  const wall = performance.now() - p;
  if (w > 0) await hooks.__profStop?.();
  const d = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage) => ms({ user: b.user - a.user, system: b.system - a.system });
  const row = { close: d(c0, c1), write: d(c1, c2), writeWall, writeFaults, release: d(c2, c3), total: d(c0, c3), wall };
  if (w > 0) rows.push(row);
  if (process.env.BENCH_VERBOSE) {
    const m = process.memoryUsage();
    maxArrayBuffers = Math.max(maxArrayBuffers, m.arrayBuffers);
    console.error(JSON.stringify({ w, series: r.cols?.n, ...row, rssMb: m.rss / 2 ** 20, arrayBuffersMb: m.arrayBuffers / 2 ** 20 }));
  }
}
if (process.env.BENCH_VERBOSE) {
  console.error(
    'head blob bytes',
    store.db.prepare('SELECT sum(length(data)) FROM head_part WHERE seq = (SELECT max(seq) FROM head)').pluck().get(),
  );
  console.error(process.memoryUsage(), 'most arrayBuffers after a window', maxArrayBuffers);
  // twice, a turn apart: V8 frees ArrayBuffers' memory on a sweeper task that the first collection only starts
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  await new Promise((r) => setTimeout(r, 50));
  gc?.();
  console.error('after a full collection (--expose-gc)', process.memoryUsage());
  console.error(
    'brk heap',
    readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .find((l) => l.endsWith('[heap]')),
  );
}
if (process.env.BENCH_FLUSH_MAINTAIN) {
  // the compactor's pass over these windows (every complete minute), as the agent's timer runs it: its longest
  // stretch without a turn of the event loop is how long the sockets go unread (a UDP buffer holds ~80 ms at 100k/s)
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const c = process.cpuUsage();
  const t = performance.now();
  await store.maintain();
  loop.disable();
  const u = process.cpuUsage(c);
  console.error(
    JSON.stringify({
      maintainMs: Math.round(performance.now() - t),
      maintainCpuMs: Math.round(ms(u)),
      checkpointMs: store.status.last_checkpoint_ms,
      // the longest stretch of maintenance on the event loop between two turns, as the store measures it (the number
      // docs/agent-store.md quotes), and the step it was in; the loop's own delay below also holds GC pauses and timers
      longestBlockMs: Math.round(store.status.last_maintain_block_ms * 10) / 10,
      longestBlockIn: store.status.last_maintain_block_in,
      longestBlockCpuMs: Math.round(store.status.last_maintain_block_cpu_ms * 10) / 10,
      loopBlockedMaxMs: Math.round(loop.max / 1e6),
      loopBlockedP99Ms: Math.round(loop.percentile(99) / 1e6),
    }),
  );
}
await store.close();
const pick = (k: keyof (typeof rows)[number]) => Math.round(median(rows.map((r) => r[k])) * 10) / 10;
console.log(
  JSON.stringify({
    series: names,
    windows: rows.length,
    closeCpuMs: pick('close'),
    writeCpuMs: pick('write'),
    writeWallMs: pick('writeWall'),
    writeFaults: pick('writeFaults'),
    releaseCpuMs: pick('release'),
    flushCpuMs: pick('total'),
    flushWallMs: pick('wall'),
    rssMb: Math.round(process.memoryUsage.rss() / 2 ** 20),
  }),
);
