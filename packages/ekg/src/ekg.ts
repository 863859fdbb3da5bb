import type { Server } from 'node:http';
import { serveWorker } from './cluster.js';
import type { Core, Health } from './core.js';
import { renderPrometheus } from './formats/prometheus.js';
import { checkPressureOptions, Pressure } from './health/pressure.js';
import { closeServers } from './health/shutdown.js';
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
import { Reporting, type ReportOptions, transportsFor } from './reporters/index.js';
import { RemoteReporting } from './reporters/remote.js';
import { Sampler, type Window } from './sampler.js';
import type { CheckResult, Lifecycle, Stats, Vital } from './types.js';
import { reason, settle } from './vitals/runner.js';
import { VitalSet } from './vitals/set.js';
import { Watchdog } from './watchdog/watchdog.js';
import type { Snapshot } from './window/snapshot.js';
import { statsDocument, VERSION } from './window/stats.js';

export type { Health };
export { VERSION };

const OK_HEALTH_CHECKS: Record<string, CheckResult> = Object.freeze({}) as Record<string, CheckResult>;

/**
 * One ekg instance: the vitals, the last window's snapshot and its renderings, the health
 * verdict and the shutdown sequence. Adapters and the side server only translate HTTP to it.
 */
export class Ekg implements Core {
  readonly options: Readonly<Resolved>;
  private readonly sampler: Sampler;
  /** the stall watchdog, when on */
  readonly watchdog: Watchdog | undefined;
  /** load-shedding thresholds, when set */
  readonly pressure: Pressure | undefined;
  private readonly vitals: VitalSet;
  private readonly unsubscribe: () => void;
  private state: Lifecycle = 'starting';
  private notReady: string | undefined;
  private snap: Snapshot | undefined;
  private rendered: { seq: Snapshot; prom?: string; open?: string; stats?: { body: string; failed: boolean } } | undefined;
  private collecting: Promise<void> | undefined;
  private healthCache: { at: number; value: Health } | undefined;
  private healthPending: Promise<Health> | undefined;
  private closing: Promise<void> | undefined;
  private readonly signalHandlers = new Map<NodeJS.Signals, () => void>();
  private readonly extraServers = new Set<Server>();
  private drainTimer: NodeJS.Timeout | undefined;
  private readonly started: Promise<void>;
  private reporting: Reporting | RemoteReporting | undefined;

  constructor(options: EkgOptions = {}) {
    this.options = resolve(options);
    this.vitals = new VitalSet(this.options, () => this.healthChanged());
    for (const v of options.vitals ?? []) this.vitals.add(v);
    for (const s of options.servers ?? []) this.extraServers.add(s);
    this.pressure = options.pressure ? new Pressure(checkPressureOptions(options.pressure)) : undefined;
    this.sampler = Sampler.acquire(this.options.interval);
    this.unsubscribe = this.sampler.onWindow((w) => this.onSamplerWindow(w));
    if (options.watchdog) {
      try {
        // each stall also goes out as an event (a DogStatsD `_e`), which the agent records and its dashboard marks
        this.watchdog = new Watchdog(options.watchdog === true ? {} : options.watchdog, (st) => {
          const at = st.stack?.find((f) => f.file && !f.file.startsWith('node:')) ?? st.stack?.[0];
          this.reporting?.event(
            'event loop stalled',
            `blocked for ${st.duration} ms${at ? ` at ${at.fn} (${at.file}:${at.line}:${at.column})` : ''}`,
          );
        });
        this.watchdog.start();
      } catch (err) {
        process.stderr.write(`ekg: EKG_ERR_WATCHDOG the watchdog cannot start (${(err as Error).message}); stalls are not detected\n`);
        this.watchdog = undefined;
      }
    }
    for (const sig of this.options.signals) {
      const handler = () => {
        this.shutdown(sig).catch(() => {});
      };
      this.signalHandlers.set(sig, handler);
      process.on(sig, handler);
    }
    if (options.report) this.report(options.report);
    // in a cluster worker, answer the primary's requests for this worker's last window
    serveWorker(this);
    this.started = this.init();
  }

