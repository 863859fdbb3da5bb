import { defOf } from 'ekg-vitals';
import type { FlushResult } from '../aggregate/aggregator.js';
import { type Outcome, post, QueuedExporter, type QueueOptions } from './exporter.js';
import { measurements, tagPairs } from './measurements.js';

export interface MackerelOptions extends QueueOptions {
  /** the API key (from an env var or a file: never from the YAML in clear) */
  apiKey: string;
  /** service metrics of this Mackerel service; or, with `hostId`, host metrics (`custom.*`) */
  service?: string;
  hostId?: string;
  /** default https://api.mackerelio.com */
  url?: string;
  /** post graph definitions so Mackerel groups ekg's metrics with units (default true) */
  graphDefs?: boolean;
  timeout?: number;
}

/** Mackerel's names: letters, digits, `.`, `_` and `-` only. */
export const mackerelName = (s: string) => s.replace(/[^a-zA-Z0-9._-]/g, '_');

const UNITS: Record<string, string> = { ms: 'milliseconds', bytes: 'bytes', count: 'integer', seconds: 'seconds' };
const MAX_PER_POST = 1000;

/** The instance a series belongs to, as one name segment (`web-1_4242`), or '' when it has no identity tags. */
function instanceSegment(tags: string): string {
  const t = Object.fromEntries(tagPairs(tags));
  const parts = [t.host, t.pid, t.worker, t.instance].filter((x): x is string => !!x);
  return parts.length ? mackerelName(parts.join('_')).replace(/\./g, '_') : '';
}

/**
 * Mackerel: service metrics (`POST /api/v0/services/<service>/tsdb`) or host metrics
 * (`POST /api/v0/tsdb` with `hostId`, names under `custom.`), `[{"name","time","value"}]` in
 * batches of 1,000, with `X-Api-Key`. Each metric is named `<name>.<instance>`: Mackerel draws a
 * service's metrics one graph per name up to the last dot, so each graph holds one metric's
 * instances; for host metrics a graph definition (`POST /api/v0/graph-defs/create`, once per group)
 * does the same, with the unit. 429 and 5xx back off and retry; another 4xx sets the batch aside.
 */
export class MackerelExporter extends QueuedExporter {
  private readonly base: string;
  private readonly defined = new Set<string>();

  constructor(private readonly o: MackerelOptions) {
    super(`mackerel ${o.service ? `service ${o.service}` : `host ${o.hostId}`}`, o);
    if (!o.apiKey) throw new Error('mackerel: no API key (set the env var or file named by api_key_env or api_key_file)');
    if (!o.service === !o.hostId) throw new Error('mackerel: set exactly one of service or host_id');
    this.base = (o.url ?? 'https://api.mackerelio.com').replace(/\/$/, '');
  }

  protected encode(w: FlushResult): Array<{ body: Uint8Array; samples: number }> {
    const time = Math.round(w.end / 1000);
    const prefix = this.o.hostId ? 'custom.' : '';
    const points: Array<Record<string, string | number>> = [];
    const graphs = new Map<string, { unit: string; stacked: boolean }>();
    for (const f of w.series) {
      const inst = instanceSegment(f.tags);
      for (const [suffix, value] of measurements(f)) {
        const unit = UNITS[(defOf(suffix ? `${f.name}.${suffix}` : f.name) ?? defOf(f.name))?.unit ?? ''] ?? 'float';
        const group = `${prefix}${mackerelName(f.name)}${suffix ? `.${suffix}` : ''}`;
        const name = inst ? `${group}.${inst}` : group;
        points.push(this.o.hostId ? { hostId: this.o.hostId, name, time, value } : { name, time, value });
        // host metrics take graph definitions; service metrics are grouped by Mackerel itself, by the name up to its last dot
        if (this.o.hostId && inst && this.o.graphDefs !== false && !this.defined.has(group))
          graphs.set(group, { unit: suffix === 'count' ? 'integer' : unit, stacked: false });
      }
    }
    const out: Array<{ body: Uint8Array; samples: number }> = [];
    if (graphs.size > 0) {
      const defs = [...graphs].map(([group, g]) => ({
        name: group,
        displayName: group.replace(/^custom\./, ''),
        unit: g.unit,
        metrics: [{ name: `${group}.*`, displayName: '%1', isStacked: g.stacked }],
      }));
      for (const g of graphs.keys()) this.defined.add(g);
      out.push({ body: Buffer.from(`G${JSON.stringify(defs)}`), samples: 0 });
    }
    for (let i = 0; i < points.length; i += MAX_PER_POST) {
      const chunk = points.slice(i, i + MAX_PER_POST);
      out.push({ body: Buffer.from(`M${JSON.stringify(chunk)}`), samples: chunk.length });
    }
    return out;
  }

  protected deliver(body: Uint8Array): Promise<Outcome> {
    const text = Buffer.from(body).toString('utf8');
    const path =
      text[0] === 'G'
        ? '/api/v0/graph-defs/create'
        : this.o.hostId
          ? '/api/v0/tsdb'
          : `/api/v0/services/${encodeURIComponent(this.o.service as string)}/tsdb`;
    return post(
      this,
      `${this.base}${path}`,
      text.slice(1),
      { 'content-type': 'application/json', 'x-api-key': this.o.apiKey },
      undefined,
      this.o.timeout,
    );
  }
}
