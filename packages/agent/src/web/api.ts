import { parseDuration } from 'ekg-vitals';
import { MAX_NAME } from '../ingest/statsd-parse.js';
import { BudgetError, QUERY_MAX_POINTS, QUERY_TIMEOUT, QueryBudget } from '../store/budget.js';
import { AGGS, type Agg, type Instance, type Query, QueryError, type StoreReader } from '../store/reader.js';
import { isBusy } from '../store/schema.js';

/** The query parameters each API takes; any other is a 400 naming it. `q` alone may repeat. */
export const API_PARAMS = {
  '/api/v1/instances': ['limit', 'service', 'instance'],
  '/api/v1/series': ['match', 'tags', 'limit'],
  '/api/v1/query': ['name', 'tags', 'from', 'to', 'step', 'agg', 'by'],
  '/api/v1/batch': ['q'],
  '/api/v1/events': ['from', 'to', 'instance', 'service'],
} as const satisfies Record<string, readonly string[]>;
type ApiPath = keyof typeof API_PARAMS;

/** What one request may cost (docs/limits.md); `queryMaxPoints` and `queryTimeout` come from the config. */
export interface ApiLimits {
  queryMaxPoints: number;
  queryTimeout: number;
  /** when the request began (epoch ms, the real clock: `now` may be a time the caller evaluates at); default: the call */
  started?: number;
}

/** The budgets' defaults, as the config's (`--query-max-points`, `--query-timeout`). */
export const DEFAULT_LIMITS: ApiLimits = { queryMaxPoints: QUERY_MAX_POINTS, queryTimeout: QUERY_TIMEOUT };

/** The API's own counters, shown in /api/v1/self and the agent's /metrics. */
export interface ApiCounters {
  /** queries refused for the points budget (413) */
  queries_over_points: number;
  /** queries stopped by the time budget (503) */
  queries_over_time: number;
  /** /api/v1/series answers cut at their limit (`truncated: true`) */
  series_truncated: number;
  /** /api/v1/instances answers cut at their limit (`truncated: true`, `total` says how many matched) */
  instances_truncated: number;
  /** queries answered 503 (Retry-After: 1) because SQLite's file was locked: the event loop never waits on its locks */
  queries_store_busy: number;
}

export const newApiCounters = (): ApiCounters => ({
  queries_over_points: 0,
  queries_over_time: 0,
  series_truncated: 0,
  instances_truncated: 0,
  queries_store_busy: 0,
});

/** At most this many series in one /api/v1/series answer (the `limit` parameter's default and its maximum). */
export const MAX_SERIES_ANSWER = 10_000;
/** Instances in one /api/v1/instances answer: the `limit` parameter's default, and its maximum. */
export const DEFAULT_INSTANCES_ANSWER = 1000;
export const MAX_INSTANCES_ANSWER = 10_000;
/** At most this many queries in one batch. */
export const MAX_BATCH = 200;
/** A glob longer than this is refused: a match costs up to name × glob steps per series. */
export const MAX_GLOB = 256;
/** Times are epoch ms from 1970 to 9999; steps from 1 s to a year. */
const MAX_TIME = 253_402_300_800_000;
const MAX_STEP = 31_536_000_000;

const BARE = /^\d{1,15}(?:\.\d{1,9})?$/;

/** `now`, `now-1h` or `-1h`, an ISO date, epoch seconds or epoch ms → epoch ms, between 1970 and 9999. */
export function parseTime(v: string, param: string, now: number): number {
  const s = v.trim();
  let t = Number.NaN;
  if (s === 'now') t = now;
  else if (s.startsWith('-') || s.startsWith('now-')) {
    // a relative time names its unit
    const d = s.slice(s.indexOf('-') + 1);
    if (!BARE.test(d)) t = now - parseDuration(d);
  } else if (BARE.test(s)) {
    const n = Number(s);
    t = n < 1e11 ? n * 1000 : n;
  } else if (s.length <= 40) t = Date.parse(s);
  if (Number.isFinite(t) && t >= 0 && t <= MAX_TIME) return t;
  throw new QueryError(
    param,
    `"${v.slice(0, 100)}" is not a time between 1970 and 9999: use now, now-1h, an ISO date, or epoch seconds or ms`,
  );
}

