import { metricName } from 'ekg';
import type { Flushed, FlushResult } from '../aggregate/aggregator.js';
import { parseTags } from '../store/reader.js';
import { type Outcome, post, QueuedExporter, type QueueOptions } from './exporter.js';
import { encodeWriteRequest, type TimeSeries } from './protobuf.js';
import { compress } from './snappy.js';

export interface RemoteWriteOptions extends QueueOptions {
  url: string;
  /** batches kept while the receiver is away (default 8,640: a day of 10 s windows, within the spool's bytes) */
  maxQueue?: number;
  timeout?: number;
  headers?: Record<string, string>;
}

/** Quantiles exported for a distribution: 0 and 1 carry min and max, as Prometheus summaries allow. */
const QUANTILES: Array<[string, (f: Flushed) => number | undefined]> = [
  ['0', (f) => f.min],
  ['0.5', (f) => f.quantiles?.p50],
  ['0.9', (f) => f.quantiles?.p90],
  ['0.95', (f) => f.quantiles?.p95],
  ['0.99', (f) => f.quantiles?.p99],
  ['0.999', (f) => f.quantiles?.p999],
  ['1', (f) => f.max],
];

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Tags as Prometheus labels: names made valid, empty values left out (Prometheus reads them as absent). */
function labelsOf(tags: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(parseTags(tags))) {
    if (v === '') continue;
    const name = LABEL_NAME.test(k) ? k : k.replace(/[^a-zA-Z0-9_]/g, '_').replace(/^(\d)/, '_$1');
    if (name.startsWith('__')) continue;
    out.push([name, v]);
  }
  return out;
}

function series(name: string, labels: Array<[string, string]>, value: number, ms: number, extra?: [string, string]): TimeSeries {
  const all: Array<[string, string]> = [['__name__', name], ...labels];
  if (extra) all.push(extra);
  // the spec: label names sorted, unique
  all.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return { labels: all, samples: [[value, ms]] };
}

/**
 * A window in the Prometheus spelling: dotted names become `snake_case` (ekg's metricName);
 * counters are cumulative `<name>_total`; gauges and sets gauges; distributions summaries with
 * `quantile` 0 (min), 0.5 … 0.999 and 1 (max), and cumulative `_sum` and `_count`.
 */
export function toTimeSeries(w: FlushResult): TimeSeries[] {
  const out: TimeSeries[] = [];
  const ms = w.end;
  for (const f of w.series) {
    const base = metricName(f.name);
    const labels = labelsOf(f.tags);
    if (f.kind === 'counter') out.push(series(`${base}_total`, labels, f.total ?? f.value, ms));
    else if (f.kind === 'gauge' || f.kind === 'set') out.push(series(base, labels, f.value, ms));
    else {
      for (const [q, get] of QUANTILES) {
        const v = get(f);
        if (v !== undefined && Number.isFinite(v)) out.push(series(base, labels, v, ms, ['quantile', q]));
      }
      out.push(series(`${base}_sum`, labels, f.totalSum ?? f.sum ?? 0, ms));
      out.push(series(`${base}_count`, labels, f.total ?? f.count ?? 0, ms));
    }
  }
  return out;
}

/**
 * Prometheus remote write 1.0: each window as one snappy-compressed protobuf WriteRequest, with
 * the spec's headers. 5xx, 429 and network errors are retried with exponential backoff and
 * jitter, in order; other 4xx mean the batch is malformed: it is set aside, counted and logged
 * once, and the queue moves on. Batches wait in the exporter's spool (exporter.ts).
 */
export class RemoteWriteExporter extends QueuedExporter {
  constructor(private readonly o: RemoteWriteOptions) {
    super(`remote_write ${new URL(o.url).host}`, { maxBatches: o.maxQueue ?? 8640, ...o });
  }

  protected encode(w: FlushResult): Array<{ body: Uint8Array; samples: number }> {
    const ts = toTimeSeries(w);
    return ts.length === 0 ? [] : [{ body: compress(encodeWriteRequest(ts)), samples: ts.length }];
  }

  protected deliver(body: Uint8Array): Promise<Outcome> {
    return post(
      this,
      this.o.url,
      body,
      {
        'content-encoding': 'snappy',
        'content-type': 'application/x-protobuf',
        'x-prometheus-remote-write-version': '0.1.0',
        ...this.o.headers,
      },
      undefined,
      this.o.timeout,
    );
  }
}
