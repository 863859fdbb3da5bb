/**
 * The agent's hand-written DDSketch, snappy and protobuf encoders beside the well-kept libraries that
 * do the same (issue 19 item 5): `@datadog/sketches-js`, `snappyjs`, `@bufbuild/protobuf`. Same inputs,
 * interleaved rounds in one process, ratios per round. Prints one JSON line (sections.ts makes the table).
 */
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { DDSketch, LogCollapsingLowestDenseDDSketch } from '@datadog/sketches-js';
import * as snappyjs from 'snappyjs';
import { median } from './stats.js';

const { Sketch, SketchSum } = await import('../../packages/agent/dist/aggregate/sketch.js');
type Sketch = InstanceType<typeof Sketch>;

// the agent compresses with snappyjs now: its hand-written encoder of before is the baseline
import { compress, decompress } from './snappy-v1.js';

const { encodeWriteRequest } = await import('../../packages/agent/dist/export/protobuf.js');
type TimeSeries = Parameters<typeof encodeWriteRequest>[0][number];

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);

// deterministic inputs: latencies log-normal around 20 ms (a realistic request-time distribution)
let seed = 42;
const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};
const gauss = () => Math.sqrt(-2 * Math.log(rand() || 1e-12)) * Math.cos(2 * Math.PI * rand());
const values = (n: number) => Float64Array.from({ length: n }, () => Math.exp(Math.log(20) + 0.8 * gauss()));
const sets = Array.from({ length: 100 }, () => values(1000));

/** operations a second: runs `f` for at least `ms`, `batch` calls at a time */
function opsPerSecond(f: () => unknown, ms = 600): number {
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    f();
    n++;
    t = performance.now();
  }
  return (n * 1000) / (t - t0);
}

// both at 1 % relative accuracy, both bounded to 2048 buckets (the agent's default)
const ours = (xs: Float64Array) => {
  const s = new Sketch(0.01, 2048);
  for (const v of xs) s.add(v);
  return s;
};
const dd = (xs: Float64Array) => {
  const s = new LogCollapsingLowestDenseDDSketch({ relativeAccuracy: 0.01, binLimit: 2048 });
  for (const v of xs) s.accept(v);
  return s;
};
const ddUnbounded = (xs: Float64Array) => {
  const s = new DDSketch({ relativeAccuracy: 0.01 });
  for (const v of xs) s.accept(v);
  return s;
};
const oursBuilt = sets.map(ours);
const ddBuilt = sets.map(dd);
const ddUnboundedBuilt = sets.map(ddUnbounded);
const mergeOurs = () => {
  const m = new Sketch(0.01, 2048);
  for (const s of oursBuilt) m.merge(s);
  return m.quantile(0.99);
};
// the store's path for fleet percentiles: encoded blobs summed into dense arrays
const encoded = oursBuilt.map((s) => ({ bytes: s.encode(), cols: { count: s.count, min: s.min, max: s.max } }));
const mergeEncoded = () => {
  const m = new SketchSum(0.01);
  for (const e of encoded) m.addEncoded(e.bytes, e.cols);
  return m.quantile(0.99);
};
const ddProtos = ddBuilt.map((s) => s.toProto());
const mergeDdProtos = () => {
  const m = new LogCollapsingLowestDenseDDSketch({ relativeAccuracy: 0.01, binLimit: 2048 });
  for (const b of ddProtos) m.merge(LogCollapsingLowestDenseDDSketch.fromProto(b) as LogCollapsingLowestDenseDDSketch);
  return m.getValueAtQuantile(0.99);
};
const mergeDd = () => {
  const m = new LogCollapsingLowestDenseDDSketch({ relativeAccuracy: 0.01, binLimit: 2048 });
  for (const s of ddBuilt) m.merge(s);
  return m.getValueAtQuantile(0.99);
};