/** `10s`, `1m`, `1h` or a bare number of seconds → ms, from 1 s to a year. */
export function parseStep(v: string): number {
  // the repository's one duration parser: a bare number is seconds here too, as in Prometheus' API
  const n = parseDuration(v.trim());
  if (!(n >= 1000 && n <= MAX_STEP))
    throw new QueryError('step', `"${v.slice(0, 100)}" is not a step from 1s to a year (like 10s, 1m, or a bare number of seconds)`);
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
    if (i <= 0) throw new QueryError('tags', `"${p.slice(0, 100)}" is not key:value (use key:* for any value)`);
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

const DEFAULT_AGG: Record<string, Agg> = { counter: 'rate', gauge: 'avg', set: 'avg', distribution: 'p99' };

/** Refuses a parameter the API does not take, and a repeated one it takes once. */
function checkParams(params: URLSearchParams, known: readonly string[], where: string): void {
  const seen = new Set<string>();
  for (const k of params.keys()) {
    if (!known.includes(k))
      throw new QueryError(
        k.slice(0, 100),
        `unknown parameter${where}; ${known.length ? `it takes ${known.join(', ')}` : 'it takes none'} (docs/agent-api.md)`,
      );
    if (seen.has(k) && k !== 'q') throw new QueryError(k, 'given more than once');
    seen.add(k);
  }
}

/**
 * `GET /api/v1/instances?limit=&service=&instance=`, `/api/v1/series?match=&tags=&limit=`, `/api/v1/query?name=&tags=&from=&to=&step=&agg=&by=`,
 * `/api/v1/batch?q=…`, `/api/v1/events?from=&to=&instance=&service=`.
 * Returns the status and body: a bad parameter is a 400 naming it; a request over a budget a 413
 * (points) or 503 (time) naming the budget. `counters` counts the budgets that tripped.
 */
export async function handleApi(
  reader: StoreReader,
  path: string,
  params: URLSearchParams,
  now = Date.now(),
  limits: ApiLimits = DEFAULT_LIMITS,
  counters: ApiCounters = newApiCounters(),
): Promise<[number, unknown, Record<string, string>?]> {
  try {
    if (!Object.hasOwn(API_PARAMS, path))
      return [
        404,
        { error: `no such API: ${path.slice(0, 200)}; there are ${Object.keys(API_PARAMS).join(', ')}, /api/v1/self and /api/v1/alerts` },
      ];
    checkParams(params, API_PARAMS[path as ApiPath], '');
    const budget = new QueryBudget(limits.queryMaxPoints, limits.queryTimeout, limits.started ?? Date.now());
    if (path === '/api/v1/instances') {
      const limit = limitOf(params, DEFAULT_INSTANCES_ANSWER, MAX_INSTANCES_ANSWER);
      const filter = { service: params.get('service') ?? undefined, instance: params.get('instance') ?? undefined };
      let all: Instance[];
      let total: number;
      if (reader.listInstances) ({ instances: all, total } = await reader.listInstances({ ...filter, limit }));
      else {
        all = (await reader.instances()).filter(
          (i) =>
            (filter.instance === undefined || i.key === filter.instance) && (filter.service === undefined || i.service === filter.service),
        );
        total = all.length;
      }
      if (total <= limit) return [200, { instances: all, total }];
      counters.instances_truncated++;
      return [200, { instances: all.slice(0, limit), total, truncated: true }];
    }
    if (path === '/api/v1/series') {
      const limit = limitOf(params, MAX_SERIES_ANSWER, MAX_SERIES_ANSWER);
      const match = params.get('match') ?? '';
      if (match.length > MAX_GLOB) throw new QueryError('match', `${match.length} characters; a glob has at most ${MAX_GLOB}`);
      // one more than asked tells whether the answer was cut; the series the store examines count against
      // the request's points (one each), and its time is checked as it goes
      const series = await reader.series(match, parseTagFilter(params.get('tags')), limit + 1, undefined, budget);
      if (series.length <= limit) return [200, { series }];
      counters.series_truncated++;
      return [200, { series: series.slice(0, limit), truncated: true }];
    }
    if (path === '/api/v1/query') return [200, await runQuery(reader, params, now, budget)];
    if (path === '/api/v1/events') {
      const to = params.has('to') ? parseTime(params.get('to') as string, 'to', now) : now;
      const from = params.has('from') ? parseTime(params.get('from') as string, 'from', now) : to - 3_600_000;
      if (!(from < to)) throw new QueryError('from', 'must be before to');
      const events = (await reader.events?.(from, to, params.get('instance') ?? undefined, params.get('service') ?? undefined)) ?? [];
      return [200, { events }];
    }
    // /api/v1/batch: several queries in one request (a dashboard view's charts): answers in order,
    // each its own result or its own error, so one bad query does not fail the rest; the budgets
    // are the request's, shared by its queries
    const qs = params.getAll('q');
    if (qs.length === 0) throw new QueryError('q', 'required: one or more URL-encoded query strings, e.g. q=name%3Dheap%26agg%3Dmax');
    if (qs.length > MAX_BATCH) throw new QueryError('q', `${qs.length} queries; at most ${MAX_BATCH} in one batch`);
    const results: unknown[] = [];
    for (const q of qs) {
      // the store reads synchronously: between queries, the agent serves what else has come (a probe);
      // past the budget the rest are refused at once, without waiting on the loop
      if (results.length > 0 && !budget.over) await new Promise((r) => setImmediate(r));
      try {
        const p = new URLSearchParams(q);
        checkParams(p, API_PARAMS['/api/v1/query'], ' in q');
        results.push(await runQuery(reader, p, now, budget));
      } catch (err) {
        if (err instanceof BudgetError) {
          count(counters, err);
          results.push({ error: err.message, budget: err.budget, limit: err.limit, status: err.status });
        } else if (err instanceof QueryError) results.push({ error: err.message, param: err.param });
        else throw err;
      }
    }
    return [200, { results }];
  } catch (err) {
    if (err instanceof BudgetError) {
      count(counters, err);
      return [err.status, { error: err.message, budget: err.budget, limit: err.limit }];
    }
    if (err instanceof QueryError) return [400, { error: err.message, param: err.param }];
    if (isBusy(err)) {
      // the store's connection never waits on SQLite's locks (busy_timeout 0, docs/agent-store.md): a read that meets
      // one (another process recovering the WAL index, or holding the file in exclusive mode) is asked again
      counters.queries_store_busy++;
      return [503, { error: 'the store is busy (its file is locked); ask again shortly' }, { 'retry-after': '1' }];
    }
    return [502, { error: `the store could not answer: ${(err as Error).message}` }];
  }
}

/** The `limit` parameter: a whole number from 1 to `max`, `dflt` when absent. */
function limitOf(params: URLSearchParams, dflt: number, max: number): number {
  const raw = params.get('limit');
  const limit = raw === null ? dflt : Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > max)
    throw new QueryError('limit', `"${raw?.slice(0, 100)}" must be a whole number from 1 to ${max}`);
  return limit;
}

