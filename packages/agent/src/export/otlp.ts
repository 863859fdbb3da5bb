import { gzipSync } from 'node:zlib';
import { defOf, otelOf, ucumOf, unitScale } from 'ekg-vitals';
import type { Flushed, FlushResult } from '../aggregate/aggregator.js';
import type { Sketch } from '../aggregate/sketch.js';
import { type Outcome, post, QueuedExporter, type QueueOptions, USER_AGENT } from './exporter.js';
import { tagPairs } from './measurements.js';
import { Buf } from './protobuf.js';
import type { Dropped } from './remote-write.js';

export interface OtlpOptions extends QueueOptions {
  /** the collector's metrics endpoint, e.g. http://127.0.0.1:4318/v1/metrics */
  url: string;
  /** extra request headers (auth); Content-Type, Content-Encoding and the like stay the protocol's */
  headers?: Record<string, string>;
  /** `protobuf` (default, `application/x-protobuf`) or `json` (`application/json`), as OTLP/HTTP defines them */
  encoding?: 'protobuf' | 'json';
  /** `gzip` (default) or `none` */
  compression?: 'gzip' | 'none';
  timeout?: number;
}

type AnyValue = { stringValue: string } | { intValue: string };
export interface KeyValue {
  key: string;
  value: AnyValue;
}

/** The instrument scope of every metric ekg-agent sends. */
export const SCOPE = { name: 'ekg-agent', version: USER_AGENT.slice(USER_AGENT.indexOf('/') + 1) };

/** Tags that describe the process become resource attributes (both spellings), the rest data-point attributes. */
const RESOURCE: Record<string, string> = {
  service: 'service.name',
  'service.name': 'service.name',
  host: 'host.name',
  'host.name': 'host.name',
  pid: 'process.pid',
  'process.pid': 'process.pid',
  instance: 'service.instance.id',
  'service.instance.id': 'service.instance.id',
};

/** How one series is sent: its OTLP name, fixed attributes, unit, data type and the factor its values take. */
export interface Mapping {
  name: string;
  attrs: Array<[string, string]>;
  unit?: string;
  type: 'gauge' | 'counter' | 'updowncounter' | 'histogram';
  scale: number;
}

/**
 * How a series is sent. A catalogue name becomes its semantic-convention name when the convention's
 * instrument can carry what ekg has (a level, a window's count, a statistic), its unit matches (ms
 * become seconds) and every required attribute is there; otherwise it keeps ekg's dotted name. Other
 * names: counters are monotonic delta sums, gauges and sets gauges, distributions exponential
 * histograms.
 */
export function mappingOf(f: Pick<Flushed, 'name' | 'kind'>): Mapping {
  const key = `${f.kind}:${f.name}`;
  let m = mappings.get(key);
  if (!m) {
    if (mappings.size >= 100_000) mappings.clear();
    m = mapOnce(f);
    mappings.set(key, m);
  }
  return m;
}
/** mappings by kind and name: a window of 100k series reads the catalogue once per name, not once per window */
const mappings = new Map<string, Mapping>();

function mapOnce(f: Pick<Flushed, 'name' | 'kind'>): Mapping {
  const def = defOf(f.name);
  const plain: Mapping = {
    name: f.name,
    attrs: [],
    unit: def ? ucumOf(def.unit) : undefined,
    type: f.kind === 'counter' ? 'counter' : f.kind === 'distribution' ? 'histogram' : 'gauge',
    scale: 1,
  };
  if (!def || f.kind === 'distribution' || f.kind === 'set') return plain;
  // the instrument, its unit and required attributes are the catalogue's (otelInstruments)
  const sp = otelOf(f.name);
  if (!sp) return plain;
  const fits = sp.instrument === 'counter' ? f.kind === 'counter' : sp.instrument !== 'histogram' && f.kind === 'gauge';
  const have = new Set(sp.attrs.map(([k]) => k));
  const complete = (sp.required ?? []).every((a) => have.has(a) || sp.waived?.includes(a));
  const scale = unitScale(def.unit, sp.unit);
  if (!fits || !complete || scale === undefined) return plain;
  return { name: sp.name, attrs: sp.attrs, unit: sp.unit, type: sp.instrument, scale };
}