// a 65k-series remote-write body: 5 labels a series, one sample
const series: TimeSeries[] = Array.from({ length: 65_536 }, (_, i) => ({
  labels: [
    ['__name__', `http_server_request_duration_seconds_${i % 40}`],
    ['env', 'production'],
    ['instance', `web-${i % 97}.example.internal:9100`],
    ['job', 'ekg-agent'],
    ['route', `/api/v1/items/${i % 673}`],
  ],
  samples: [[Math.round(rand() * 100_000) / 100, 1_764_000_000_000 + (i % 10) * 10_000]],
}));
/** the same message written with @bufbuild/protobuf's BinaryWriter (what its generated toBinary calls) */
function bufbuildWriteRequest(ss: TimeSeries[]): Uint8Array {
  const w = new BinaryWriter();
  for (const ts of ss) {
    w.uint32(10).fork();
    for (const [name, value] of ts.labels) w.uint32(10).fork().uint32(10).string(name).uint32(18).string(value).join();
    for (const [v, ms] of ts.samples) w.uint32(18).fork().uint32(9).double(v).uint32(16).int64(ms).join();
    w.join();
  }
  return w.finish();
}
const body = encodeWriteRequest(series);
const same = Buffer.from(bufbuildWriteRequest(series)).equals(Buffer.from(body));
const zOurs = compress(body);
const zJs = snappyjs.compress(body);
const roundTrip =
  Buffer.from(snappyjs.uncompress(zOurs)).equals(Buffer.from(body)) && Buffer.from(decompress(zJs)).equals(Buffer.from(body));

const cases = {
  'sketch: add 1,000 values': [() => ours(sets[0] as Float64Array), () => dd(sets[0] as Float64Array)],
  'sketch: merge 100 sketches, p99': [mergeOurs, mergeDd],
  'sketch: merge 100 encoded sketches, p99, as the store merges': [mergeEncoded, mergeDdProtos],
  'sketch: encode': [() => (oursBuilt[0] as Sketch).encode(), () => (ddBuilt[0] as DDSketch).toProto()],
  'protobuf: 65,536-series WriteRequest': [() => encodeWriteRequest(series), () => bufbuildWriteRequest(series)],
  'snappy: compress that body (agent: its encoder before snappyjs)': [() => compress(body), () => snappyjs.compress(body)],
  'snappy: decompress it': [() => decompress(zOurs), () => snappyjs.uncompress(zOurs)],
} as const;
const res: Record<string, { ours: number[]; theirs: number[]; ratio: number[] }> = {};
for (let r = 0; r < ROUNDS; r++) {
  for (const [k, [a, b]] of Object.entries(cases)) {
    res[k] ??= { ours: [], theirs: [], ratio: [] };
    const x = res[k];
    // alternate which goes first
    const [oa, ob] = r % 2 ? [opsPerSecond(a), opsPerSecond(b)] : [opsPerSecond(b), opsPerSecond(a)].reverse();
    x.ours.push(oa as number);
    x.theirs.push(ob as number);
    x.ratio.push((oa as number) / (ob as number));
  }
}
const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const q = (s: { quantile?: (q: number) => number; getValueAtQuantile?: (q: number) => number }, p: number) =>
  s.quantile ? s.quantile(p) : (s.getValueAtQuantile as (q: number) => number)(p);
const all = Float64Array.from(sets.flatMap((s) => [...s])).sort();
const exact = (p: number) => all[Math.min(all.length - 1, Math.floor(p * all.length))] as number;
const m1 = new Sketch(0.01, 2048);
for (const s of oursBuilt) m1.merge(s);
const m2 = new LogCollapsingLowestDenseDDSketch({ relativeAccuracy: 0.01, binLimit: 2048 });
for (const s of ddBuilt) m2.merge(s);
console.log(
  JSON.stringify({
    rounds: ROUNDS,
    speed: Object.fromEntries(
      Object.entries(res).map(([k, v]) => [k, { ours: median(v.ours), theirs: median(v.theirs), ratio: median(v.ratio) }]),
    ),
    bytes: {
      sketchOurs: avg(oursBuilt.map((s) => s.encode().length)),
      sketchTheirs: avg(ddBuilt.map((s) => s.toProto().length)),
      sketchTheirsUnbounded: avg(ddUnboundedBuilt.map((s) => s.toProto().length)),
      body: body.length,
      snappyOurs: zOurs.length,
      snappyTheirs: zJs.length,
    },
    sameBytes: same,
    roundTrip,
    p99: { exact: exact(0.99), ours: q(m1, 0.99), theirs: q(m2, 0.99) },
  }),
);
