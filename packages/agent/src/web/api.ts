import { AGGS, type Agg, type Query, QueryError, type StoreReader } from '../store/reader.js';

/** `now`, `now-1h` or `-1h`, an ISO date, epoch seconds or epoch ms → epoch ms. */
export function parseTime(v: string, param: string, now: number): number {
  const s = v.trim();
  if (s === 'now') return now;
  const rel = /^(?:now)?-(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(s);
  if (rel) {
    const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
    return now - Number(rel[1]) * (unit[rel[2] as string] as number);
  }
  if (/^\d+(\.\d+)?$/.test(s)) {
    const n = Number(s);
    return n < 1e11 ? n * 1000 : n;
  }
  const d = Date.parse(s);
  if (Number.isFinite(d)) return d;
  throw new QueryError(param, `"${v}" is not a time: use now, now-1h, an ISO date, or epoch seconds or ms`);
}

/** `10s`, `1m`, `1h` or ms as a number → ms. */
export function parseStep(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(v.trim());
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  const n = m ? Number(m[1]) * (m[2] ? (unit[m[2]] as number) : 1) : Number.NaN;
  if (!(n >= 1000)) throw new QueryError('step', `"${v}" is not a step of at least 1s (like 10s, 1m, or ms as a number)`);
  return n;
}

/** `service:api,host:web-1` → { service: 'api', host: 'web-1' }. */
export function parseTagFilter(v: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  if (!v) return out;
  for (const part of v.split(',')) {
    const p = part.trim();
    if (!p) continue;
    const i = p.indexOf(':');
    if (i <= 0) throw new QueryError('tags', `"${p}" is not key:value (use key:* for any value)`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

const DEFAULT_AGG: Record<string, Agg> = { counter: 'rate', gauge: 'avg', set: 'avg', distribution: 'p99' };

/**
 * `GET /api/v1/instances`, `/api/v1/series?match=&tags=`, `/api/v1/query?name=&tags=&from=&to=&step=&agg=&by=`.
 * Returns the status and body; a bad parameter is a 400 naming it.
 */
export async function handleApi(reader: StoreReader, path: string, params: URLSearchParams, now = Date.now()): Promise<[number, unknown]> {
  try {
    if (path === '/api/v1/instances') return [200, { instances: await reader.instances() }];
    if (path === '/api/v1/series') {
      const limitRaw = params.get('limit');
      const limit = limitRaw === null ? 10_000 : Number(limitRaw);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100_000)
        throw new QueryError('limit', `"${limitRaw}" must be a whole number from 1 to 100000`);
      return [200, { series: await reader.series(params.get('match') ?? '', parseTagFilter(params.get('tags')), limit) }];
    }
    if (path === '/api/v1/query') return [200, await runQuery(reader, params, now)];
    if (path === '/api/v1/events') {
      const to = params.has('to') ? parseTime(params.get('to') as string, 'to', now) : now;
      const from = params.has('from') ? parseTime(params.get('from') as string, 'from', now) : to - 3_600_000;
      if (!(from < to)) throw new QueryError('from', 'must be before to');
      const events = (await reader.events?.(from, to, params.get('instance') ?? undefined, params.get('service') ?? undefined)) ?? [];
      return [200, { events }];
    }
    if (path === '/api/v1/batch') {
      // several queries in one request (a dashboard view's charts): answers in order, each its own
      // result or its own error, so one bad query does not fail the rest
      const qs = params.getAll('q');
      if (qs.length === 0) throw new QueryError('q', 'required: one or more URL-encoded query strings, e.g. q=name%3Dheap%26agg%3Dmax');
      if (qs.length > MAX_BATCH) throw new QueryError('q', `${qs.length} queries; at most ${MAX_BATCH} in one batch`);
      const results: unknown[] = [];
      for (const q of qs) {
        try {
          results.push(await runQuery(reader, new URLSearchParams(q), now));
        } catch (err) {
          if (err instanceof QueryError) results.push({ error: err.message, param: err.param });
          else throw err;
        }
      }
      return [200, { results }];
    }
    return [
      404,
      {
        error: `no such API: ${path}; there are /api/v1/instances, /api/v1/series, /api/v1/query, /api/v1/batch, /api/v1/events and /api/v1/self`,
      },
    ];
  } catch (err) {
    if (err instanceof QueryError) return [400, { error: err.message, param: err.param }];
    return [502, { error: `the store could not answer: ${(err as Error).message}` }];
  }
}

const MAX_BATCH = 200;

/** `name=&tags=&from=&to=&step=&agg=&by=` → the store's answer; a bad parameter throws QueryError naming it. */
async function runQuery(reader: StoreReader, params: URLSearchParams, now: number): Promise<unknown> {
  const name = params.get('name');
  if (!name) throw new QueryError('name', 'required: the metric name, e.g. name=runtime.eventloop.delay.p99');
  const to = params.has('to') ? parseTime(params.get('to') as string, 'to', now) : now;
  const from = params.has('from') ? parseTime(params.get('from') as string, 'from', now) : to - 3_600_000;
  if (!(from < to)) throw new QueryError('from', `must be before to (${new Date(from).toISOString()} ≥ ${new Date(to).toISOString()})`);
  const step = params.has('step') ? parseStep(params.get('step') as string) : undefined;
  const aggRaw = params.get('agg');
  if (aggRaw !== null && !(AGGS as readonly string[]).includes(aggRaw))
    throw new QueryError('agg', `"${aggRaw}" must be one of ${AGGS.join(', ')}`);
  const byRaw = params.get('by');
  const by =
    byRaw === null
      ? undefined
      : byRaw
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
  const tags = parseTagFilter(params.get('tags'));
  let agg = aggRaw as Agg | null;
  if (!agg) {
    // StatsD names cannot hold * or ? (the sanitiser drops them): the name is its own glob
    const info = await reader.series(name, tags, 1);
    agg = DEFAULT_AGG[info[0]?.kind ?? 'gauge'] ?? 'avg';
  }
  const q: Query = { name, tags, from, to, step, agg, by };
  return { name, agg, ...(await reader.query(q)) };
}
