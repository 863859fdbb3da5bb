import { metricName } from 'ekg-vitals';
// Snappy's raw block format, as remote write requires (docs/dependencies.md)
import { compress } from 'snappyjs';
import type { Flushed, FlushResult } from '../aggregate/aggregator.js';
import { QUANTILES as MODEL_QUANTILES } from '../model/series.js';
import { type Outcome, post, QueuedExporter, type QueueOptions } from './exporter.js';
import { tagPairs } from './measurements.js';
import { encodeWriteRequest, type TimeSeries } from './protobuf.js';

export interface RemoteWriteOptions extends QueueOptions {
  url: string;
  /** batches kept while the receiver is away (default 8,640: a day of 10 s windows, within the spool's bytes) */
  maxQueue?: number;
  timeout?: number;
  /** extra request headers (auth, tenant); the protocol's own (Content-Type, Content-Encoding, …) cannot be overridden */
  headers?: Record<string, string>;
}

/** Quantiles exported for a distribution: 0 and 1 carry min and max, as Prometheus summaries allow. */
const QUANTILES: Array<[string, (f: Flushed) => number | undefined]> = [
  ['0', (f) => f.min],
  ...MODEL_QUANTILES.map(({ name, q }): [string, (f: Flushed) => number | undefined] => [String(q), (f) => f.quantiles?.[name]]),
  ['1', (f) => f.max],
];

/** What encoding a window had to leave out or change, so that the request stays valid (counted in the exporter's status). */
export interface Dropped {
  /** tags that collided with another tag or a label ekg sets, and were renamed or left out */
  labels: number;
  /** samples left out: a non-finite value, or a second series with the same name and labels */
  values: number;
}

/** A tag key as a Prometheus label name (ekg's metricName, without colons: `a.b` → `a_b`, `__x` → `_x`). */
export function labelName(k: string): string {
  return metricName(k).replace(/:/g, '_');
}

/**
 * Tags as Prometheus labels, valid by construction: names made valid, empty values (bare tags) left
 * out, as Prometheus reads an empty value as absent; a tag whose name ekg sets itself (`quantile` on
 * a summary) becomes `exported_<name>`, as Prometheus does on scrape. When two tags give one name
 * (`a.b` and `a_b`), the one already spelled that way wins, else the one whose key sorts first; the
 * others are left out and counted. `exact` is false when anything was left out or renamed.
 */
export function labelsOf(tags: string, reserved: readonly string[], d: Dropped): { labels: Array<[string, string]>; exact: boolean } {
  const won = new Map<string, { key: string; value: string }>();
  let exact = true;
  for (const [k, v] of tagPairs(tags)) {
    if (v === '') {
      exact = false;
      continue;
    }
    let name = labelName(k);
    if (reserved.includes(name)) {
      name = `exported_${name}`;
      exact = false;
      d.labels++;
    }
    const had = won.get(name);
    if (!had) {
      won.set(name, { key: k, value: v });
      continue;
    }
    exact = false;
    d.labels++;
    const better = (k === name) !== (had.key === name) ? k === name : k < had.key;
    if (better) won.set(name, { key: k, value: v });
  }
  const labels = [...won].map(([n, { value }]) => [n, value] as [string, string]);
  return { labels, exact };
}

/** The Prometheus name of a series: `_total` on counters (never twice), and never on anything else. */
export function familyName(f: Pick<Flushed, 'name' | 'kind'>): string {
  const base = metricName(f.name);
  const bare = base.endsWith('_total') && base.length > 6 ? base.slice(0, -6) : base;
  return f.kind === 'counter' ? `${bare}_total` : bare;
}

