import { timingSafeEqual } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { type Gathered, gather, isClusterPrimary, mergeMetrics } from './cluster.js';
import type { Ekg, Health } from './ekg.js';
import { OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE } from './formats/prometheus.js';
import type { Snapshot } from './snapshot.js';
import type { Stats } from './types.js';

/** What every adapter writes back: a status, headers and a body (omitted for HEAD by the adapter). */
export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string | Uint8Array;
}

/** Reads one header (lower-case name) from an adapter's request object, without allocating. */
export type HeaderReader<S> = (source: S, name: string) => string | undefined;
type HeaderGetter = (name: string) => string | undefined;

const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';

function reply(status: number, type: string, body: string | Uint8Array, extra?: Record<string, string>): Reply {
  const length = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  return {
    status,
    headers: { 'content-type': type, 'content-length': String(length), 'cache-control': 'no-store', ...extra },
    body,
  };
}

// Prebuilt: the probe answers allocate nothing.
const HEARTBEAT_OK = reply(200, TEXT, 'heartbeat:ok');
const HEARTBEAT_NG = reply(503, TEXT, 'heartbeat:NG');
const READY_OK = reply(200, TEXT, 'ready:ok');
const LIVE_OK = reply(200, TEXT, 'live:ok');
const ALLOW = 'GET, HEAD';

function wantsJson(header: HeaderGetter): boolean {
  const a = header('accept');
  return a?.includes('application/json') === true;
}

/** Prometheus asks for gzip; the compressed page is made once per window, like the text. */
function wantsGzip(header: HeaderGetter): boolean {
  const a = header('accept-encoding');
  return a?.includes('gzip') === true;
}

/** OpenMetrics when the scraper lists it in Accept (Prometheus does, with a q-value). */
function wantsOpenMetrics(header: HeaderGetter): boolean {
  const a = header('accept');
  return a?.includes('application/openmetrics-text') === true;
}

function healthJson(status: number, h: Health): Reply {
  return reply(status, JSON_TYPE, JSON.stringify({ status: h.ok ? 'ok' : 'NG', state: h.state, checks: h.checks }));
}

function then<T, R>(v: T | Promise<T>, fn: (v: T) => R): R | Promise<R> {
  return v instanceof Promise ? v.then(fn) : fn(v);
}

interface CachedReplies {
  snap: Snapshot;
  stats?: Reply;
  prom?: Reply;
  open?: Reply;
  promGz?: Reply;
  openGz?: Reply;
}

const METRICS_VARY = 'accept, accept-encoding';

type Handler = (header: HeaderGetter) => Reply | Promise<Reply>;

export interface RouterOptions {
  /** overrides the ekg instance's prefix (the side server serves at `/` by default) */
  prefix?: string;
  /** in a cluster primary, answer /stats and /metrics for every worker (default true) */
  cluster?: boolean;
}

/**
 * Maps a request to one of ekg's endpoints, independent of any framework. `handle` returns
 * undefined for paths outside the prefix, so a middleware can pass them on.
 */
export class Router {
  readonly prefix: string;
  private readonly routes = new Map<string, { handler: Handler; open: boolean }>();
  private readonly expectedAuth: Buffer | undefined;
  private cache: CachedReplies | undefined;
  private readonly clusterAware: boolean;
  /** the ekg's load-shedding state (set at its construction, never replaced) */
  private readonly pressure: Ekg['pressure'];

  constructor(
    private readonly ekg: Ekg,
    options: RouterOptions = {},
  ) {
    this.prefix = options.prefix ?? ekg.options.prefix;
    this.clusterAware = options.cluster !== false;
    this.pressure = ekg.pressure;
    const token = ekg.options.token;
    this.expectedAuth = token ? Buffer.from(`Bearer ${token}`) : undefined;
    const p = this.prefix;
    this.routes.set(`${p}/heartbeat`, { handler: (h) => this.heartbeat(h), open: true });
    this.routes.set(`${p}/ready`, { handler: (h) => this.ready(h), open: true });
    this.routes.set(`${p}/live`, { handler: (h) => this.live(h), open: true });
    this.routes.set(`${p}/stats`, { handler: () => this.stats(), open: false });
    this.routes.set(`${p}/metrics`, { handler: (h) => this.metrics(h), open: false });
  }