  /**
   * Starts pushing every closed window to the given targets (in addition to any already set).
   * A malformed target throws EKG_ERR_BAD_OPTION here; a target that is down later is counted.
   */
  report(options: ReportOptions): void {
    const o = { ...options, service: options.service ?? this.options.labels.service };
    if (this.watchdog && !(this.reporting instanceof Reporting)) {
      // formatting and sending in the watchdog's thread: the main thread only flattens each window
      this.reporting ??= new RemoteReporting(this.watchdog);
      if (!this.reporting.add(o)) return;
    } else {
      const transports = transportsFor(o);
      if (transports.length === 0) return;
      this.reporting = new Reporting([...((this.reporting as Reporting | undefined)?.transports ?? []), ...transports]);
    }
    if (!this.onBeforeExit) {
      // A job that ends before its first window closes (a 3 s cron job on 10 s windows) still reports: when the loop
      // runs dry, the open window is closed and sent once, and the sends are waited for. Nothing here keeps a
      // process alive longer than that.
      this.onBeforeExit = () => {
        if (this.closing || this.state === 'closed') return;
        void this.close();
      };
      process.once('beforeExit', this.onBeforeExit);
    }
  }

  private onBeforeExit: (() => void) | undefined;

  /** The open window, closed and sent to every reporter before they close (once; bounded by `timeout`). */
  private async finalWindow(): Promise<void> {
    if (!this.reporting) return;
    await settle('final window', () => this.flush().then(() => undefined), this.options.timeout);
  }

  /** Resolves once every vital's init() has settled (failed ones are reported, not thrown). */
  ready(): Promise<void> {
    return this.started;
  }

  get lifecycle(): Lifecycle {
    return this.state;
  }

  /** Marks the service not ready (with a reason shown by /ready) or ready again. */
  setReady(ready: boolean, reason = 'marked not ready'): void {
    this.notReady = ready ? undefined : reason;
    this.healthCache = undefined;
    this.healthChanged();
  }

  /** Adds a vital after start; its init() runs now. */
  async addVital(vital: Vital): Promise<void> {
    const st = this.vitals.add(vital);
    // a new check changes the verdict: the cached one no longer speaks for every vital
    this.healthCache = undefined;
    this.healthChanged();
    await this.vitals.init(st);
  }

  private async init(): Promise<void> {
    await this.vitals.initAll();
    if (this.state === 'starting') this.state = 'ready';
    this.healthChanged();
  }

  private onSamplerWindow(w: Window): void {
    if (this.state === 'closed') return;
    if (this.pressure) {
      this.pressure.update(w.runtime);
      this.healthChanged();
    }
    const p = this.collect(w).finally(() => {
      if (this.collecting === p) this.collecting = undefined;
    });
    this.collecting = p;
  }

  private async collect(w: Window): Promise<void> {
    const vitals = await this.vitals.collect();
    const snap = this.build(w, vitals);
    this.snap = snap;
    // the provisional window (seq 0) is only for readers; reporters send closed windows
    if (w.info.seq > 0 && this.state !== 'closed') {
      this.reporting?.window(snap, (x) => this.statsObject(x).stats);
      for (const fn of this.windowListeners) {
        try {
          fn(snap);
        } catch {
          // a listener's fault stays with the listener
        }
      }
    }
  }

  private readonly windowListeners = new Set<(s: Snapshot) => void>();

  /** Calls `fn` with every closed window's snapshot (after custom vitals). Returns an unsubscribe. */
  onWindow(fn: (s: Snapshot) => void): () => void {
    this.windowListeners.add(fn);
    return () => this.windowListeners.delete(fn);
  }