function count(counters: ApiCounters, err: BudgetError): void {
  if (err.budget === 'query_timeout') counters.queries_over_time++;
  else counters.queries_over_points++;
}

/** `name=&tags=&from=&to=&step=&agg=&by=` → the store's answer; a bad parameter throws QueryError naming it. */
async function runQuery(reader: StoreReader, params: URLSearchParams, now: number, budget: QueryBudget): Promise<unknown> {
  budget.check();
  const name = params.get('name');
  if (!name) throw new QueryError('name', 'required: the metric name, e.g. name=runtime.eventloop.delay.p99');
  if (name.length > MAX_NAME) throw new QueryError('name', `${name.length} characters; a name has at most ${MAX_NAME}`);
  const to = params.has('to') ? parseTime(params.get('to') as string, 'to', now) : now;
  const from = params.has('from') ? parseTime(params.get('from') as string, 'from', now) : to - 3_600_000;
  if (!(from < to)) throw new QueryError('from', `must be before to (${new Date(from).toISOString()} ≥ ${new Date(to).toISOString()})`);
  const step = params.has('step') ? parseStep(params.get('step') as string) : undefined;
  const aggRaw = params.get('agg');
  if (aggRaw !== null && !(AGGS as readonly string[]).includes(aggRaw))
    throw new QueryError('agg', `"${aggRaw.slice(0, 100)}" must be one of ${AGGS.join(', ')}`);
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
    // StatsD names cannot hold * or ? (the sanitiser drops them): the name is its own glob; a
    // store that knows its names (seriesKind) answers without going through every series
    const kind = reader.seriesKind ? await reader.seriesKind(name, tags) : (await reader.series(name, tags, 1))[0]?.kind;
    agg = DEFAULT_AGG[kind ?? 'gauge'] ?? 'avg';
  }
  const q: Query = { name, tags, from, to, step, agg, by, budget };
  return { name, agg, ...(await reader.query(q)) };
}
