import { metricName } from 'ekg';
import type { Flushed, FlushResult } from '../aggregate/aggregator.js';
import type { Sink } from '../sinks/sink.js';
import { parseTags } from '../store/reader.js';
import { encodeWriteRequest, type TimeSeries } from './protobuf.js';
import { compress } from './snappy.js';

export interface ExporterStatus {
  batches_sent: number;
  samples_sent: number;
  /** attempts that failed (each retry counts) */
  failures: number;
  /** batches set aside: refused as malformed (4xx other than 408/429) or pushed out of a full queue */
  batches_rejected: number;
  batches_dropped: number;
  queued: number;
  last_error?: string;
}

export interface RemoteWriteOptions {
  url: string;
  /** batches kept while the receiver is away (default 360: an hour of 10 s windows) */
  maxQueue?: number;
  timeout?: number;
  headers?: Record<string, string>;
  /** first retry delay, ms (default 500), doubling to `maxBackoff` (default 30 s), with jitter */
  backoff?: number;
  maxBackoff?: number;
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
 * once, and the queue moves on. (The on-disk spool that survives restarts comes with the exporters.)
 */
export class RemoteWriteExporter implements Sink {
  readonly name: string;
  readonly status: ExporterStatus = { batches_sent: 0, samples_sent: 0, failures: 0, batches_rejected: 0, batches_dropped: 0, queued: 0 };
  private readonly queue: Array<{ body: Uint8Array; samples: number }> = [];
  private sending = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private logged = new Set<string>();

  constructor(private readonly o: RemoteWriteOptions) {
    this.name = `remote_write ${new URL(o.url).host}`;
  }

  write(w: FlushResult): void {
    const ts = toTimeSeries(w);
    if (ts.length === 0) return;
    this.queue.push({ body: compress(encodeWriteRequest(ts)), samples: ts.length });
    if (this.queue.length > (this.o.maxQueue ?? 360)) {
      this.queue.shift();
      this.status.batches_dropped++;
    }
    this.status.queued = this.queue.length;
    this.kick();
  }

  private kick(): void {
    if (this.sending || this.timer || this.queue.length === 0) return;
    this.sending = true;
    void this.sendNext().finally(() => {
      this.sending = false;
    });
  }

  private async sendNext(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue[0] as { body: Uint8Array; samples: number };
      const outcome = await this.post(batch.body);
      if (outcome === 'ok' || outcome === 'reject') {
        this.queue.shift();
        this.status.queued = this.queue.length;
        this.attempt = 0;
        if (outcome === 'ok') {
          this.status.batches_sent++;
          this.status.samples_sent += batch.samples;
        } else this.status.batches_rejected++;
        continue;
      }
      // retry later: exponential backoff with full jitter, on an unref'd timer
      this.status.failures++;
      if (this.closed) return;
      const base = Math.min(this.o.maxBackoff ?? 30_000, (this.o.backoff ?? 500) * 2 ** this.attempt++);
      const delay = base / 2 + Math.random() * (base / 2);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.kick();
      }, delay);
      this.timer.unref();
      return;
    }
  }

  private async post(body: Uint8Array): Promise<'ok' | 'retry' | 'reject'> {
    try {
      const res = await fetch(this.o.url, {
        method: 'POST',
        body,
        signal: AbortSignal.timeout(this.o.timeout ?? 10_000),
        headers: {
          'content-encoding': 'snappy',
          'content-type': 'application/x-protobuf',
          'user-agent': 'ekg-agent',
          'x-prometheus-remote-write-version': '0.1.0',
          ...this.o.headers,
        },
      });
      const text = await res.text().catch(() => '');
      if (res.ok) {
        if (this.status.last_error) process.stderr.write(`ekg-agent: ${this.name}: sending again\n`);
        this.status.last_error = undefined;
        return 'ok';
      }
      const err = `HTTP ${res.status} ${text.slice(0, 200).trim()}`;
      this.status.last_error = err;
      if (res.status >= 500 || res.status === 429 || res.status === 408) return 'retry';
      this.once(`rejected`, `${this.name}: a batch was refused (${err}); set aside, not retried`);
      return 'reject';
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      this.status.last_error = err.name === 'TimeoutError' ? 'timeout' : (err.cause?.code ?? err.message);
      this.once(`down:${this.status.last_error}`, `${this.name}: cannot send (${this.status.last_error}); retrying with backoff`);
      return 'retry';
    }
  }

  private once(key: string, line: string): void {
    if (this.logged.has(key)) return;
    this.logged.add(key);
    process.stderr.write(`ekg-agent: ${line}\n`);
  }

  /** Tries what is queued once more (bounded by `timeout`), then gives up the timer. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.sending) await new Promise((r) => setTimeout(r, 10));
    if (this.queue.length > 0) await this.sendNext();
  }
}
