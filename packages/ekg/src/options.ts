/**
 * createEkg's options: the table of keys (a misspelt key is refused), their defaults, and their
 * resolution to numbers and lists. Durations go through the one parser (duration.ts); the
 * environment's side (EKG_* variables) is env.ts.
 */
import type { Server } from 'node:http';
import { parseDuration } from './duration.js';
import { EkgError } from './errors.js';
import type { PressureOptions } from './health/pressure.js';
import type { ReportOptions } from './reporters/index.js';
import type { Vital } from './types.js';
import { defaultLimits, type StatsLimits } from './vitals/runner.js';
import type { WatchdogOptions } from './watchdog/watchdog.js';

export interface EkgOptions {
  /** Path the adapters mount the endpoints under (default `/ops`; `''` for the root). */
  prefix?: string;
  /** Window length: ms or `10s`, `500ms` (default 10 s). The first ekg in a process sets it. */
  interval?: number | string;
  /** Per-call timeout for vitals in ms (default 5000). */
  timeout?: number;
  /** Custom vitals, in the order /stats lists them. */
  vitals?: Vital[];
  /** When set, /stats and /metrics require `Authorization: Bearer <token>`. */
  token?: string;
  /** The http vital (default true). */
  http?: boolean;
  /** How long a check verdict is reused, ms (default 1000): a probe storm runs each check once. */
  checkCache?: number;
  /** Signals that start a graceful shutdown (default ['SIGTERM']; `false` to leave signals alone). */
  signals?: NodeJS.Signals[] | false;
  /** ms /ready stays 503 before servers close (default 5000 under Kubernetes, else 0). */
  drainDelay?: number;
  /** ms to wait for in-flight requests after closing, before cutting connections (default 10000). */
  shutdownTimeout?: number;
  /** Run after servers close, each under `timeout`. */
  onShutdown?: Array<() => void | Promise<void>> | (() => void | Promise<void>);
  /** HTTP servers to close on shutdown, besides those ekg sees serving requests. */
  servers?: Server[];
  /** Constant labels on every Prometheus sample, e.g. `{ service: 'api' }`. */
  labels?: Record<string, string>;
  /** Bounds on what one vital's stats() may return. */
  limits?: Partial<StatsLimits>;
  /**
   * Also expose prom-client's `nodejs_active_{handles,requests,resources}_total` gauges (default
   * true, for dashboards built on prom-client). promtool's linter flags a gauge ending in `_total`;
   * set false for a lint-clean /metrics (the per-type series remain, `sum()` gives the total).
   */
  promClientTotals?: boolean;
  /**
   * Watch the event loop from a worker thread: a stall (no completed turn for `stallThreshold`,
   * default 1 s) is recorded with where the main thread was stuck (docs/watchdog.md). On with
   * `ekg-vitals/register` unless EKG_WATCHDOG=0; off by default here.
   */
  watchdog?: boolean | WatchdogOptions;
  /**
   * Shed load before the process collapses: thresholds on event-loop delay p99, utilization, heap
   * and RSS over each window turn /ready 503 (with Retry-After) until they clear with hysteresis;
   * `reject: true` answers the app's own requests 503 too (docs/api.md).
   */
  pressure?: PressureOptions;
  /** Push every window to StatsD and/or Heroku-style JSON targets (docs/reporters.md). */
  report?: ReportOptions;
  /** In a cluster primary, how long /stats and /metrics wait for each worker, ms (default 1000). */
  clusterTimeout?: number;
}

export interface Resolved {
  prefix: string;
  interval: number;
  timeout: number;
  token: string | undefined;
  http: boolean;
  checkCache: number;
  signals: NodeJS.Signals[];
  drainDelay: number;
  shutdownTimeout: number;
  hooks: Array<() => void | Promise<void>>;
  labels: Record<string, string>;
  limits: StatsLimits;
  promClientTotals: boolean;
  clusterTimeout: number;
}

/** Every option createEkg takes; the compiler keeps it equal to EkgOptions, so a misspelt key is refused. */
const OPTION_KEYS = {
  prefix: true,
  interval: true,
  timeout: true,
  vitals: true,
  token: true,
  http: true,
  checkCache: true,
  signals: true,
  drainDelay: true,
  shutdownTimeout: true,
  onShutdown: true,
  servers: true,
  labels: true,
  limits: true,
  promClientTotals: true,
  watchdog: true,
  pressure: true,
  report: true,
  clusterTimeout: true,
} as const satisfies Record<keyof EkgOptions, true>;

export function bad(field: string, expected: string, got: unknown): EkgError {
  return new EkgError('EKG_ERR_BAD_OPTION', `option "${field}" must be ${expected}, got ${JSON.stringify(got) ?? typeof got}`);
}

export function ms(field: string, v: number | string | undefined, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = parseDuration(v);
  if (!(n >= min))
    throw bad(field, `a duration (a number of ms, or text like "10s"; bare text digits are seconds) of at least ${min} ms`, v);
  return n;
}

export function normalizePrefix(p: string | undefined, dflt: string): string {
  if (p === undefined) return dflt;
  if (typeof p !== 'string') throw bad('prefix', 'a string such as "/ops"', p);
  let out = p.trim();
  if (out && !out.startsWith('/')) out = `/${out}`;
  while (out.endsWith('/')) out = out.slice(0, -1);
  return out;
}

export function resolve(o: EkgOptions): Resolved {
  if (o === null || typeof o !== 'object') throw bad('options', 'an object', o);
  for (const k of Object.keys(o))
    if (!Object.hasOwn(OPTION_KEYS, k)) throw bad(k, `one of the options ${Object.keys(OPTION_KEYS).join(', ')} (a misspelling?)`, k);
  if (o.token !== undefined && (typeof o.token !== 'string' || o.token === '')) throw bad('token', 'a non-empty string', o.token);
  if (o.signals !== undefined && o.signals !== false && !Array.isArray(o.signals))
    throw bad('signals', 'an array of signal names or false', o.signals);
  const hooks = o.onShutdown === undefined ? [] : Array.isArray(o.onShutdown) ? o.onShutdown : [o.onShutdown];
  for (const h of hooks) if (typeof h !== 'function') throw bad('onShutdown', 'a function or an array of functions', h);
  const labels = o.labels ?? {};
  for (const [k, v] of Object.entries(labels)) {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(k) || k.startsWith('__')) throw bad(`labels.${k}`, 'a Prometheus label name', k);
    if (typeof v !== 'string') throw bad(`labels.${k}`, 'a string', v);
  }
  const inKubernetes = process.env.KUBERNETES_SERVICE_HOST !== undefined;
  return {
    prefix: normalizePrefix(o.prefix, '/ops'),
    interval: ms('interval', o.interval, 10_000, 100),
    timeout: ms('timeout', o.timeout, 5_000, 1),
    token: o.token,
    http: o.http !== false,
    checkCache: ms('checkCache', o.checkCache, 1_000),
    signals: o.signals === false ? [] : (o.signals ?? ['SIGTERM']),
    drainDelay: ms('drainDelay', o.drainDelay, inKubernetes ? 5_000 : 0),
    shutdownTimeout: ms('shutdownTimeout', o.shutdownTimeout, 10_000),
    hooks,
    labels,
    limits: { ...defaultLimits, ...o.limits },
    promClientTotals: o.promClientTotals !== false,
    clusterTimeout: ms('clusterTimeout', o.clusterTimeout, 1_000, 1),
  };
}
