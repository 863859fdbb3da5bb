/**
 * What the aggregator holds at 100k series: the agent bench's load (statsd-blast's series: 25k
 * counters, 25k gauges, 25k timers, 25k histograms at @0.5, ten lines a series a window, 20 lines a
 * packet) parsed and fed to one Aggregator in process, each window handed on, released and retired as
 * the agent does (the last one kept, as for /metrics), then half a window more. Bytes, not time: a
 * busy shared machine does not move them.
 *
 *   node --expose-gc --max-semi-space-size=2 bench/dist/memory.js   (BENCH_MEM_WINDOWS=8, BENCH_MEM_SERIES=100000)
 *   BENCH_MEM_TAGS=1 …       every series tagged `host:web-<k % 50>`
 *   BENCH_MEM_SNAPSHOT=1 …   and the heap's largest parts, by constructor
 *   BENCH_MEM_TRACE=1 …      each new peak as it is reached
 *
 * The semi-space as the bin sets it; the old generation's growth as the agent sets it (here too).
 * Prints JSON: MB added to the heap (`heapUsed`) and to `arrayBuffers` after a full collection; the
 * most added to both (the heap's pages, `heapTotal`) at any time, garbage included (`peakMb`: when V8
 * collects moves it a little from run to run); the CPU of parsing and adding a window's lines and of
 * its flush (medians: these are times, which a busy machine moves).
 */
import { getHeapSnapshot, setFlagsFromString } from 'node:v8';
import { Aggregator, type FlushResult, parsePacket, type Sample } from 'ekg-agent';

setFlagsFromString('--heap-growing-percent=50');
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const windows = Number(process.env.BENCH_MEM_WINDOWS ?? 8);
const names = Number(process.env.BENCH_MEM_SERIES ?? 100_000);
const tagged = process.env.BENCH_MEM_TAGS === '1';
const MB = 2 ** 20;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** Two full collections a turn apart: V8 frees ArrayBuffers' memory on a task the first only starts. */
async function settle(): Promise<NodeJS.MemoryUsage> {
  gc?.();
  await new Promise((r) => setTimeout(r, 50));
  gc?.();
  await new Promise((r) => setTimeout(r, 50));
  return process.memoryUsage();
}

/** One StatsD line of series `k`, value from `v`, as statsd-blast sends them. */
function line(k: number, v: number): string {
  const tags = tagged ? `|#host:web-${k % 50}` : '';
  switch (k % 4) {
    case 0:
      return `app.req.count.${k}:1|c${tags}`;
    case 1:
      return `app.heap.used.${k}:${v % 100_000}|g${tags}`;
    case 2:
      return `app.req.time.${k}:${v % 997}|ms${tags}`;
    default:
      return `app.req.size.${k}:${v % 4096}|h|@0.5${tags}`;
  }
}

/** Lines through the agent's parser, 20 a packet (one new string each, as a datagram's `toString`). */
const sink = { sample: (s: Sample) => agg.add(s, 0), bad: () => {} };
function packet(from: number): void {
  let text = '';
  for (let j = 0; j < 20; j++) text += `${j ? '\n' : ''}${line((from + j) % names, from + j)}`;
  parsePacket(text, sink);
}

const before = await settle();
const agg = new Aggregator({ maxSeries: names });
/** the most V8 held (its heap's pages and the ArrayBuffers), garbage included, sampled every 100k samples */
let peak = 0;
const look = () => {
  const m = process.memoryUsage();
  const v = m.heapTotal + m.arrayBuffers - before.heapTotal - before.arrayBuffers;
  if (v > peak) {
    peak = v;
    if (process.env.BENCH_MEM_TRACE)
      console.error(JSON.stringify({ seq, heapTotal: m.heapTotal / MB, heapUsed: m.heapUsed / MB, ab: m.arrayBuffers / MB }));
  }
};
let prev: FlushResult | undefined;
let seq = 0;
const t0 = Date.now() - windows * 10_000;
/** CPU (ms) of parsing and adding each window's lines, and of its flush */
const addCpu: number[] = [];
const flushCpu: number[] = [];
const cpu = (from: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(from);
  return (u.user + u.system) / 1000;
};
for (let w = 0; w < windows; w++) {
  const c0 = process.cpuUsage();
  for (let i = 0; i < names * 10; i += 20) {
    packet(seq);
    seq += 20;
    if (i % 100_000 === 0) look();
  }
  addCpu.push(cpu(c0));
  const c1 = process.cpuUsage();
  const r = agg.flush(t0 + (w + 1) * 10_000);
  flushCpu.push(cpu(c1));
  agg.release(r);
  if (prev) agg.retire(prev);
  prev = r;
  look();
}
// half a window into the next, as the agent is most of the time
for (let i = 0; i < names * 5; i += 20) packet(i);
look();
const after = await settle();
const out: Record<string, unknown> = {
  series: agg.size,
  windows,
  tagged,
  heapMb: Math.round(((after.heapUsed - before.heapUsed) / MB) * 10) / 10,
  arrayBuffersMb: Math.round(((after.arrayBuffers - before.arrayBuffers) / MB) * 10) / 10,
  peakMb: Math.round((peak / MB) * 10) / 10,
  // medians over the windows after the first (where the series are made)
  addCpuMs: Math.round(median(addCpu.slice(1))),
  flushCpuMs: Math.round(median(flushCpu.slice(1)) * 10) / 10,
};
if (process.env.BENCH_MEM_SNAPSHOT) {
  // the snapshot's nodes: [type, name, id, self_size, edge_count, trace_node_id, detachedness] by default
  const chunks: Buffer[] = [];
  for await (const c of getHeapSnapshot()) chunks.push(c as Buffer);
  const snap = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const f = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [ti, ni, si] = [f.indexOf('type'), f.indexOf('name'), f.indexOf('self_size')];
  const by = new Map<string, number>();
  for (let i = 0; i < snap.nodes.length; i += f.length) {
    const type = types[snap.nodes[i + ti] as number] as string;
    const name = type === 'object' || type === 'native' ? (snap.strings[snap.nodes[i + ni] as number] as string) : `(${type})`;
    by.set(name, (by.get(name) ?? 0) + (snap.nodes[i + si] as number));
  }
  out.byConstructorMb = Object.fromEntries(
    [...by]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 14)
      .map(([k, v]) => [k, Math.round((v / MB) * 100) / 100]),
  );
}
console.log(JSON.stringify(out));
// keep the aggregator and the last window alive until measured
if (prev && prev.series.length < 0) console.log(agg.size);