  /** True when `path` (no query string) is under the prefix: the request is ekg's to answer. */
  owns(path: string): boolean {
    const p = this.prefix;
    return p === '' || path === p || (path.startsWith(p) && path.charCodeAt(p.length) === 47) /* / */;
  }

  /**
   * Answers one request. `url` may carry a query string. Never throws: a fault inside becomes a
   * 500 with its reason, and the host app never sees it.
   */
  handle<S>(method: string, url: string, source: S, read: HeaderReader<S>): Reply | Promise<Reply> | undefined {
    const q = url.indexOf('?');
    let path = q === -1 ? url : url.slice(0, q);
    // the app's own request: passed on, at the cost of one field read when no pressure is configured
    if (!this.owns(path)) return this.pressure === undefined ? undefined : this.shed();
    const header: HeaderGetter = (name) => read(source, name);
    if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
    const route = this.routes.get(path);
    // Mounted at the root, ekg answers its own paths only and leaves the rest to the app.
    if (!route && this.prefix === '') return this.pressure === undefined ? undefined : this.shed();
    if (!route) return reply(404, TEXT, `not found: ${path.slice(0, 200)}; ekg serves ${[...this.routes.keys()].join(', ')}\n`);
    if (method !== 'GET' && method !== 'HEAD')
      return reply(405, TEXT, `method ${method.slice(0, 20)} not allowed; use GET or HEAD\n`, { allow: ALLOW });
    if (!route.open && this.expectedAuth && !this.authorized(header('authorization'))) {
      return reply(401, TEXT, 'unauthorized: send Authorization: Bearer <token>\n', { 'www-authenticate': 'Bearer realm="ekg"' });
    }
    try {
      const r = route.handler(header);
      return r instanceof Promise ? r.catch(internalError) : r;
    } catch (err) {
      return internalError(err);
    }
  }

  private authorized(got: string | undefined): boolean {
    const want = this.expectedAuth as Buffer;
    if (!got) return false;
    const g = Buffer.from(got);
    return g.length === want.length && timingSafeEqual(g, want);
  }

  /** The app's own request: undefined (pass it on), or a 503 while under pressure with `reject`. */
  private shed(): Reply | undefined {
    const p = this.pressure;
    if (p?.reason === undefined || !p.o.reject) return undefined;
    return reply(503, TEXT, `overloaded: ${p.reason}; try again later\n`, { 'retry-after': String(p.o.retryAfter ?? 10) });
  }

  private heartbeat(header: HeaderGetter): Reply | Promise<Reply> {
    return then(this.ekg.health(), (h) => {
      if (wantsJson(header)) return healthJson(h.ok ? 200 : 503, h);
      return h.ok ? HEARTBEAT_OK : HEARTBEAT_NG;
    });
  }

  private ready(header: HeaderGetter): Reply | Promise<Reply> {
    return then(this.ekg.health(), (h) => {
      if (wantsJson(header)) return healthJson(h.ok ? 200 : 503, h);
      if (h.ok) return READY_OK;
      const p = this.ekg.pressure;
      if (p?.reason !== undefined)
        return reply(503, TEXT, `ready:NG pressure: ${p.reason}\n`, { 'retry-after': String(p.o.retryAfter ?? 10) });
      const why = Object.entries(h.checks)
        .filter(([, c]) => !c.ok)
        .map(([name, c]) => (c.detail ? `${name}: ${c.detail}` : name))
        .join('; ');
      return reply(503, TEXT, `ready:NG ${why}\n`);
    });
  }

