import type dgram from 'node:dgram';
import type { Server as HttpServer } from 'node:http';
import type net from 'node:net';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { Aggregator, type FlushResult } from './aggregate/aggregator.js';
import { Alerts } from './alert/alerts.js';
import type { AgentConfig } from './config.js';
import { report } from './errors.js';
import type { ExporterStatus } from './export/exporter.js';
import { makeExporter } from './export/make.js';
import { closeStream, listenStream, listenUdp, type StreamBudget } from './ingest/listeners.js';
import { Scraper } from './ingest/scrape.js';
import { type BadReason, MAX_LINE, type ParseSink, parsePacket, type Sample, type StatsdEvent } from './ingest/statsd-parse.js';
import type { SelfStats } from './model/self.js';
import type { Sink } from './sinks/sink.js';
import { lockDataDir } from './store/lock.js';
import { PromStore } from './store/prom.js';
import type { StoreReader } from './store/reader.js';
import { SqliteStore } from './store/sqlite.js';
import { renderAgentMetrics } from './web/metrics.js';
import { startWeb } from './web/server.js';

export type { SelfStats } from './model/self.js';

/**
 * ekg-agent: receives StatsD (UDP, TCP, Unix socket) and pushes, aggregates per window, hands each
 * closed window to every sink, and serves /heartbeat, /metrics, /api/v1/self and POST /v1/push.
 */
export class Agent {
  readonly aggregator: Aggregator;
  readonly self: SelfStats;
  last: FlushResult | undefined;
  private udp: dgram.Socket | undefined;
  private streams: net.Server[] = [];
  /** the budgets of the TCP and Unix listeners, and their counters */
  readonly streamBudget: StreamBudget;
  private lock: { release(): void } | undefined;
  private web: HttpServer | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** the flush under way's start (performance.now), its end once finished, and the CPU at its start */
  private flushT0 = 0;
  private flushT2 = 0;
  private flushCpu0: NodeJS.CpuUsage | undefined;
  /** GC pauses, counted into the flush they began in */
  private gcSeen: PerformanceObserver | undefined;
  private readonly sink: ParseSink;
  private stopped = false;
  /** the arrival time `ingest` was given (a replay), else undefined: the clock */
  private arrival: number | undefined;
  readonly scraper: Scraper | undefined;
  /** the SQLite store, when it is the store */
  store: SqliteStore | undefined;
  /** what the query API reads: the SQLite store or a Prometheus-compatible one */
  reader: StoreReader | undefined;
  readonly exporters: Array<Sink & { status: ExporterStatus; name: string }> = [];
  /** the alert rules and notifiers (docs/agent-alerts.md) */
  alerts: Alerts | undefined;

  constructor(
    readonly config: AgentConfig,
    readonly sinks: Sink[],
  ) {
    this.aggregator = new Aggregator({
      maxSeries: config.maxSeries,
      idleWindows: config.idleWindows,
      maxSetMembers: config.setMaxMembers,
      maxSetBytes: config.setMaxBytes,
    });
    const budget: StreamBudget = {
      maxConnections: config.statsdMaxConnections,
      idleTimeoutMs: config.statsdIdleTimeout,
      maxLine: MAX_LINE,
      open: 0,
      refused: 0,
      idleClosed: 0,
    };
    this.streamBudget = budget;
    const aggregator = this.aggregator;
    this.self = {
      packets_received: 0,
      bytes_received: 0,
      metrics_received: 0,
      bad_lines: 0,
      bad_lines_by_reason: {},
      last_bad_lines: [],
      events_received: 0,
      service_checks_received: 0,
      pushes_received: 0,
      pushes_rejected: 0,
      unauthorized: 0,
      series_active: 0,
      dropped_cardinality: 0,
      dropped_type_clash: 0,
      get dropped_set_members() {
        return aggregator.droppedSetMembers;
      },
      get spreads_merged() {
        return aggregator.spreadsMerged;
      },
      get statsd_connections_open() {
        return budget.open;
      },
      get statsd_connections_refused() {
        return budget.refused;
      },
      get statsd_connections_idle_closed() {
        return budget.idleClosed;
      },
      windows_lost_at_exit: 0,
      flushes: 0,
      last_flush_ms: 0,
      last_flush_busy_ms: 0,
      last_flush_phases: { window_ms: 0, window_cpu_ms: 0, sinks_ms: 0, sinks_cpu_ms: 0, gc_ms: 0, gc_count: 0 },
      last_flush_series: 0,
      sink_errors: 0,
      started_at: Date.now(),
      scrapes: 0,
      scrape_failures: {},
    };
    if (config.scrape.length > 0) {
      this.scraper = new Scraper(config.scrape, (samples) => this.ingestSamples(samples));
    }
    const agg = this.aggregator;
    const self = this.self;
    const agent = this;
    this.sink = {
      sample(s: Sample) {
        self.metrics_received++;
        agg.add(s, agent.arrival);
      },
      bad(reason: BadReason, line: string) {
        self.bad_lines++;
        self.bad_lines_by_reason[reason] = (self.bad_lines_by_reason[reason] ?? 0) + 1;
        self.last_bad_lines.push(`${reason}: ${line.slice(0, 200)}`);
        if (self.last_bad_lines.length > 10) self.last_bad_lines.shift();
      },
      event(e: StatsdEvent) {
        self.events_received++;
        agent.alerts?.event(e);
        // kept with the instance it names, for the dashboard's markers (a store that cannot write drops it)
        try {
          agent.store?.event(e);
        } catch {
          // counted above; the store reports its own state
        }
      },
      serviceCheck(name: string, status: number, tags: string) {
        self.service_checks_received++;
        agg.add({ name: `service_check.${name}`, tags, type: 'g', value: status, weight: 1 });
      },
    };
  }