const byName = (a: [string, string], b: [string, string]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/**
 * A window in the Prometheus spelling: dotted names become `snake_case` (ekg's metricName);
 * counters are cumulative `<name>_total`; gauges and sets gauges; distributions summaries with
 * `quantile` 0 (min), 0.5 … 0.999 and 1 (max), and cumulative `_sum` and `_count`.
 *
 * Valid by construction (the spec: label names unique and sorted, one series per label set): see
 * `labelsOf` for tags; a non-finite value (a counter past 1.8e308) is left out and counted; when two
 * series end up with the same name and labels (`z|#flag` and `z`, once the bare tag is gone), the one
 * whose tags mapped exactly wins, else the first by name and tags, and the other is counted.
 */
export function toTimeSeries(w: FlushResult, d: Dropped = { labels: 0, values: 0 }): TimeSeries[] {
  const ms = w.end;
  const out = new Map<string, { ts: TimeSeries; rank: string }>();
  const add = (name: string, labels: Array<[string, string]>, value: number, rank: string, extra?: [string, string]) => {
    if (!Number.isFinite(value)) {
      d.values++;
      return;
    }
    const all: Array<[string, string]> = [['__name__', name], ...labels];
    if (extra) all.push(extra);
    all.sort(byName);
    const key = all.map(([k, v]) => `${k}\u0000${v}`).join('\u0001');
    const had = out.get(key);
    if (had) {
      d.values++;
      if (had.rank <= rank) return;
    }
    out.set(key, { ts: { labels: all, samples: [[value, ms]] }, rank });
  };
  for (const f of w.series) {
    // a gauge not set in this window is not data (docs/time-model.md): its series goes stale instead
    if (f.carried) continue;
    const name = familyName(f);
    const { labels, exact } = labelsOf(f.tags, f.kind === 'distribution' ? ['quantile'] : [], d);
    const rank = `${exact ? 0 : 1}\u0000${f.name}\u0000${f.tags}`;
    if (f.kind === 'counter') add(name, labels, f.total ?? f.value, rank);
    else if (f.kind === 'gauge' || f.kind === 'set') add(name, labels, f.value, rank);
    else {
      for (const [q, get] of QUANTILES) {
        const v = get(f);
        if (v !== undefined && !Number.isNaN(v)) add(name, labels, v, rank, ['quantile', q]);
      }
      add(`${name}_sum`, labels, f.totalSum ?? f.sum ?? 0, rank);
      add(`${name}_count`, labels, f.total ?? f.count ?? 0, rank);
    }
  }
  return [...out.values()].map((x) => x.ts);
}

const keyOf = (ts: TimeSeries) => ts.labels.map(([k, v]) => `${k}\u0000${v}`).join('\u0001');

/**
 * Prometheus remote write 1.0: each window as one snappy-compressed protobuf WriteRequest, with
 * the spec's headers and a User-Agent with ekg-agent's version. A series sent in the last window and
 * absent from this one gets a staleness marker (the NaN 0x7ff0000000000002), so a stopped process
 * leaves instant queries at once. 5xx, 429 and network errors are retried with exponential backoff
 * and jitter (or the receiver's Retry-After), in order; other 4xx mean the batch is malformed, and a
 * 5xx whose body says so gets INVALID_TRIES tries: then it is set aside, counted and logged once, and
 * the queue moves on. Batches wait in the exporter's spool (exporter.ts).
 */
export class RemoteWriteExporter extends QueuedExporter {
  /** series of the last window, by label key: the ones missing from the next get a staleness marker */
  private last = new Map<string, Array<[string, string]>>();

  constructor(private readonly o: RemoteWriteOptions) {
    super(`remote_write ${new URL(o.url).host}`, { maxBatches: o.maxQueue ?? 8640, ...o });
  }

  protected encode(w: FlushResult): Array<{ body: Uint8Array; samples: number }> {
    const d: Dropped = { labels: 0, values: 0 };
    const ts = toTimeSeries(w, d);
    this.status.labels_dropped = (this.status.labels_dropped ?? 0) + d.labels;
    this.status.values_dropped = (this.status.values_dropped ?? 0) + d.values;
    const now = new Map<string, Array<[string, string]>>();
    for (const t of ts) now.set(keyOf(t), t.labels);
    for (const [k, labels] of this.last) if (!now.has(k)) ts.push({ labels, samples: [[Number.NaN, w.end, 'stale']] });
    this.last = now;
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
      },
      undefined,
      this.o.timeout,
      this.o.headers,
    );
  }
}
