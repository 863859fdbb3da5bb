import { metricName } from 'ekg-vitals';
import { checkAgg, timeAxis } from './aggregate.js';
import {
  type Agg,
  DEFAULT_POINTS,
  globToRegExp,
  type Instance,
  PERCENTILES,
  type Query,
  QueryError,
  type QueryResult,
  type SeriesInfo,
  type StoreReader,
  staleAfter,
  tagsMatch,
} from './reader.js';

export interface PromStoreOptions {
  /** the query API's base, e.g. http://127.0.0.1:8428 (VictoriaMetrics) or http://127.0.0.1:9090 (Prometheus) */
  url: string;
  /** the agent's window, ms: the finest resolution the engine holds */
  flushInterval: number;
  timeout?: number;
  headers?: Record<string, string>;
}

interface PromSeries {
  metric: Record<string, string>;
  values?: Array<[number, string]>;
  value?: [number, string];
}

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"');

/** Tag filters as PromQL matchers: `k="v"`, and `k!=""` for `k:*`. */
function matchers(tags: Record<string, string>): string[] {
  return Object.entries(tags).map(([k, v]) => (v === '*' ? `${metricName(k)}!=""` : `${metricName(k)}="${esc(v)}"`));
}

function sel(name: string, tags: Record<string, string>, extra: string[] = []): string {
  return `${name}{${[...matchers(tags), ...extra].join(',')}}`;
}

/** Labels back as tags: `__name__` and `quantile` are the store's, not the series'. */
function tagsOf(metric: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(metric)) if (k !== '__name__' && k !== 'quantile') out[k] = v;
  return out;
}

/**
 * The store's read side over a Prometheus-compatible query API (VictoriaMetrics single or cluster,
 * Prometheus, Mimir), for data the agent sends there by remote write. It answers the same
 * `/api/v1/instances`, `series` and `query` as the SQLite store, so the dashboard works on either.
 * Names are in the Prometheus spelling (`runtime_eventloop_delay_p99`; dotted names are mapped on
 * the way in). A percentile across several series is the highest of their percentiles: the engine
 * holds summaries, not sketches, so it cannot merge them (the SQLite store can).
 */
export class PromStore implements StoreReader {
  readonly kind = 'prometheus';
  private readonly base: string;

  constructor(private readonly o: PromStoreOptions) {
    this.base = o.url.replace(/\/+$/, '');
  }

  private get res(): number {
    return Math.max(1, Math.round(this.o.flushInterval / 1000));
  }

