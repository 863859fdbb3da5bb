import type { Server } from 'node:http';
import { serveWorker } from './cluster.js';
import type { Core, Health } from './core.js';
import { Lifecycle } from './health/lifecycle.js';
import { checkPressureOptions, Pressure } from './health/pressure.js';
import { HealthState } from './health/state.js';
import { create as expressAdapter } from './http/adapters/express.js';
import { type FastifyPlugin, create as fastifyAdapter } from './http/adapters/fastify.js';
import { create as fetchAdapter, handle as fetchHandle } from './http/adapters/fetch.js';
import { type HonoMiddleware, create as honoAdapter } from './http/adapters/hono.js';
import { type KoaMiddleware, create as koaAdapter } from './http/adapters/koa.js';
import { type NodeMiddleware, create as nodeAdapter } from './http/adapters/node.js';
import { Router, type RouterOptions } from './http/router.js';
import { type ListenOptions, listen } from './http/server.js';
import { warn } from './log.js';
import { type EkgOptions, normalizePrefix, type Resolved, resolve } from './options.js';
import { RenderCache } from './render/cache.js';
import { Reporting, type ReportOptions, transportsFor } from './reporters/index.js';
import { RemoteReporting } from './reporters/remote.js';
import { Sampler, type Window } from './sampler.js';
import type { Lifecycle as LifecycleState, Stats, Vital } from './types.js';
import { Collector } from './vitals/collector.js';
import { settle } from './vitals/runner.js';
import { VitalSet } from './vitals/set.js';
import { Watchdog, type WatchdogOptions } from './watchdog/watchdog.js';
import type { Snapshot } from './window/snapshot.js';
import { type SelfState, statsDocument, VERSION } from './window/stats.js';

export type { Health };
export { VERSION };

/**
 * One ekg instance, wired from its parts: the sampler's windows and the custom vitals (Collector), the
 * health verdict (HealthState), the way out (Lifecycle), the rendered pages (RenderCache), the
 * reporters and the watchdog. Its methods delegate; adapters and the side server only translate HTTP
 * to the Core it implements.
 */
export class Ekg implements Core {
  readonly options: Readonly<Resolved>;
  /** the stall watchdog, when on */
  readonly watchdog: Watchdog | undefined;
  /** load-shedding thresholds, when set */
  readonly pressure: Pressure | undefined;
  /** The side server's refusals, when one runs (set by listen()). */
  sideServerCounts: (() => { refused: number; dropped: number }) | undefined;
  private readonly sampler: Sampler;
  private readonly vitals: VitalSet;
  private readonly healthState: HealthState;
  private readonly lifecycleOf: Lifecycle;
  private readonly windows: Collector;
  private readonly pages: RenderCache;
  private readonly started: Promise<void>;
  private reporting: Reporting | RemoteReporting | undefined;
  private defaultRouter: Router | undefined;

  constructor(options: EkgOptions = {}) {
    this.options = resolve(options);
    this.vitals = new VitalSet(this.options, () => this.healthState.changed());
    for (const v of options.vitals ?? []) this.vitals.add(v);
    this.pressure = options.pressure ? new Pressure(checkPressureOptions(options.pressure)) : undefined;
    this.healthState = new HealthState(this.vitals, this.pressure, this.options.checkCache);
    this.sampler = Sampler.acquire(this.options.interval);
    this.windows = new Collector(
      this.sampler,
      () => this.vitals.collect(),
      (w, vitals) => this.build(w, vitals),
      (snap) => this.reporting?.window(snap, (x) => this.statsObject(x).stats),
      () => this.healthState.state === 'closed',
      (w) => {
        if (!this.pressure) return;
        this.pressure.update(w.runtime);
        this.healthState.changed();
      },
    );
    this.pages = new RenderCache((s) => this.statsObject(s));
    this.watchdog = options.watchdog ? this.startWatchdog(options.watchdog === true ? {} : options.watchdog) : undefined;
    this.lifecycleOf = new Lifecycle(
      this.options,
      this.healthState,
      () => this.sampler.http.servers as unknown as Iterable<Server>,
      () => this.teardown(),
    );
    for (const s of options.servers ?? []) this.lifecycleOf.track(s);
    if (options.report) this.report(options.report);
    // in a cluster worker, answer the primary's requests for this worker's last window
    serveWorker(this);
    this.started = this.init();
  }