/** The zero band of ekg's sketch: |v| ≤ 1e-9 counts as zero (aggregate/sketch.ts), sent as zeroThreshold. */
export const ZERO_THRESHOLD = 1e-9;
const MAX_BUCKETS = 160;

export interface ExpBuckets {
  scale: number;
  zeroCount: number;
  positive: { offset: number; bucketCounts: number[] };
  negative: { offset: number; bucketCounts: number[] };
  /** zeroCount plus every bucket count: the point's count */
  count: number;
}

/**
 * A DDSketch as an OTLP exponential histogram: each sketch bucket's count goes to the base-2 bucket
 * that holds its value, at the finest scale (≤ 5, 2^(1/32) ≈ 2.2 % wide) whose buckets span the
 * values in at most 160 (the OpenTelemetry SDK default). Counts are whole numbers: a sample rate
 * makes a sketch's counts fractional (`@0.7` weighs 1.43), so each bucket's count is rounded and the
 * point's count is their sum, so count = zeroCount + Σ buckets always holds. Values are read through
 * their logarithms, so 1.7e308 neither overflows nor throws.
 */
export function exponentialBuckets(sk: Sketch): ExpBuckets {
  const j = sk.toJSON();
  const gamma = (1 + j.alpha) / (1 - j.alpha);
  // log2 of the sketch's representative value 2γ^i/(γ+1), without computing γ^i
  const log2v = (i: number) => i * Math.log2(gamma) + Math.log2(2 / (gamma + 1));
  const pos = j.pos.map(([i, c]) => [log2v(i), c] as [number, number]);
  const neg = j.neg.map(([i, c]) => [log2v(i), c] as [number, number]);
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const [l] of [...pos, ...neg]) {
    if (l < lo) lo = l;
    if (l > hi) hi = l;
  }
  let scale = 5;
  if (hi >= lo) while (scale > -20 && Math.ceil(hi * 2 ** scale) - Math.ceil(lo * 2 ** scale) >= MAX_BUCKETS) scale--;
  let count = Math.round(j.zero);
  const side = (pairs: Array<[number, number]>) => {
    if (pairs.length === 0) return { offset: 0, bucketCounts: [] as number[] };
    // bucket index i holds (base^i, base^(i+1)]: i = ceil(log2(v) · 2^scale) − 1
    const idx = pairs.map(([l, c]) => [Math.ceil(l * 2 ** scale) - 1, c] as [number, number]);
    let a = Number.POSITIVE_INFINITY;
    let b = Number.NEGATIVE_INFINITY;
    for (const [i] of idx) {
      if (i < a) a = i;
      if (i > b) b = i;
    }
    const counts = new Array<number>(b - a + 1).fill(0);
    for (const [i, c] of idx) counts[i - a] = (counts[i - a] as number) + c;
    const whole = counts.map((c) => Math.round(c));
    for (const c of whole) count += c;
    return { offset: a, bucketCounts: whole };
  };
  const positive = side(pos);
  const negative = side(neg);
  return { scale, zeroCount: Math.round(j.zero), positive, negative, count };
}

interface NumberPoint {
  attrs: KeyValue[];
  value: number;
}
interface HistPoint {
  attrs: KeyValue[];
  b: ExpBuckets;
  sum?: number;
  min?: number;
  max?: number;
}
interface Metric {
  name: string;
  unit?: string;
  type: Mapping['type'];
  points: Array<NumberPoint | HistPoint>;
}
/** A window as OTLP sees it, before either encoding. */
export interface OtlpModel {
  start: bigint;
  end: bigint;
  /** the start of cumulative (up-down counter) points */
  since: bigint;
  resources: Array<{ attrs: KeyValue[]; metrics: Metric[] }>;
}

const ns = (ms: number) => BigInt(Math.round(ms)) * 1_000_000n;
const sortKV = (a: KeyValue, b: KeyValue) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
const RANK: Record<Flushed['kind'], number> = { counter: 0, distribution: 1, gauge: 2, set: 3 };

function attr(key: string, v: string): KeyValue {
  return { key, value: key === 'process.pid' && /^\d{1,15}$/.test(v) ? { intValue: v } : { stringValue: v } };
}