  private async api<T>(path: string, params: Record<string, string | string[]>): Promise<T> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const x of Array.isArray(v) ? v : [v]) qs.append(k, x);
    const res = await fetch(`${this.base}/api/v1/${path}`, {
      method: 'POST',
      body: qs,
      signal: AbortSignal.timeout(this.o.timeout ?? 15_000),
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...this.o.headers },
    });
    const text = await res.text();
    let body: { status?: string; data?: T; error?: string };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new Error(`${this.base}/api/v1/${path}: HTTP ${res.status}, not JSON: ${text.slice(0, 200)}`);
    }
    if (body.status !== 'success') throw new Error(`${this.base}/api/v1/${path}: ${body.error ?? `HTTP ${res.status}`}`);
    return body.data as T;
  }

  async instances(now = Date.now()): Promise<Instance[]> {
    // the engine keeps no interval per instance: 3 of the agent's windows (docs/time-model.md)
    const fresh = staleAfter(this.o.flushInterval);
    const t = String(now / 1000);
    const ident = '(service, host, pid, worker, instance)';
    const [apps, ups] = await Promise.all([
      this.lastSeen(ident, t, now),
      this.api<{ result: PromSeries[] }>('query', { query: 'max by (target, reason) (up{target!=""})', time: t }),
    ]);
    const out: Instance[] = [];
    for (const r of apps) {
      const last = Number(r.value?.[1]) * 1000;
      const m = r.metric;
      const ident: Record<string, string> = {};
      for (const k of ['service', 'host', 'pid', 'worker', 'instance']) if (m[k]) ident[k] = m[k] as string;
      out.push({
        key: Object.entries(ident)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
        ...ident,
        first_seen: null,
        last_seen: last,
        health: now - last <= fresh ? 'reporting' : 'stale',
      });
    }
    const targets = new Map<string, Instance>();
    for (const r of ups.result) {
      const target = r.metric.target as string;
      const up = Number(r.value?.[1]) >= 1;
      const prev = targets.get(target);
      // the series without a reason is the current one when the target is up
      if (prev?.health === 'up') continue;
      targets.set(target, {
        key: `target=${target}`,
        target,
        first_seen: null,
        last_seen: Number(r.value?.[0]) * 1000,
        health: up ? 'up' : 'down',
        ...(!up && r.metric.reason ? { reason: r.metric.reason } : {}),
      });
    }
    return [...out, ...targets.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  /**
   * The last sample time of every identity. VictoriaMetrics answers `timestamp()` over many names at
   * once; Prometheus refuses it (the names dropped, the label sets clash), so there the samples of
   * the last three windows are read and the latest taken per identity.
   */
  private async lastSeen(ident: string, t: string, now: number): Promise<PromSeries[]> {
    try {
      const r = await this.api<{ result: PromSeries[] }>('query', {
        query: `max by ${ident} (timestamp({service!=""}) or timestamp({pid!=""}))`,
        time: t,
      });
      return r.result;
    } catch (err) {
      if (!/same labelset|duplicate/i.test((err as Error).message)) throw err;
    }
    const r = await this.api<{ result: PromSeries[] }>('query', {
      query: `{service!=""}[${Math.max(60, 3 * this.res)}s]`,
      time: String(now / 1000),
    });
    const latest = new Map<string, PromSeries>();
    for (const m of r.result) {
      const id: Record<string, string> = {};
      for (const k of ['service', 'host', 'pid', 'worker', 'instance']) if (m.metric[k]) id[k] = m.metric[k] as string;
      const key = JSON.stringify(id);
      const ts = Math.max(...(m.values ?? []).map((v) => v[0]));
      const have = latest.get(key);
      if (!have || Number(have.value?.[1]) < ts) latest.set(key, { metric: id, value: [ts, String(ts)] });
    }
    return [...latest.values()];
  }

  async series(match: string, tags: Record<string, string>, limit = 10_000, now = Date.now()): Promise<SeriesInfo[]> {
    // the glob in the Prometheus spelling: dots become underscores, * and ? stay
    const glob = match
      .split(/([*?])/)
      .map((p) => (p === '*' || p === '?' || p === '' ? p : metricName(p)))
      .join('');
    const re = match ? globToRegExp(glob) : undefined;
    const nameRe = re ? re.source.slice(1, -1) : '.+';
    const data = await this.api<Array<Record<string, string>>>('series', {
      'match[]': `{__name__=~"${esc(nameRe)}(_total|_sum|_count)?",${matchers(tags).join(',')}}`.replace(',}', '}'),
      start: String((now - 3_600_000) / 1000),
      end: String(now / 1000),
    });
    const seen = new Map<string, SeriesInfo>();
    for (const m of data) {
      const full = m.__name__ as string;
      let name = full;
      let kind: SeriesInfo['kind'] = 'gauge';
      if (m.quantile !== undefined) kind = 'distribution';
      else if (/_total$/.test(full)) {
        name = full.slice(0, -6);
        kind = 'counter';
      } else if (/_(sum|count)$/.test(full)) {
        name = full.replace(/_(sum|count)$/, '');
        kind = 'distribution';
      }
      if (re && !re.test(name)) continue;
      const t = tagsOf(m);
      if (!tagsMatch(t, tags)) continue;
      const key = `${name}|${JSON.stringify(Object.entries(t).sort())}`;
      if (!seen.has(key)) seen.set(key, { name, tags: t, kind });
      if (seen.size >= limit) break;
    }
    return [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Which of `name`, `name_total`, `name_count` the engine holds, with these tags. */
  private async kindOf(base: string, tags: Record<string, string>, now: number): Promise<SeriesInfo['kind'] | undefined> {
    const data = await this.api<{ result: PromSeries[] }>('query', {
      query:
        `count by (__name__) (last_over_time({__name__=~"${esc(base)}|${esc(base)}_total|${esc(base)}_count",${matchers(tags).join(',')}}[1d]))`.replace(
          ',}',
          '}',
        ),
      time: String(now / 1000),
    });
    const names = new Set(data.result.map((r) => r.metric.__name__));
    if (names.has(`${base}_count`)) return 'distribution';
    if (names.has(`${base}_total`)) return 'counter';
    if (names.has(base)) return 'gauge';
    return undefined;
  }

  async query(q: Query, now = Date.now()): Promise<QueryResult> {
    const res = this.res;
    const range = q.to - q.from;
    const want = q.step ?? Math.max(range / DEFAULT_POINTS, res * 1000);
    const stepS = Math.max(res, Math.ceil(want / 1000 / res) * res);
    const base = metricName(q.name);
    const kind = await this.kindOf(base, q.tags, now);
    checkAgg(q.agg, kind, q.name);
    const t = timeAxis(q.from, q.to, stepS);
    if (!kind || t.length === 0) return { t, series: [], step: stepS, resolution: res };
    const inner = this.expr(base, kind, q.agg, q.tags, stepS);
    const outerOp: Record<Agg, string> = {
      avg: 'avg',
      min: 'min',
      max: 'max',
      sum: 'sum',
      last: 'sum',
      rate: 'sum',
      p50: 'max',
      p90: 'max',
      p95: 'max',
      p99: 'max',
      p999: 'max',
    };
    const expr = q.by === undefined ? inner : `${outerOp[q.agg]} by (${q.by.map(metricName).join(', ')}) (${inner})`;
    const data = await this.api<{ result: PromSeries[] }>('query_range', {
      query: expr,
      start: String(t[0]),
      end: String(t[t.length - 1]),
      step: `${stepS}s`,
    });
    // the engine has answered: refused before the answer is spread over the time axis
    q.budget?.take(data.result.length, t.length);
    const first = t[0] as number;
    const series = data.result.map((r) => {
      const values: Array<number | null> = new Array(t.length).fill(null);
      for (const [ts, v] of r.values ?? []) {
        const i = Math.round((ts - first) / stepS);
        const n = Number(v);
        if (i >= 0 && i < t.length && Number.isFinite(n)) values[i] = n;
      }
      return { tags: tagsOf(r.metric), values };
    });
    return { t, series, step: stepS, resolution: res, kind };
  }

  /** The PromQL for one series' value per step, matching the SQLite store's semantics. */
  private expr(base: string, kind: SeriesInfo['kind'], agg: Agg, tags: Record<string, string>, stepS: number): string {
    const res = this.res;
    const step = `${stepS}s`;
    // a rate needs two samples: look back at least two windows
    const w = `${Math.max(stepS, 2 * res)}s`;
    if (kind === 'gauge' || kind === 'set') {
      const s = sel(base, tags);
      const fn: Partial<Record<Agg, string>> = {
        avg: 'avg_over_time',
        sum: 'avg_over_time',
        min: 'min_over_time',
        max: 'max_over_time',
        last: 'last_over_time',
      };
      return `${fn[agg]}(${s}[${step}])`;
    }
    if (kind === 'counter') {
      const s = sel(`${base}_total`, tags);
      if (agg === 'rate') return `rate(${s}[${w}])`;
      if (agg === 'sum') return `rate(${s}[${w}]) * ${stepS}`;
      if (agg === 'min' || agg === 'max') return `${agg}_over_time(rate(${s}[${2 * res}s])[${step}:${res}s]) * ${res}`;
      // avg and last: the mean sum of one window
      return `rate(${s}[${w}]) * ${res}`;
    }
    const q = PERCENTILES[agg];
    if (q !== undefined) return `max_over_time(${sel(base, tags, [`quantile="${q}"`])}[${step}])`;
    if (agg === 'min') return `min_over_time(${sel(base, tags, ['quantile="0"'])}[${step}])`;
    if (agg === 'max') return `max_over_time(${sel(base, tags, ['quantile="1"'])}[${step}])`;
    const count = sel(`${base}_count`, tags);
    const sum = sel(`${base}_sum`, tags);
    if (agg === 'rate') return `rate(${count}[${w}])`;
    if (agg === 'sum') return `rate(${sum}[${w}]) * ${stepS}`;
    if (agg === 'last') return `rate(${count}[${w}]) * ${res}`;
    return `rate(${sum}[${w}]) / rate(${count}[${w}])`;
  }
}

export { QueryError };