  /**
   * Feeds one packet or stream chunk of StatsD text (also the entry point for tests and fuzzing);
   * `now`: its arrival, for a replay that drives time itself (see `flush(now)`).
   */
  ingest(text: string, now?: number): void {
    this.self.packets_received++;
    this.self.bytes_received += text.length;
    // one clock reading per packet: samples that describe an interval end at their arrival
    this.arrival = now ?? Date.now();
    try {
      parsePacket(text, this.sink);
    } finally {
      this.arrival = undefined;
    }
  }

  /** Feeds already-parsed samples (HTTP push). */
  ingestSamples(samples: Sample[]): void {
    for (const s of samples) this.sink.sample(s);
  }

  /** `timer: false` leaves every window to `flush()` (tests and embedders that drive time themselves). */
  async start(o: { timer?: boolean } = {}): Promise<void> {
    try {
      await this.open(o);
    } catch (err) {
      this.lock?.release();
      this.lock = undefined;
      throw err;
    }
  }

  private async open(o: { timer?: boolean }): Promise<void> {
    const c = this.config;
    // V8 lets the old generation grow to up to 4× what survived the last full collection before the next
    // one; an agent holds a steady live set (~70 MB at 100k series) and promotes a window's garbage every
    // flush, so that headroom is mostly garbage. 1.5× held ~20 MB less RSS at 100k series for ~6 % more
    // CPU (docs/agent-store.md#memory). Read at each collection, so it applies from here on.
    setFlagsFromString('--heap-growing-percent=50');
    // one agent per data directory: a second one would interleave windows in the file and the spool
    if (c.store === 'sqlite' || c.remoteWrite.length > 0 || c.exporters.length > 0 || c.notify.length > 0)
      this.lock = lockDataDir(c.data, c.store === 'sqlite' ? ['ekg.db', 'ekg.db-wal', 'ekg.db-shm'] : []);
    // the store first: a file that is not ours stops the agent before it listens
    if (c.store === 'sqlite') {
      this.store = new SqliteStore({
        path: join(c.data, 'ekg.db'),
        flushInterval: c.flushInterval,
        retention: c.retention,
        instanceRetention: c.instanceRetention,
        maxBytes: c.storeMaxBytes || undefined,
      });
      this.store.start();
      this.sinks.push(this.store);
      this.reader = this.store;
    } else if (c.store === 'prometheus' && c.storeUrl) {
      this.reader = new PromStore({ url: c.storeUrl, flushInterval: c.flushInterval });
    }
    for (const spec of [...c.remoteWrite.map((url) => ({ type: 'remote_write' as const, url })), ...c.exporters]) {
      const e = makeExporter(spec, join(c.data, 'spool'));
      this.exporters.push(e);
      this.sinks.push(e);
    }
    // before any listener: a notifier that cannot start (a Mackerel key missing) stops the agent with nothing half-started
    if (c.alerts.some((r) => r.enabled)) {
      this.alerts = new Alerts(this, c.alerts, c.notify, {
        data: c.data,
        window: c.flushInterval,
        // instance-down forgets a group when the store's list would leave its instances out
        instanceRetention: c.instanceRetention,
        // a rule's query has the API's budgets
        limits: { queryMaxPoints: c.queryMaxPoints, queryTimeout: c.queryTimeout },
        // the dashboard's address for links: the HTTP listener as bound (known once it listens)
        agentUrl: () => {
          const http = this.addresses().http;
          return c.http && http ? `http://${c.http.host.includes(':') ? `[${c.http.host}]` : c.http.host}:${http}` : '';
        },
      });
    }
    if (c.statsdUdp) this.udp = await listenUdp(c.statsdUdp, c.recvBuffer, (buf) => this.ingest(buf.toString('utf8')));
    const tooLong = (head: string) => {
      this.self.packets_received++;
      this.sink.bad('too_long', head);
    };
    if (c.statsdTcp) this.streams.push(await listenStream(c.statsdTcp, (t) => this.ingest(t), this.streamBudget, tooLong));
    if (c.statsdUnix) this.streams.push(await listenStream({ path: c.statsdUnix }, (t) => this.ingest(t), this.streamBudget, tooLong));
    if (c.http)
      this.web = await startWeb(
        {
          token: c.token,
          queryMaxPoints: c.queryMaxPoints,
          queryTimeout: c.queryTimeout,
          maxConnections: c.httpMaxConnections,
          reader: () => this.reader,
          self: this.self,
          selfView: () => ({
            ...this.self,
            series_active: this.aggregator.size,
            // the agent's window, for the dashboard's note when an app reports on another interval
            window_ms: this.config.flushInterval,
            scrapes: this.scraper?.scrapes ?? 0,
            scrape_failures: Object.fromEntries(this.scraper?.failures ?? []),
            scrape_rounds: Object.fromEntries(this.scraper?.rounds ?? []),
            ...(this.store ? { store: this.store.status } : {}),
            ...(this.exporters.length > 0 ? { exporters: Object.fromEntries(this.exporters.map((e) => [e.name, e.status])) } : {}),
          }),
          healthy: () => this.store?.status.ok !== false,
          metrics: (web) => renderAgentMetrics(this, web),
          alerts: () => this.alerts?.view() ?? { firing: [], rules: [], history: [], notifiers: [], stalls_dropped: 0 },
          ingest: (samples) => this.ingestSamples(samples),
        },
        c.http,
      );
    this.scraper?.start();
    if (o.timer !== false) this.schedule();
  }