/**
 * A window as OTLP metrics, valid by construction:
 * - only what the window observed: a gauge the aggregator carries at its last level is not sent;
 * - a resource per process (`service.name`, `host.name`, `process.pid`, `service.instance.id` from
 *   the tags); `service.name` is `unknown_service` when no tag gives one, as the conventions say;
 * - one attribute per key: the convention's own attributes win over a tag of the same key, a
 *   resource key spelled both ways keeps the conventional spelling, a tag repeated keeps its first
 *   value; what is left out is counted in `d.labels`;
 * - one data type per metric name: `kinds` remembers each name's type across windows (the first
 *   seen, a counter before a distribution before a gauge in one window), points of another type are
 *   left out and counted, as are a second point with the same attributes, non-finite values and a
 *   negative counter increment (a monotonic sum cannot fall).
 */
export function otlpModel(
  w: FlushResult,
  d: Dropped = { labels: 0, values: 0 },
  kinds: Map<string, Mapping['type']> = new Map(),
  since = w.start,
): OtlpModel {
  // a gauge not set in this window is not data (the time model): it is not sent again at its last level
  const mapped = w.series.filter((f) => !f.carried).map((f) => ({ f, m: mappingOf(f) }));
  // a name's type: remembered, else the first by rank in this window
  const pick = new Map<string, { type: Mapping['type']; rank: number }>();
  for (const { f, m } of mapped) {
    if (kinds.has(m.name)) continue;
    const had = pick.get(m.name);
    if (!had || RANK[f.kind] < had.rank) pick.set(m.name, { type: m.type, rank: RANK[f.kind] });
  }
  for (const [name, { type }] of pick) if (kinds.size < 100_000) kinds.set(name, type);
  const resources = new Map<string, { attrs: KeyValue[]; metrics: Map<string, Metric>; seen: Set<string> }>();
  for (const { f, m } of mapped) {
    const type = kinds.get(m.name) ?? pick.get(m.name)?.type;
    if (type !== m.type) {
      d.values++;
      continue;
    }
    const res = new Map<string, { v: string; exact: boolean }>();
    const point = new Map<string, string>(m.attrs);
    for (const [k, v] of tagPairs(f.tags)) {
      const r = RESOURCE[k];
      if (r) {
        const had = res.get(r);
        if (!had || (!had.exact && k === r)) {
          if (had) d.labels++;
          res.set(r, { v, exact: k === r });
        } else d.labels++;
      } else if (point.has(k)) d.labels++;
      else point.set(k, v);
    }
    if (!res.has('service.name')) res.set('service.name', { v: 'unknown_service', exact: true });
    const rattrs = [...res].map(([k, { v }]) => attr(k, v)).sort(sortKV);
    const rk = JSON.stringify(rattrs);
    let r = resources.get(rk);
    if (!r) {
      r = { attrs: rattrs, metrics: new Map(), seen: new Set() };
      resources.set(rk, r);
    }
    const pattrs = [...point].map(([k, v]) => attr(k, v)).sort(sortKV);
    const pk = `${m.name}\u0000${JSON.stringify(pattrs)}`;
    if (r.seen.has(pk)) {
      d.values++;
      continue;
    }
    let p: NumberPoint | HistPoint | undefined;
    if (m.type === 'histogram') {
      if (f.sketch) {
        const b = exponentialBuckets(f.sketch);
        const hp: HistPoint = { attrs: pattrs, b };
        const sum = (f.sum ?? 0) * m.scale;
        // the proto: sum only for non-negative events; a non-finite sum is left out
        if (b.count > 0 && Number.isFinite(sum) && (f.min ?? 0) >= 0) hp.sum = sum;
        if (b.count > 0 && Number.isFinite(f.min) && Number.isFinite(f.max)) {
          hp.min = (f.min as number) * m.scale;
          hp.max = (f.max as number) * m.scale;
        }
        p = hp;
      }
    } else {
      const value = f.value * m.scale;
      if (Number.isFinite(value) && !(m.type === 'counter' && value < 0)) p = { attrs: pattrs, value };
    }
    if (!p) {
      d.values++;
      continue;
    }
    r.seen.add(pk);
    let metric = r.metrics.get(m.name);
    if (!metric) {
      metric = { name: m.name, unit: m.unit, type: m.type, points: [] };
      r.metrics.set(m.name, metric);
    }
    metric.points.push(p);
  }
  return {
    start: ns(w.start),
    end: ns(w.end),
    since: ns(Math.min(since, w.start)),
    // a resource whose every point was left out is not sent
    resources: [...resources.values()].filter((r) => r.metrics.size > 0).map((r) => ({ attrs: r.attrs, metrics: [...r.metrics.values()] })),
  };
}

