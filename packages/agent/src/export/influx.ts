import type { FlushResult } from '../aggregate/aggregator.js';
import { type Outcome, post, QueuedExporter, type QueueOptions } from './exporter.js';
import { measurements, tagPairs } from './measurements.js';

export interface InfluxOptions extends QueueOptions {
  /** the write endpoint: InfluxDB 1 `/write?db=…`, 2 `/api/v2/write?org=…&bucket=…`, VictoriaMetrics `/write` */
  url: string;
  /** sent as `Authorization: Token …` (InfluxDB 2); read from the environment, never from the file */
  token?: string;
  timeout?: number;
}

// line protocol escapes: measurement (comma, space), tag keys and values (comma, equals, space)
const measurement = (s: string) => s.replace(/[, ]/g, '\\$&');
const tag = (s: string) => s.replace(/[,= ]/g, '\\$&');

/** InfluxDB line protocol, ms precision: `name,k=v value=1 <ms>`; a distribution's statistics as fields of one line. */
export function influxLines(w: FlushResult): string {
  const ts = Math.round(w.end);
  let out = '';
  for (const f of w.series) {
    const seen = new Set<string>();
    // a tag key once (the first value), as line protocol requires; empty values are not allowed
    const tags = tagPairs(f.tags)
      .filter(([k, v]) => v !== '' && !seen.has(k) && seen.add(k) !== undefined)
      .map(([k, v]) => `,${tag(k)}=${tag(v)}`)
      .join('');
    const fields = measurements(f)
      .map(([k, v]) => `${k || 'value'}=${v}`)
      .join(',');
    if (fields) out += `${measurement(f.name)}${tags} ${fields} ${ts}\n`;
  }
  return out;
}

export class InfluxExporter extends QueuedExporter {
  private readonly url: string;

  constructor(private readonly o: InfluxOptions) {
    super(`influx ${new URL(o.url).host}`, o);
    const u = new URL(o.url);
    if (!u.searchParams.has('precision')) u.searchParams.set('precision', 'ms');
    this.url = u.href;
  }

  protected encode(w: FlushResult): Array<{ body: Uint8Array; samples: number }> {
    const text = influxLines(w);
    return text ? [{ body: Buffer.from(text), samples: text.split('\n').length - 1 }] : [];
  }

  protected deliver(body: Uint8Array): Promise<Outcome> {
    return post(
      this,
      this.url,
      body,
      { 'content-type': 'text/plain; charset=utf-8', ...(this.o.token ? { authorization: `Token ${this.o.token}` } : {}) },
      undefined,
      this.o.timeout,
    );
  }
}