  private startWatchdog(o: WatchdogOptions): Watchdog | undefined {
    try {
      // each stall also goes out as an event (a DogStatsD `_e`), sent by the watchdog's thread as it sees the
      // stall end (watchdog/worker.ts), which the agent records and its dashboard marks
      const w = new Watchdog(o);
      w.start();
      return w;
    } catch (err) {
      warn('EKG_ERR_WATCHDOG', `the watchdog cannot start (${(err as Error).message}); stalls are not detected`);
      return undefined;
    }
  }

  /**
   * Starts pushing every closed window to the given targets (in addition to any already set).
   * A malformed target throws EKG_ERR_BAD_OPTION here; a target that is down later is counted.
   */
  report(options: ReportOptions): void {
    const o = { ...options, service: options.service ?? this.options.labels.service };
    if (this.watchdog && !(this.reporting instanceof Reporting)) {
      // formatting and sending in the watchdog's thread: the main thread only flattens each window
      this.reporting ??= new RemoteReporting(this.watchdog, this);
      if (!this.reporting.add(o)) return;
    } else {
      const transports = transportsFor(o);
      if (transports.length === 0) return;
      this.reporting = new Reporting([...((this.reporting as Reporting | undefined)?.transports ?? []), ...transports]);
    }
    this.lifecycleOf.closeWhenLoopEnds();
  }

  /** Resolves once every vital's init() has settled (failed ones are reported, not thrown). */
  ready(): Promise<void> {
    return this.started;
  }

  get lifecycle(): LifecycleState {
    return this.healthState.state;
  }

  /** Marks the service not ready (with a reason shown by /ready) or ready again. */
  setReady(ready: boolean, reason?: string): void {
    this.healthState.setReady(ready, reason);
  }

  /** Adds a vital after start; its init() runs now. */
  async addVital(vital: Vital): Promise<void> {
    const st = this.vitals.add(vital);
    this.healthState.invalidate();
    await this.vitals.init(st);
  }

  private async init(): Promise<void> {
    await this.vitals.initAll();
    if (this.healthState.state === 'starting') this.healthState.set('ready');
    else this.healthState.changed();
  }

  private build(w: Window, vitals: Snapshot['vitals']): Snapshot {
    return {
      window: w.info,
      runtime: w.runtime,
      http: this.options.http ? w.http : undefined,
      vitals,
      checks: this.vitals.lastChecks(),
      labels: this.options.labels,
      promClientTotals: this.options.promClientTotals,
      reporters: this.reporting?.stats() ?? [],
      ...(this.watchdog
        ? {
            stalls: {
              count: this.watchdog.count,
              totalMs: this.watchdog.totalMs,
              buckets: [...this.watchdog.buckets],
              last: [...this.watchdog.stalls],
            },
          }
        : {}),
    };
  }

  /** Calls `fn` with every closed window's snapshot (after custom vitals). Returns an unsubscribe. */
  onWindow(fn: (s: Snapshot) => void): () => void {
    return this.windows.onWindow(fn);
  }

  /**
   * The last closed window. Before the first one closes, a provisional window is read on demand
   * (custom vitals are asked once, then reused until the first close).
   */
  snapshot(): Promise<Snapshot> {
    return this.windows.snapshot();
  }

  /** Sync access to the last snapshot when there is one. */
  peek(): Snapshot | undefined {
    return this.windows.peek();
  }

  /** Closes the current window now instead of waiting for the timer (for tests and tools). */
  flush(): Promise<Snapshot> {
    return this.windows.flush();
  }

  /** Prometheus text (or OpenMetrics), rendered once per window. */
  metricsText(s: Snapshot, openMetrics = false): string {
    return this.pages.metrics(s, openMetrics);
  }

  /** The same page gzipped, compressed once per window. */
  metricsGzip(s: Snapshot, openMetrics = false): Uint8Array {
    return this.pages.metricsGzip(s, openMetrics);
  }

  /** What /stats says about ekg itself, as plain data. */
  selfState(): SelfState {
    const p = this.pressure;
    return {
      state: this.healthState.state,
      sampler: { interval: this.sampler.interval, tickCost: this.sampler.lastTickCost },
      failures: this.vitals.failures,
      sideServer: this.sideServerCounts?.(),
      pressure: p ? { reason: p.reason, since: p.since, crossings: p.crossings } : undefined,
    };
  }

  /** The /stats document, nested, one key per vital. */
  statsObject(s: Snapshot): { stats: Stats; failed: boolean } {
    return statsDocument(s, this.selfState());
  }

  /** The /stats body, rendered once per window. */
  statsText(s: Snapshot): { body: string; failed: boolean } {
    return this.pages.stats(s);
  }