const DELTA = 1;
const CUMULATIVE = 2;

/** The model in OTLP/JSON: lowerCamelCase keys, 64-bit integers as decimal strings, enums as numbers. */
export function otlpJson(m: OtlpModel): { resourceMetrics: unknown[] } {
  const start = String(m.start);
  const end = String(m.end);
  const since = String(m.since);
  return {
    resourceMetrics: m.resources.map((r) => ({
      resource: { attributes: r.attrs },
      scopeMetrics: [
        {
          scope: SCOPE,
          metrics: r.metrics.map((x) => {
            const head = { name: x.name, ...(x.unit ? { unit: x.unit } : {}) };
            if (x.type === 'histogram') {
              const dataPoints = (x.points as HistPoint[]).map((p) => ({
                attributes: p.attrs,
                startTimeUnixNano: start,
                timeUnixNano: end,
                count: String(p.b.count),
                ...(p.sum !== undefined ? { sum: p.sum } : {}),
                scale: p.b.scale,
                zeroCount: String(p.b.zeroCount),
                positive: { offset: p.b.positive.offset, bucketCounts: p.b.positive.bucketCounts.map(String) },
                negative: { offset: p.b.negative.offset, bucketCounts: p.b.negative.bucketCounts.map(String) },
                ...(p.min !== undefined ? { min: p.min, max: p.max } : {}),
                zeroThreshold: ZERO_THRESHOLD,
              }));
              return { ...head, exponentialHistogram: { aggregationTemporality: DELTA, dataPoints } };
            }
            const cumulative = x.type === 'updowncounter';
            const dataPoints = (x.points as NumberPoint[]).map((p) => ({
              attributes: p.attrs,
              ...(x.type === 'gauge' ? {} : { startTimeUnixNano: cumulative ? since : start }),
              timeUnixNano: end,
              asDouble: p.value,
            }));
            if (x.type === 'gauge') return { ...head, gauge: { dataPoints } };
            return {
              ...head,
              sum: { aggregationTemporality: cumulative ? CUMULATIVE : DELTA, isMonotonic: !cumulative, dataPoints },
            };
          }),
        },
      ],
    })),
  };
}

function kvs(b: Buf, num: number, attrs: KeyValue[]): void {
  for (const a of attrs) {
    const kv = new Buf();
    kv.string(1, a.key);
    const v = new Buf();
    if ('intValue' in a.value) v.uint(3, Number(a.value.intValue));
    else v.string(1, a.value.stringValue);
    kv.bytesField(2, v.done());
    b.bytesField(num, kv.done());
  }
}