  /**
   * Windows are aligned to the wall clock: every agent flushes at :00, :10, :20 … A window ends at its
   * boundary even when the timer fires late (a busy machine): what is spread over intervals is cut
   * there, so a late timer does not stretch one window and shrink the next (docs/time-model.md).
   */
  private schedule(boundary?: number): void {
    const iv = this.config.flushInterval;
    const now = Date.now();
    // the next boundary follows the window just closed, not the clock: a timer that fires a millisecond
    // early (timers run on the monotonic clock) must not close the same boundary twice. A wall clock
    // stepped back by more than a window realigns rather than waits.
    const next = boundary !== undefined && boundary - now <= 2 * iv ? boundary : now + iv - (now % iv);
    this.timer = setTimeout(
      () => {
        const t0 = performance.now();
        this.flushStarts(t0);
        // a timer more than a window late ends the window at the last boundary passed
        const late = Date.now();
        const end = late - next >= iv ? late - (late % iv) : next;
        this.aggregator.flushAsync(end).then(
          (w) => this.finish(w, t0),
          () => {},
        );
        if (!this.stopped) this.schedule(end + iv);
      },
      Math.max(0, next - now),
    );
  }

  /** Closes the window now (or at `now`: a replay of recorded traffic) and hands it to every sink. */
  flush(now = Date.now(), o: { final?: boolean } = {}): FlushResult {
    const t0 = performance.now();
    this.flushStarts(t0);
    return this.finish(this.aggregator.flush(now, o), t0);
  }