  /**
   * The health verdict for /heartbeat and /ready. Checks run concurrently, each under its
   * timeout; concurrent callers share one run, and a verdict is reused for `checkCache` ms.
   * With no checks to run, the answer is synchronous.
   */
  health(): Health | Promise<Health> {
    const h = this.healthState.health();
    // the probes' shared "ready, no checks" verdict is frozen: a caller gets one of its own, to change as it likes
    return h instanceof Promise || !Object.isFrozen(h) ? h : { ok: h.ok, state: h.state, checks: {} };
  }

  /** The verdict as the probes share it (frozen when ready with no checks, one object for every probe): not to be changed. */
  sharedHealth(): Health | Promise<Health> {
    return this.healthState.health();
  }

  /**
   * The verdict as it stands, without running a check: what /heartbeat would answer now, and until
   * when (`until`, epoch ms) when it is a cached check result; undefined when a check must run.
   */
  peekHealth(): { value: Health; until?: number } | undefined {
    return this.healthState.peek();
  }

  /**
   * Calls `fn` whenever what `peekHealth()` or `live()` say may have changed (the lifecycle, setReady,
   * a window's pressure, a check's new verdict). Returns an unsubscribe.
   */
  onHealthChange(fn: () => void): () => void {
    return this.healthState.onChange(fn);
  }

  /** /live: false once shutdown is past its drain, or when a vital marked `fatal` fails its check. */
  live(): { ok: boolean; detail?: string } {
    return this.healthState.live();
  }

  /** Registers a server to close gracefully on shutdown. */
  track(server: Server): void {
    this.lifecycleOf.track(server);
  }

  /**
   * The graceful shutdown: /ready and /heartbeat answer 503 at once; after `drainDelay` the
   * servers stop accepting, in-flight requests finish (or are cut after `shutdownTimeout`), hooks
   * run, ekg stops. When ekg took the signal and nobody else listens for it, the signal is raised
   * again so the process ends as it would have without ekg.
   */
  shutdown(signal?: NodeJS.Signals): Promise<void> {
    return this.lifecycleOf.shutdown(signal);
  }

  /** Stops ekg without touching the app's servers. Safe to call any number of times. */
  close(): Promise<void> {
    return this.lifecycleOf.close();
  }

  /** ekg's own parts, stopped in order once the servers are closed. */
  private async teardown(): Promise<void> {
    // the partial window since the last tick goes out before the reporters close (SIGTERM, close(), a job's end)
    if (this.reporting) await settle('final window', () => this.flush().then(() => undefined), this.options.timeout);
    this.windows.stop();
    // before the watchdog stops: its thread may be the one sending
    await this.reporting?.close();
    this.watchdog?.stop();
    this.sampler.release();
    await this.vitals.close();
  }

  /** The framework-independent router, at the instance prefix or another. */
  router(options?: RouterOptions): Router {
    if (options?.prefix === undefined) {
      this.defaultRouter ??= new Router(this);
      return this.defaultRouter;
    }
    return new Router(this, { prefix: normalizePrefix(options.prefix, this.options.prefix) });
  }

  /** node:http `(req, res, next?)` handler or middleware. */
  node(options?: RouterOptions): NodeMiddleware {
    return nodeAdapter(this.router(options));
  }

  /** Express 5 / Connect middleware: `app.use(ekg.express())`. */
  express(options?: RouterOptions): NodeMiddleware {
    return expressAdapter(this.router(options));
  }

  /** Fastify 5 plugin: `fastify.register(ekg.fastify())`. */
  fastify(options?: RouterOptions): FastifyPlugin {
    return fastifyAdapter(this.router(options));
  }

  /** Koa 3 middleware: `app.use(ekg.koa())`. */
  koa(options?: RouterOptions): KoaMiddleware {
    return koaAdapter(this.router(options));
  }

  /** Hono 4 middleware: `app.use(ekg.hono())`. */
  hono(options?: RouterOptions): HonoMiddleware {
    return honoAdapter(this.router(options));
  }

  /** A web-standard `fetch(Request) → Response` handler (404 outside ekg's paths). */
  fetchHandler(options?: RouterOptions): (req: Request) => Promise<Response> {
    return fetchAdapter(this.router(options));
  }

  /** Answers `req` when it is one of ekg's paths, else undefined: for composing fetch handlers. */
  handleFetch(req: Request): Response | Promise<Response> | undefined {
    return fetchHandle(this.router(), req);
  }

  /** A side server of its own (unref'd; a failure to listen is one stderr line and undefined). */
  listen(options: ListenOptions): Promise<Server | undefined> {
    return listen(this, options);
  }
}

export function createEkg(options?: EkgOptions): Ekg {
  return new Ekg(options);
}