  private live(header: HeaderGetter): Reply {
    const l = this.ekg.live();
    if (wantsJson(header)) return reply(l.ok ? 200 : 503, JSON_TYPE, JSON.stringify({ status: l.ok ? 'ok' : 'NG', detail: l.detail }));
    return l.ok ? LIVE_OK : reply(503, TEXT, `live:NG ${l.detail ?? ''}\n`);
  }

  /** Replies built from one snapshot are reused until the next window closes. */
  private cached(snap: Snapshot): CachedReplies {
    if (this.cache?.snap !== snap) this.cache = { snap };
    return this.cache;
  }

  private gathering: Promise<Gathered> | undefined;

  /** One gather at a time, shared by concurrent requests. */
  private gatherWorkers(): Promise<Gathered> {
    this.gathering ??= gather(this.ekg.options.clusterTimeout).finally(() => {
      this.gathering = undefined;
    });
    return this.gathering;
  }

  private clusterStats(): Promise<Reply> {
    return Promise.all([this.ekg.snapshot(), this.gatherWorkers()]).then(([snap, g]) => {
      const { stats, failed } = this.ekg.statsObject(snap);
      stats.workers = Object.fromEntries(Object.entries(g.workers).map(([id, w]) => [id, w.stats]));
      (stats.ekg as Stats).cluster = {
        workers: Object.keys(g.workers).length + Object.keys(g.missing).length,
        answered: Object.keys(g.workers).length,
        missing: g.missing,
      };
      return reply(failed ? 503 : 200, JSON_TYPE, JSON.stringify(stats));
    });
  }

  private clusterMetrics(): Promise<Reply> {
    return Promise.all([this.ekg.snapshot(), this.gatherWorkers()]).then(([snap, g]) => {
      const sources = [{ worker: 'primary', text: this.ekg.metricsText(snap) }];
      for (const [id, w] of Object.entries(g.workers)) sources.push({ worker: id, text: w.metrics });
      let text = mergeMetrics(sources);
      const all = Object.keys(g.workers).length + Object.keys(g.missing).length;
      text += `# HELP ekg_cluster_workers Cluster workers, and how many answered this scrape.\n# TYPE ekg_cluster_workers gauge\nekg_cluster_workers{state="expected"} ${all}\nekg_cluster_workers{state="answered"} ${Object.keys(g.workers).length}\n`;
      return reply(200, PROMETHEUS_CONTENT_TYPE, text, { vary: METRICS_VARY });
    });
  }

  private stats(): Reply | Promise<Reply> {
    if (this.clusterAware && isClusterPrimary()) return this.clusterStats();
    const render = (snap: Snapshot): Reply => {
      const c = this.cached(snap);
      if (!c.stats) {
        const { body, failed } = this.ekg.statsText(snap);
        c.stats = reply(failed ? 503 : 200, JSON_TYPE, body);
      }
      return c.stats;
    };
    const s = this.ekg.peek();
    return s ? render(s) : this.ekg.snapshot().then(render);
  }

  private metrics(header: HeaderGetter): Reply | Promise<Reply> {
    if (this.clusterAware && isClusterPrimary()) return this.clusterMetrics();
    const open = wantsOpenMetrics(header);
    const gzip = wantsGzip(header);
    const key = `${open ? 'open' : 'prom'}${gzip ? 'Gz' : ''}` as const;
    const render = (snap: Snapshot): Reply => {
      const c = this.cached(snap);
      let r = c[key];
      if (!r) {
        const text = this.ekg.metricsText(snap, open);
        const type = open ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE;
        r = gzip
          ? reply(200, type, gzipSync(text), { 'content-encoding': 'gzip', vary: METRICS_VARY })
          : reply(200, type, text, { vary: METRICS_VARY });
        c[key] = r;
      }
      return r;
    };
    const s = this.ekg.peek();
    return s ? render(s) : this.ekg.snapshot().then(render);
  }
}

function internalError(err: unknown): Reply {
  const msg = err instanceof Error ? err.message : String(err);
  return reply(500, TEXT, `ekg internal error: ${msg.slice(0, 300)}\n`);
}
