import { defOf } from 'ekg';
import type { Flushed, FlushResult } from '../aggregate/aggregator.js';
import type { Sketch } from '../aggregate/sketch.js';
import { type Outcome, post, QueuedExporter, type QueueOptions } from './exporter.js';
import { tagPairs } from './measurements.js';

export interface OtlpOptions extends QueueOptions {
  /** the collector's metrics endpoint, e.g. http://127.0.0.1:4318/v1/metrics */
  url: string;
  headers?: Record<string, string>;
  timeout?: number;
}

type AnyValue = { stringValue: string } | { intValue: string } | { doubleValue: number };
interface KeyValue {
  key: string;
  value: AnyValue;
}

/** Tags that describe the process: they become resource attributes, the rest data-point attributes. */
const RESOURCE: Record<string, string> = {
  service: 'service.name',
  host: 'host.name',
  pid: 'process.pid',
  instance: 'service.instance.id',
};

const MAX_BUCKETS = 160;
/** ekg's units in UCUM, as OpenTelemetry writes them */
const UCUM: Record<string, string> = { ms: 'ms', bytes: 'By', count: '1', ratio: '1', seconds: 's', 'per second': '1/s' };

/** The OpenTelemetry name of a series: ekg's catalogue spelling when it is a plain name, else the dotted name. */
export function otelName(name: string): string {
  const spelled = defOf(name)?.otel;
  return spelled && /^[a-z0-9_.]+$/i.test(spelled) ? spelled : name;
}

function attr(key: string, v: string): KeyValue {
  return { key, value: key === 'process.pid' && /^\d+$/.test(v) ? { intValue: v } : { stringValue: v } };
}

/**
 * A DDSketch as an OTLP exponential histogram: each sketch bucket's value goes to the base-2 bucket
 * that holds it, at the finest scale (≤ 5, 2^(1/32) ≈ 2.2 % wide) whose buckets span the values in
 * at most 160 (the OpenTelemetry SDK default). Counts are exact; bounds within the scale's width.
 */
export function exponentialBuckets(sk: Sketch): {
  scale: number;
  zeroCount: number;
  positive: { offset: number; bucketCounts: string[] };
  negative: { offset: number; bucketCounts: string[] };
} {
  const j = sk.toJSON();
  const gamma = (1 + j.alpha) / (1 - j.alpha);
  const value = (i: number) => (2 * gamma ** i) / (gamma + 1);
  const logs = (pairs: Array<[number, number]>) => pairs.map(([i, c]) => [Math.log2(value(i)), c] as [number, number]);
  const pos = logs(j.pos);
  const neg = logs(j.neg);
  const all = [...pos, ...neg].map(([l]) => l);
  let scale = 5;
  if (all.length > 0) {
    const span = Math.max(...all) - Math.min(...all);
    while (scale > -10 && span * 2 ** scale >= MAX_BUCKETS - 1) scale--;
  }
  const side = (pairs: Array<[number, number]>) => {
    if (pairs.length === 0) return { offset: 0, bucketCounts: [] as string[] };
    // bucket index i holds (base^i, base^(i+1)]: i = ceil(log2(v) · 2^scale) − 1
    const idx = pairs.map(([l, c]) => [Math.ceil(l * 2 ** scale) - 1, c] as [number, number]);
    const lo = Math.min(...idx.map(([i]) => i));
    const hi = Math.max(...idx.map(([i]) => i));
    const counts = new Array<number>(hi - lo + 1).fill(0);
    for (const [i, c] of idx) counts[i - lo] = (counts[i - lo] as number) + c;
    return { offset: lo, bucketCounts: counts.map((c) => String(Math.round(c))) };
  };
  return { scale, zeroCount: j.zero, positive: side(pos), negative: side(neg) };
}

/**
 * OTLP/HTTP with the JSON encoding: one ExportMetricsServiceRequest per window, a resource per
 * process (`service.name`, `host.name`, `process.pid` from the tags), OpenTelemetry names for the
 * runtime metrics, counters as monotonic sums with delta temporality, gauges and sets as gauges,
 * distributions as exponential histograms from their sketches. Retries only on 429, 502, 503 and
 * 504, as the OTLP specification says.
 */
export class OtlpExporter extends QueuedExporter {
  constructor(private readonly o: OtlpOptions) {
    super(`otlp ${new URL(o.url).host}`, o);
  }

  protected encode(w: FlushResult): Array<{ body: Uint8Array; samples: number }> {
    const body = otlpRequest(w);
    const samples = w.series.length;
    return samples ? [{ body: Buffer.from(JSON.stringify(body)), samples }] : [];
  }

  protected deliver(body: Uint8Array): Promise<Outcome> {
    return post(
      this,
      this.o.url,
      body,
      { 'content-type': 'application/json', ...this.o.headers },
      (s) => s === 429 || s === 502 || s === 503 || s === 504,
      this.o.timeout,
    );
  }
}

export function otlpRequest(w: FlushResult): { resourceMetrics: unknown[] } {
  const start = String(BigInt(Math.round(w.start)) * 1_000_000n);
  const end = String(BigInt(Math.round(w.end)) * 1_000_000n);
  const resources = new Map<string, { attrs: KeyValue[]; metrics: Map<string, { f: Flushed; points: unknown[] }> }>();
  for (const f of w.series) {
    const res: KeyValue[] = [];
    const point: KeyValue[] = [];
    for (const [k, v] of tagPairs(f.tags)) {
      const r = RESOURCE[k];
      if (r) res.push(attr(r, v));
      else point.push(attr(k, v));
    }
    const rk = JSON.stringify(res);
    let r = resources.get(rk);
    if (!r) {
      r = { attrs: res, metrics: new Map() };
      resources.set(rk, r);
    }
    const name = otelName(f.name);
    let m = r.metrics.get(name);
    if (!m) {
      m = { f, points: [] };
      r.metrics.set(name, m);
    }
    const base = { attributes: point, startTimeUnixNano: start, timeUnixNano: end };
    if (f.kind === 'distribution') {
      const b = f.sketch
        ? exponentialBuckets(f.sketch)
        : { scale: 0, zeroCount: 0, positive: { offset: 0, bucketCounts: [] }, negative: { offset: 0, bucketCounts: [] } };
      m.points.push({ ...base, count: String(f.count ?? 0), sum: f.sum ?? 0, ...(f.count ? { min: f.min, max: f.max } : {}), ...b });
    } else m.points.push({ ...base, asDouble: f.value });
  }
  return {
    resourceMetrics: [...resources.values()].map((r) => ({
      resource: { attributes: r.attrs },
      scopeMetrics: [
        {
          scope: { name: 'ekg-agent' },
          metrics: [...r.metrics].map(([name, { f, points }]) => {
            const unit = defOf(f.name)?.unit;
            const ucum = unit ? UCUM[unit] : undefined;
            const head = { name, ...(ucum ? { unit: ucum } : {}) };
            if (f.kind === 'counter') return { ...head, sum: { aggregationTemporality: 1, isMonotonic: true, dataPoints: points } };
            if (f.kind === 'distribution') return { ...head, exponentialHistogram: { aggregationTemporality: 1, dataPoints: points } };
            return { ...head, gauge: { dataPoints: points } };
          }),
        },
      ],
    })),
  };
}
