import { type Gathered, gather, isClusterPrimary, mergeMetrics } from '../cluster.js';
import type { Core, Health } from '../core.js';
import { OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE } from '../formats/prometheus.js';
import type { Stats } from '../types.js';
import type { Snapshot } from '../window/snapshot.js';
import {
  type HeaderGetter,
  heartbeatReply,
  internalError,
  liveReply,
  METRICS_VARY,
  metricsReply,
  metricsVariant,
  type ProbeVerdict,
  type Reply,
  type RouteName,
  Routes,
  readyReply,
  reply,
  type SideProbes,
  statsReply,
  TEXT,
  wantsJson,
} from './contract.js';

export type { Reply } from './contract.js';

/** Reads one header (lower-case name) from an adapter's request object, without allocating. */
export type HeaderReader<S> = (source: S, name: string) => string | undefined;

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

type Handler = (header: HeaderGetter) => Reply | Promise<Reply>;

export interface RouterOptions {
  /** overrides the ekg instance's prefix (the side server serves at `/` by default) */
  prefix?: string;
  /** in a cluster primary, answer /stats and /metrics for every worker (default true) */
  cluster?: boolean;
}

/**
 * What each adapter's `mount` takes: an ekg instance (`createEkg()`), which builds the router at its
 * prefix, or at `options.prefix`. Structural, so that the adapters never import the instance.
 */
export interface Mountable {
  router(options?: RouterOptions): Router;
}

/**
 * Maps a request to one of ekg's endpoints, independent of any framework. `handle` returns
 * undefined for paths outside the prefix, so a middleware can pass them on.
 */
export class Router {
  readonly prefix: string;
  /** the route table and token check, shared with the side server's stall responder */
  readonly routes: Routes;
  private readonly handlers: Record<RouteName, Handler>;
  private cache: CachedReplies | undefined;
  private readonly clusterAware: boolean;
  /** the ekg's load-shedding state (set at its construction, never replaced) */
  private readonly pressure: Core['pressure'];

  constructor(
    private readonly ekg: Core,
    options: RouterOptions = {},
  ) {
    this.prefix = options.prefix ?? ekg.options.prefix;
    this.clusterAware = options.cluster !== false;
    this.pressure = ekg.pressure;
    this.routes = new Routes(this.prefix, ekg.options.token);
    this.handlers = {
      heartbeat: (h) => this.heartbeat(h),
      ready: (h) => this.ready(h),
      live: (h) => this.live(h),
      stats: () => this.stats(),
      metrics: (h) => this.metrics(h),
    };
  }

  /** True when `path` (no query string) is under the prefix: the request is ekg's to answer. */
  owns(path: string): boolean {
    return this.routes.owns(path);
  }

  /**
   * Answers one request. `url` may carry a query string. Never throws: a fault inside becomes a
   * 500 with its reason, and the host app never sees it.
   */
  handle<S>(method: string, url: string, source: S, read: HeaderReader<S>): Reply | Promise<Reply> | undefined {
    const q = url.indexOf('?');
    // the app's own request: passed on, at the cost of one field read when no pressure is configured
    if (!this.routes.owns(q === -1 ? url : url.slice(0, q))) return this.pressure === undefined ? undefined : this.shed();
    const header: HeaderGetter = (name) => read(source, name);
    try {
      const r = this.routes.route(method, Routes.path(url), header);
      // Mounted at the root, ekg answers its own paths only and leaves the rest to the app.
      if (r === undefined) return this.pressure === undefined ? undefined : this.shed();
      if (typeof r !== 'string') return r;
      const out = this.handlers[r](header);
      return out instanceof Promise ? out.catch(internalError) : out;
    } catch (err) {
      return internalError(err);
    }
  }

  /**
   * The probes' answers as they stand (text and JSON each), for the side server's thread: /heartbeat
   * and /ready until `until` (a cached check verdict's end), or absent when a check must run first.
   */
  probes(): SideProbes {
    const now = this.ekg.peekHealth();
    const live = this.ekg.live();
    const out: SideProbes = { live: [liveReply(live, false), liveReply(live, true)] };
    if (now) {
      const v = this.verdict(now.value);
      out.heartbeat = [heartbeatReply(now.value, false), heartbeatReply(now.value, true)];
      out.ready = [readyReply(v, false), readyReply(v, true)];
      if (now.until !== undefined) out.until = now.until;
    }
    return out;
  }

  /** The app's own request: undefined (pass it on), or a 503 while under pressure with `reject`. */
  private shed(): Reply | undefined {
    const p = this.pressure;
    if (p?.reason === undefined || !p.o.reject) return undefined;
    return reply(503, TEXT, `overloaded: ${p.reason}; try again later\n`, { 'retry-after': String(p.o.retryAfter ?? 10) });
  }

  private verdict(h: Health): ProbeVerdict {
    const p = this.ekg.pressure;
    if (h.ok || p?.reason === undefined) return h;
    return { ...h, why: `pressure: ${p.reason}`, headers: { 'retry-after': String(p.o.retryAfter ?? 10) } };
  }

  private heartbeat(header: HeaderGetter): Reply | Promise<Reply> {
    // no `then` here: its callback would be a closure made for every probe
    const h = this.ekg.sharedHealth();
    return h instanceof Promise ? h.then((v) => heartbeatReply(v, wantsJson(header))) : heartbeatReply(h, wantsJson(header));
  }

  private ready(header: HeaderGetter): Reply | Promise<Reply> {
    return then(this.ekg.sharedHealth(), (h) => readyReply(this.verdict(h), wantsJson(header)));
  }

  private live(header: HeaderGetter): Reply {
    return liveReply(this.ekg.live(), wantsJson(header));
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
      return statsReply(JSON.stringify(stats), failed);
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

  private statsOf(snap: Snapshot): Reply {
    const c = this.cached(snap);
    if (!c.stats) {
      const { body, failed } = this.ekg.statsText(snap);
      c.stats = statsReply(body, failed);
    }
    return c.stats;
  }

  private metricsOf(snap: Snapshot, key: 'prom' | 'open' | 'promGz' | 'openGz'): Reply {
    const c = this.cached(snap);
    let r = c[key];
    if (!r) {
      const open = key === 'open' || key === 'openGz';
      const type = open ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE;
      const gzip = key === 'promGz' || key === 'openGz';
      r = metricsReply(type, gzip ? this.ekg.metricsGzip(snap, open) : this.ekg.metricsText(snap, open), gzip);
      c[key] = r;
    }
    return r;
  }

  private stats(): Reply | Promise<Reply> {
    if (this.clusterAware && isClusterPrimary()) return this.clusterStats();
    const s = this.ekg.peek();
    return s ? this.statsOf(s) : this.ekg.snapshot().then((snap) => this.statsOf(snap));
  }

  private metrics(header: HeaderGetter): Reply | Promise<Reply> {
    if (this.clusterAware && isClusterPrimary()) return this.clusterMetrics();
    const key = metricsVariant(header);
    const s = this.ekg.peek();
    return s ? this.metricsOf(s, key) : this.ekg.snapshot().then((snap) => this.metricsOf(snap, key));
  }
}