  private build(w: Window, vitals: Snapshot['vitals']): Snapshot {
    const checks = this.vitals.lastChecks();
    return {
      window: w.info,
      runtime: w.runtime,
      http: this.options.http ? w.http : undefined,
      vitals,
      checks,
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

  /**
   * The last closed window. Before the first one closes, a provisional window is read on demand
   * (custom vitals are asked once, then reused until the first close).
   */
  async snapshot(): Promise<Snapshot> {
    if (this.snap) return this.snap;
    if (this.collecting) {
      await this.collecting;
      if (this.snap) return this.snap;
    }
    const w = this.sampler.current();
    const p = this.collect(w).finally(() => {
      if (this.collecting === p) this.collecting = undefined;
    });
    this.collecting = p;
    await p;
    return this.snap as unknown as Snapshot;
  }

  /** Sync access to the last snapshot when there is one. */
  peek(): Snapshot | undefined {
    return this.snap;
  }

  private cacheFor(s: Snapshot) {
    if (this.rendered?.seq !== s) this.rendered = { seq: s };
    return this.rendered;
  }

  /** Prometheus text (or OpenMetrics), rendered once per window. */
  metricsText(s: Snapshot, openMetrics = false): string {
    const c = this.cacheFor(s);
    if (openMetrics) {
      c.open ??= renderPrometheus(s, true);
      return c.open;
    }
    c.prom ??= renderPrometheus(s, false);
    return c.prom;
  }

  /** The /stats document, nested, one key per vital. */
  statsObject(s: Snapshot): { stats: Stats; failed: boolean } {
    return statsDocument(s, {
      state: this.state,
      sampler: { interval: this.sampler.interval, tickCost: this.sampler.lastTickCost },
      failures: this.vitals.failures,
      sideServer: this.sideServerCounts?.(),
      pressure: this.pressure,
    });
  }

  statsText(s: Snapshot): { body: string; failed: boolean } {
    const c = this.cacheFor(s);
    if (!c.stats) {
      const { stats, failed } = this.statsObject(s);
      c.stats = { body: JSON.stringify(stats), failed };
    }
    return c.stats;
  }

  /**
   * The health verdict for /heartbeat and /ready. Checks run concurrently, each under its
   * timeout; concurrent callers share one run, and a verdict is reused for `checkCache` ms.
   * With no checks to run, the answer is synchronous.
   */
  health(): Health | Promise<Health> {
    if (this.state !== 'ready') {
      const detail = this.state === 'starting' ? 'starting' : 'shutting down';
      return { ok: false, state: this.state, checks: { ekg: { ok: false, detail } } };
    }
    if (this.notReady !== undefined) return { ok: false, state: this.state, checks: { ekg: { ok: false, detail: this.notReady } } };
    if (this.pressure?.reason !== undefined)
      return { ok: false, state: this.state, checks: { pressure: { ok: false, detail: this.pressure.reason } } };
    if (!this.vitals.hasChecks()) return { ok: true, state: this.state, checks: OK_HEALTH_CHECKS };
    const now = Date.now();
    if (this.healthCache && now - this.healthCache.at < this.options.checkCache) return this.healthCache.value;
    if (this.healthPending) return this.healthPending;
    // checkOne never rejects; should ekg's own code fail here anyway, the probe gets a failed verdict
    // and the next probe runs the checks again: health state is never left pending
    const p = this.vitals.check().then(
      ({ ok, checks }) => {
        const value: Health = { ok, state: this.state, checks };
        this.healthCache = { at: Date.now(), value };
        this.healthChanged();
        this.healthPending = undefined;
        return value;
      },
      (err: unknown): Health => {
        this.healthPending = undefined;
        return { ok: false, state: this.state, checks: { ekg: { ok: false, detail: `checks could not run: ${reason(err)}` } } };
      },
    );
    this.healthPending = p;
    return p;
  }

  /**
   * The verdict as it stands, without running a check: what /heartbeat would answer now, and until
   * when (`until`, epoch ms) when it is a cached check result; undefined when a check must run.
   */
  peekHealth(): { value: Health; until?: number } | undefined {
    if (this.state !== 'ready' || this.notReady !== undefined || this.pressure?.reason !== undefined)
      return { value: this.health() as Health };
    if (!this.vitals.hasChecks()) return { value: { ok: true, state: this.state, checks: OK_HEALTH_CHECKS } };
    const c = this.healthCache;
    return c ? { value: c.value, until: c.at + this.options.checkCache } : undefined;
  }

  private readonly healthListeners = new Set<() => void>();

  /** The side server's refusals, when one runs (set by listen()). */
  sideServerCounts: (() => { refused: number; dropped: number }) | undefined;

  /**
   * Calls `fn` whenever what `peekHealth()` or `live()` say may have changed (the lifecycle, setReady,
   * a window's pressure, a check's new verdict). Returns an unsubscribe.
   */
  onHealthChange(fn: () => void): () => void {
    this.healthListeners.add(fn);
    return () => this.healthListeners.delete(fn);
  }

  private healthChanged(): void {
    for (const fn of this.healthListeners) {
      try {
        fn();
      } catch {
        // a listener's fault stays with the listener
      }
    }
  }

  /** /live: false once shutdown is past its drain, or when a vital marked `fatal` fails its check. */
  live(): { ok: boolean; detail?: string } {
    if (this.state === 'closed') return { ok: false, detail: 'shut down' };
    const fatal = this.vitals.fatalFailure();
    if (fatal !== undefined) return { ok: false, detail: `fatal vital "${fatal}" failed` };
    return { ok: true };
  }

  /** Registers a server to close gracefully on shutdown. */
  track(server: Server): void {
    this.extraServers.add(server);
  }

  /**
   * The graceful shutdown: /ready and /heartbeat answer 503 at once; after `drainDelay` the
   * servers stop accepting, in-flight requests finish (or are cut after `shutdownTimeout`), hooks
   * run, ekg stops. When ekg took the signal and nobody else listens for it, the signal is raised
   * again so the process ends as it would have without ekg.
   */
  shutdown(signal?: NodeJS.Signals): Promise<void> {
    if (this.closing) return this.closing;
    this.state = 'draining';
    this.healthCache = undefined;
    this.healthChanged();
    this.closing = (async () => {
      if (this.options.drainDelay > 0) {
        await new Promise<void>((r) => {
          this.drainTimer = setTimeout(r, this.options.drainDelay);
          this.drainTimer.unref();
        });
      }
      await this.closeServers();
      for (const hook of this.options.hooks) {
        const out = await settle('onShutdown hook', hook, this.options.timeout);
        if (!out.ok) warn('EKG_ERR_SHUTDOWN_HOOK', out.error);
      }
      await this.stop();
      if (signal && process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    })();
    return this.closing;
  }

  private async closeServers(): Promise<void> {
    const servers = new Set<Server>(this.extraServers);
    for (const srv of this.sampler.http.servers) servers.add(srv as unknown as Server);
    await closeServers(servers, this.options.shutdownTimeout);
  }

  /** Stops ekg without touching the app's servers. Safe to call any number of times. */
  close(): Promise<void> {
    if (this.state !== 'closed' && !this.closing) {
      this.state = 'draining';
      this.healthChanged();
      this.closing = this.stop();
    }
    return this.closing ?? Promise.resolve();
  }

  private async stop(): Promise<void> {
    if (this.state === 'closed') return;
    for (const [sig, h] of this.signalHandlers) process.off(sig, h);
    this.signalHandlers.clear();
    if (this.drainTimer) clearTimeout(this.drainTimer);
    if (this.onBeforeExit) process.off('beforeExit', this.onBeforeExit);
    // the partial window since the last tick goes out before the reporters close (SIGTERM, close(), a job's end)
    await this.finalWindow();
    this.unsubscribe();
    // before the watchdog stops: its thread may be the one sending
    await this.reporting?.close();
    this.watchdog?.stop();
    this.sampler.release();
    await this.vitals.close();
    this.state = 'closed';
    this.healthChanged();
  }

  private defaultRouter: Router | undefined;

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

  /** Closes the current window now instead of waiting for the timer (for tests and tools). */
  async flush(): Promise<Snapshot> {
    const w = this.sampler.tick();
    // every instance collects on the window event; wait for ours
    await this.collecting;
    return this.snap ?? this.build(w, []);
  }
}

export function createEkg(options?: EkgOptions): Ekg {
  return new Ekg(options);
}