  /** The flush's self-measurement: CPU from here, and the GC pauses that begin from here to its end. */
  private flushStarts(t0: number): void {
    this.flushCpu0 = process.cpuUsage();
    this.flushT0 = t0;
    this.flushT2 = Number.POSITIVE_INFINITY;
    const p = this.self.last_flush_phases as NonNullable<SelfStats['last_flush_phases']>;
    p.gc_ms = 0;
    p.gc_count = 0;
    if (!this.gcSeen) {
      this.gcSeen = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) {
          if (e.startTime < this.flushT0 || e.startTime > this.flushT2) continue;
          p.gc_ms = Math.round((p.gc_ms + e.duration) * 1000) / 1000;
          p.gc_count++;
        }
      });
      this.gcSeen.observe({ entryTypes: ['gc'] });
    }
  }

  private finish(w: FlushResult, t0: number): FlushResult {
    const t1 = performance.now();
    const c1 = process.cpuUsage();
    const prev = this.last;
    this.last = w;
    this.self.flushes++;
    // (the window's columns: its series objects are made only if a sink reads them)
    this.self.last_flush_series = w.cols?.n ?? w.series.length;
    this.self.series_active = this.aggregator.size;
    this.self.dropped_cardinality = this.aggregator.droppedCardinality;
    this.self.dropped_type_clash = this.aggregator.droppedTypeClash;
    for (const sink of this.sinks) {
      try {
        const r = sink.write(w);
        if (r instanceof Promise) r.catch(() => this.self.sink_errors++);
      } catch {
        this.self.sink_errors++;
      }
    }
    this.alerts?.tick(w.end);
    // every sink has had the sketches: they are packed (quantiles are computed from them only when
    // read, by /metrics say) and reused by the next windows
    this.aggregator.release(w);
    // the window before is no one's any more (a sink keeps no window past its write: sinks/sink.ts): its
    // buffers serve the next window
    if (prev) this.aggregator.retire(prev);
    const t2 = performance.now();
    const c2 = process.cpuUsage();
    const ms = (x: number) => Math.round(x * 1000) / 1000;
    const cpu = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage) => ms((b.user - a.user + b.system - a.system) / 1000);
    this.self.last_flush_ms = ms(t2 - t0);
    this.self.last_flush_busy_ms = ms(this.aggregator.lastFlushBusyMs + (t2 - t1));
    // GC pauses are reported after they end (the observer's callback): those that began in [t0, t2] are added to this flush's
    const p = this.self.last_flush_phases as NonNullable<SelfStats['last_flush_phases']>;
    p.window_ms = ms(t1 - t0);
    p.window_cpu_ms = this.flushCpu0 ? cpu(this.flushCpu0, c1) : 0;
    p.sinks_ms = ms(t2 - t1);
    p.sinks_cpu_ms = cpu(c1, c2);
    this.flushT2 = t2;
    return w;
  }

  /** Stops listening, flushes the open window to every sink, closes the sinks. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.scraper?.stop();
    this.gcSeen?.disconnect();
    const udp = this.udp;
    if (udp) await new Promise<void>((r) => udp.close(() => r()));
    await Promise.all(this.streams.map((s) => closeStream(s)));
    // the last, partial window, with what is left of every interval sample (docs/time-model.md)
    this.flush(Date.now(), { final: true });
    await this.alerts?.close();
    for (const s of this.sinks) await s.close?.();
    // windows the store could not write (a full disk, a cap) die with the process: say how many
    const st = this.store?.status;
    if (st && st.windows_held > 0) {
      this.self.windows_lost_at_exit = st.windows_held;
      report(
        'EKG_AGENT_ERR_STORE_LOST',
        `store: ${st.windows_held} window${st.windows_held === 1 ? '' : 's'} held in memory could not be written (${st.error ?? 'store failing'}) and ${st.windows_held === 1 ? 'is' : 'are'} lost at exit${st.windows_dropped > 0 ? `; ${st.windows_dropped} more were dropped earlier, the hold being full` : ''}`,
      );
    }
    this.lock?.release();
    this.lock = undefined;
    const web = this.web;
    if (web) {
      web.closeAllConnections();
      await new Promise<void>((r) => web.close(() => r()));
    }
  }

  /** Where the listeners ended up (port 0 picks one). */
  addresses(): { udp?: number; tcp?: number; http?: number } {
    const port = (a: unknown) => (a && typeof a === 'object' && 'port' in a ? (a as { port: number }).port : undefined);
    return {
      udp: this.udp ? this.udp.address().port : undefined,
      tcp: this.streams[0] && this.config.statsdTcp ? port(this.streams[0].address()) : undefined,
      http: this.web ? port(this.web.address()) : undefined,
    };
  }
}
