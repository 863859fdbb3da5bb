/**
 * What the aggregator holds at 100k series, after a full collection: the agent bench's load
 * (statsd-blast's series: 25k counters, 25k gauges, 25k timers, 25k histograms, ten samples a
 * series a window) fed to one Aggregator in process for a few windows, each window handed on and
 * retired as the agent does (the last one kept, as for /metrics), then the JS heap and the
 * ArrayBuffers it added. Bytes, not time: a busy shared machine does not move them.
 *
 *   node --expose-gc bench/dist/memory.js                 (BENCH_MEM_WINDOWS=4, BENCH_MEM_SERIES=100000)
 *   BENCH_MEM_TAGS=1 ...                                  (every series tagged `host:web-<k % 50>`)
 *   BENCH_MEM_SNAPSHOT=1 ...                              (and the heap's largest parts, by constructor)
 *
 * Prints JSON: MB added to the heap (`heapUsed`) and to `arrayBuffers`, and with a snapshot, the
 * heap's self sizes by constructor name.
 */
import { getHeapSnapshot } from 'node:v8';
import { Aggregator, type FlushResult, type Sample } from 'ekg-agent';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const windows = Number(process.env.BENCH_MEM_WINDOWS ?? 4);
const names = Number(process.env.BENCH_MEM_SERIES ?? 100_000);
const tagged = process.env.BENCH_MEM_TAGS === '1';
const MB = 2 ** 20;

/** Two full collections a turn apart: V8 frees ArrayBuffers' memory on a task the first only starts. */
async function settle(): Promise<NodeJS.MemoryUsage> {
  gc?.();
  await new Promise((r) => setTimeout(r, 50));
  gc?.();
  await new Promise((r) => setTimeout(r, 50));
  return process.memoryUsage();
}

/** Each line's strings as the parser makes them: new strings every packet, equal to the last ones. */
function sample(k: number, v: number): Sample {
  const tags = tagged ? `host:web-${k % 50}` : '';
  switch (k % 4) {
    case 0:
      return { name: `app.req.count.${k}`, tags, type: 'c', value: 1, weight: 1 };
    case 1:
      return { name: `app.heap.used.${k}`, tags, type: 'g', value: v % 100_000, weight: 1 };
    case 2:
      return { name: `app.req.time.${k}`, tags, type: 'ms', value: v % 997, weight: 1 };
    default:
      return { name: `app.req.size.${k}`, tags, type: 'h', value: v % 4096, weight: 2 };
  }
}

const before = await settle();
const agg = new Aggregator({ maxSeries: names });
let prev: FlushResult | undefined;
let seq = 0;
const t0 = Date.now() - windows * 10_000;
for (let w = 0; w < windows; w++) {
  for (let i = 0; i < names * 10; i++) {
    const k = seq++;
    agg.add(sample(k % names, k), 0);
  }
  const r = agg.flush(t0 + (w + 1) * 10_000);
  agg.release(r);
  if (prev) agg.retire(prev);
  prev = r;
}
// half a window into the next, as the agent is most of the time
for (let i = 0; i < names * 5; i++) agg.add(sample(i % names, i), 0);
const after = await settle();
const out: Record<string, unknown> = {
  series: agg.size,
  windows,
  tagged,
  heapMb: Math.round(((after.heapUsed - before.heapUsed) / MB) * 10) / 10,
  arrayBuffersMb: Math.round(((after.arrayBuffers - before.arrayBuffers) / MB) * 10) / 10,
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