/** The model as an ExportMetricsServiceRequest in protobuf (opentelemetry-proto, metrics/v1 and collector/metrics/v1). */
export function otlpProto(m: OtlpModel): Uint8Array {
  const req = new Buf(4096);
  for (const r of m.resources) {
    const rm = new Buf();
    const res = new Buf();
    kvs(res, 1, r.attrs);
    rm.bytesField(1, res.done());
    const sm = new Buf();
    const scope = new Buf();
    scope.string(1, SCOPE.name);
    scope.string(2, SCOPE.version);
    sm.bytesField(1, scope.done());
    for (const x of r.metrics) {
      const mb = new Buf();
      mb.string(1, x.name);
      if (x.unit) mb.string(3, x.unit);
      const data = new Buf();
      if (x.type === 'histogram') {
        for (const p of x.points as HistPoint[]) {
          const dp = new Buf();
          kvs(dp, 1, p.attrs);
          dp.fixed64Field(2, m.start);
          dp.fixed64Field(3, m.end);
          dp.fixed64Field(4, BigInt(p.b.count));
          if (p.sum !== undefined) dp.doubleField(5, p.sum);
          dp.sint(6, p.b.scale);
          dp.fixed64Field(7, BigInt(p.b.zeroCount));
          for (const [num, side] of [
            [8, p.b.positive],
            [9, p.b.negative],
          ] as const) {
            const bk = new Buf();
            bk.sint(1, side.offset);
            bk.packed(2, side.bucketCounts);
            dp.bytesField(num, bk.done());
          }
          if (p.min !== undefined) {
            dp.doubleField(12, p.min);
            dp.doubleField(13, p.max as number);
          }
          dp.doubleField(14, ZERO_THRESHOLD);
          data.bytesField(1, dp.done());
        }
        data.uint(2, DELTA);
        mb.bytesField(10, data.done());
      } else {
        const cumulative = x.type === 'updowncounter';
        for (const p of x.points as NumberPoint[]) {
          const dp = new Buf();
          kvs(dp, 7, p.attrs);
          if (x.type !== 'gauge') dp.fixed64Field(2, cumulative ? m.since : m.start);
          dp.fixed64Field(3, m.end);
          dp.doubleField(4, p.value);
          data.bytesField(1, dp.done());
        }
        if (x.type === 'gauge') mb.bytesField(5, data.done());
        else {
          data.uint(2, cumulative ? CUMULATIVE : DELTA);
          data.uint(3, cumulative ? 0 : 1);
          mb.bytesField(7, data.done());
        }
      }
      sm.bytesField(2, mb.done());
    }
    rm.bytesField(2, sm.done());
    req.bytesField(1, rm.done());
  }
  return req.done();
}

/** The JSON body of a window (kept for callers of the first API). */
export function otlpRequest(w: FlushResult): { resourceMetrics: unknown[] } {
  return otlpJson(otlpModel(w));
}

/** The first byte of a spooled OTLP batch: bit 0 JSON (else protobuf), bit 1 gzip. A batch from before it starts with `{`. */
const JSON_BIT = 1;
const GZIP_BIT = 2;

/**
 * OTLP/HTTP (opentelemetry-proto 1.x): one ExportMetricsServiceRequest per window, in protobuf
 * (default) or JSON, gzip-compressed (default) or not, built by `otlpModel`. Retries 429, 502, 503
 * and 504 with backoff, honouring Retry-After (capped), as the OTLP specification says; other
 * statuses set the batch aside. Each batch carries its encoding, so a change of `encoding:` between
 * runs still sends what the spool holds correctly.
 */
export class OtlpExporter extends QueuedExporter {
  /** each metric name's data type, kept so a name never changes type between requests */
  private readonly kinds = new Map<string, Mapping['type']>();
  private readonly since = Date.now();

  constructor(private readonly o: OtlpOptions) {
    super(`otlp ${new URL(o.url).host}`, o);
  }

  protected encode(w: FlushResult): Array<{ body: Uint8Array; samples: number }> {
    const d: Dropped = { labels: 0, values: 0 };
    const model = otlpModel(w, d, this.kinds, this.since);
    this.status.labels_dropped = (this.status.labels_dropped ?? 0) + d.labels;
    this.status.values_dropped = (this.status.values_dropped ?? 0) + d.values;
    let samples = 0;
    for (const r of model.resources) for (const x of r.metrics) samples += x.points.length;
    if (samples === 0) return [];
    const json = this.o.encoding === 'json';
    const gzip = this.o.compression !== 'none';
    let body: Uint8Array = json ? Buffer.from(JSON.stringify(otlpJson(model))) : otlpProto(model);
    if (gzip) body = gzipSync(body);
    const framed = new Uint8Array(body.length + 1);
    framed[0] = (json ? JSON_BIT : 0) | (gzip ? GZIP_BIT : 0);
    framed.set(body, 1);
    return [{ body: framed, samples }];
  }

  protected deliver(framed: Uint8Array): Promise<Outcome> {
    const legacy = framed[0] === 0x7b;
    const flags = legacy ? JSON_BIT : (framed[0] as number);
    const body = legacy ? framed : framed.subarray(1);
    return post(
      this,
      this.o.url,
      body,
      {
        'content-type': flags & JSON_BIT ? 'application/json' : 'application/x-protobuf',
        ...(flags & GZIP_BIT ? { 'content-encoding': 'gzip' } : {}),
      },
      (s) => s === 429 || s === 502 || s === 503 || s === 504,
      this.o.timeout,
      this.o.headers,
    );
  }
}
