import { readdirSync, readFileSync } from 'node:fs';
import {
  type EventLoopUtilization,
  type IntervalHistogram,
  monitorEventLoopDelay,
  PerformanceObserver,
  constants as perfConstants,
  performance,
} from 'node:perf_hooks';
import v8 from 'node:v8';
import { Buckets } from '../histogram.js';
import type { Stats } from '../types.js';

export const GC_KINDS = ['minor', 'major', 'incremental', 'weakcb'] as const;
export type GcKind = (typeof GC_KINDS)[number];
/** prom-client's default buckets for nodejs_gc_duration_seconds, kept for dashboard parity. */
export const GC_BUCKETS = [0.001, 0.01, 0.1, 1, 2, 5] as const;

const kindByFlag = new Map<number, GcKind>([
  [perfConstants.NODE_PERFORMANCE_GC_MINOR, 'minor'],
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR, 'major'],
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL, 'incremental'],
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB, 'weakcb'],
]);

interface GcCounter {
  count: number;
  /** ms */
  pause: number;
  max: number;
}

export interface Delay {
  /** all in ms, net of the sampling resolution */
  min: number;
  mean: number;
  stddev: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
}

/** One window of the runtime, plus the cumulative totals Prometheus wants. */
export interface RuntimeSample {
  /** `resolution`: the delay monitor's sampling interval, ms; every delay here is net of it (Heroku's include it) */
  eventloop: { delay: Delay; utilization: number; lag: number; resolution: number };
  gc: {
    window: Record<GcKind, GcCounter>;
    total: Record<GcKind, { count: number; pause: number; buckets: Buckets }>;
  };
  memory: {
    rss: number;
    maxRss: number;
    heapUsed: number;
    heapTotal: number;
    heapLimit: number;
    external: number;
    arrayBuffers: number;
    virtual: number | undefined;
    dataSegment: number | undefined;
    spaces: Array<{ name: string; used: number; size: number; available: number }>;
  };
  cpu: {
    /** ms over the window */
    user: number;
    system: number;
    /** cumulative seconds since process start */
    userTotal: number;
    systemTotal: number;
  };
  /** process.resourceUsage() as read at the end of the window (cumulative) */
  usageTotal: NodeJS.ResourceUsage;
  usage: {
    voluntaryContextSwitches: number;
    involuntaryContextSwitches: number;
    fsRead: number;
    fsWrite: number;
    minorPageFault: number;
    majorPageFault: number;
  };
  active: {
    resources: Record<string, number>;
    handles: Record<string, number>;
    requests: Record<string, number>;
  };
  fds: { open: number; max: number } | undefined;
  info: { version: string; pid: number; uptime: number; startTime: number };
  /** the window this covers, ms */
  windowMs: number;
}

function emptyGc(): Record<GcKind, GcCounter> {
  return {
    minor: { count: 0, pause: 0, max: 0 },
    major: { count: 0, pause: 0, max: 0 },
    incremental: { count: 0, pause: 0, max: 0 },
    weakcb: { count: 0, pause: 0, max: 0 },
  };
}

function countBy(list: readonly unknown[], key: (x: unknown) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of list) {
    const k = key(x);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

function constructorName(x: unknown): string {
  const c = (x as { constructor?: { name?: string } } | null)?.constructor?.name;
  return typeof c === 'string' && c ? c : 'Unknown';
}

function readProcStatus(): { virtual: number; data: number } | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const text = readFileSync('/proc/self/status', 'utf8');
    const kb = (field: string) => {
      const m = new RegExp(`^${field}:\\s*(\\d+)`, 'm').exec(text);
      return m ? Number(m[1]) * 1024 : 0;
    };
    return { virtual: kb('VmSize'), data: kb('VmData') };
  } catch {
    return undefined;
  }
}

function readMaxFds(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

const startTime = Date.now() - process.uptime() * 1000;
const versionParts = process.versions.node.split('.').map(Number);
export const nodeVersion = {
  version: process.version,
  major: versionParts[0] ?? 0,
  minor: versionParts[1] ?? 0,
  patch: versionParts[2] ?? 0,
};

export interface RuntimeOptions {
  /** monitorEventLoopDelay resolution in ms (default 10). Subtracted from every delay reported. */
  resolution?: number;
}

/**
 * The `runtime` vital's engine: it owns the event-loop histogram and the GC observer and turns
 * them, with process.* readings, into one RuntimeSample per window.
 */
export class RuntimeMonitor {
  private readonly resolution: number;
  private eld: IntervalHistogram | undefined;
  private gcObserver: PerformanceObserver | undefined;
  private gcWindow = emptyGc();
  private readonly gcTotal: RuntimeSample['gc']['total'] = {
    minor: { count: 0, pause: 0, buckets: new Buckets(GC_BUCKETS) },
    major: { count: 0, pause: 0, buckets: new Buckets(GC_BUCKETS) },
    incremental: { count: 0, pause: 0, buckets: new Buckets(GC_BUCKETS) },
    weakcb: { count: 0, pause: 0, buckets: new Buckets(GC_BUCKETS) },
  };
  private elu: EventLoopUtilization | undefined;
  private cpu: NodeJS.CpuUsage | undefined;
  private usage: NodeJS.ResourceUsage | undefined;
  private maxFds: number | undefined;
  private lastLag = 0;

  constructor(options: RuntimeOptions = {}) {
    this.resolution = options.resolution ?? 10;
  }

  start(): void {
    if (this.eld) return;
    this.eld = monitorEventLoopDelay({ resolution: this.resolution });
    this.eld.enable();
    // Not v8.GCProfiler (tried, issue 20): it writes heap and heap-space statistics as JSON twice per GC
    // and stop() parses them all: ~4,200 instructions per request against ~235 here (callgrind), and a
    // window of 10,000 scavenges holds ~49 MB of RSS and blocks ~450 ms in stop().
    this.gcObserver = new PerformanceObserver((list) => {
      // Every entry of the batch counts: prom-client and OpenTelemetry read only the first.
      for (const entry of list.getEntries()) {
        const flags = (entry as { detail?: { kind?: number } }).detail?.kind;
        const kind = kindByFlag.get(flags ?? -1);
        if (!kind) continue;
        const ms = entry.duration;
        const w = this.gcWindow[kind];
        w.count++;
        w.pause += ms;
        if (ms > w.max) w.max = ms;
        const t = this.gcTotal[kind];
        t.count++;
        t.pause += ms;
        t.buckets.observe(ms / 1000);
      }
    });
    this.gcObserver.observe({ entryTypes: ['gc'] });
    this.elu = performance.eventLoopUtilization();
    this.cpu = process.cpuUsage();
    this.usage = process.resourceUsage();
    this.maxFds = readMaxFds();
  }

  stop(): void {
    this.eld?.disable();
    this.eld = undefined;
    this.gcObserver?.disconnect();
    this.gcObserver = undefined;
  }

  /** The sampler's own timer lateness, in ms: prom-client's nodejs_eventloop_lag_seconds, for free. */
  setLag(ms: number): void {
    this.lastLag = Math.max(ms, 0);
  }

  /**
   * Reads the window since the previous sample. With `reset` false nothing is consumed, so the
   * provisional window served before the first close does not disturb the first real one.
   */
  sample(windowMs: number, reset = true): RuntimeSample {
    const res = this.resolution;
    const h = this.eld;
    const net = (ns: number) => Math.max(0, ns / 1e6 - res);
    let delay: Delay = { min: 0, mean: 0, stddev: 0, p50: 0, p90: 0, p95: 0, p99: 0, max: 0 };
    if (h && h.count > 0) {
      delay = {
        min: net(h.min),
        mean: net(h.mean),
        stddev: h.stddev / 1e6,
        p50: net(h.percentile(50)),
        p90: net(h.percentile(90)),
        p95: net(h.percentile(95)),
        p99: net(h.percentile(99)),
        max: net(h.max),
      };
    }
    const eluNow = performance.eventLoopUtilization();
    const elu = this.elu ? performance.eventLoopUtilization(eluNow, this.elu) : eluNow;
    const cpuNow = process.cpuUsage();
    const cpuPrev = this.cpu ?? { user: 0, system: 0 };
    const usageNow = process.resourceUsage();
    const u0 = this.usage;
    const d = (k: keyof NodeJS.ResourceUsage) => usageNow[k] - (u0 ? u0[k] : 0);
    const gcWindow = this.gcWindow;

    const mem = process.memoryUsage();
    const heap = v8.getHeapStatistics();
    const proc = readProcStatus();
    let open: number | undefined;
    if (this.maxFds !== undefined) {
      try {
        open = readdirSync('/proc/self/fd').length - 1; // less the one readdir itself opened
      } catch {
        open = undefined;
      }
    }
    const getHandles = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles;
    const getRequests = (process as unknown as { _getActiveRequests?: () => unknown[] })._getActiveRequests;

    const sample: RuntimeSample = {
      eventloop: { delay, utilization: elu.utilization, lag: this.lastLag, resolution: res },
      gc: { window: gcWindow, total: this.gcTotal },
      memory: {
        rss: mem.rss,
        maxRss: usageNow.maxRSS * 1024,
        heapUsed: mem.heapUsed,
        heapTotal: mem.heapTotal,
        heapLimit: heap.heap_size_limit,
        external: mem.external,
        arrayBuffers: mem.arrayBuffers,
        virtual: proc?.virtual,
        dataSegment: proc?.data,
        spaces: v8.getHeapSpaceStatistics().map((s) => ({
          // prom-client's label: the space name without its `_space` suffix
          name: s.space_name.endsWith('_space') ? s.space_name.slice(0, -6) : s.space_name,
          used: s.space_used_size,
          size: s.space_size,
          available: s.space_available_size,
        })),
      },
      cpu: {
        user: (cpuNow.user - cpuPrev.user) / 1000,
        system: (cpuNow.system - cpuPrev.system) / 1000,
        userTotal: cpuNow.user / 1e6,
        systemTotal: cpuNow.system / 1e6,
      },
      usageTotal: usageNow,
      usage: {
        voluntaryContextSwitches: d('voluntaryContextSwitches'),
        involuntaryContextSwitches: d('involuntaryContextSwitches'),
        fsRead: d('fsRead'),
        fsWrite: d('fsWrite'),
        minorPageFault: d('minorPageFault'),
        majorPageFault: d('majorPageFault'),
      },
      active: {
        resources: countBy(process.getActiveResourcesInfo(), (x) => String(x)),
        handles: typeof getHandles === 'function' ? countBy(getHandles.call(process), constructorName) : {},
        requests: typeof getRequests === 'function' ? countBy(getRequests.call(process), constructorName) : {},
      },
      fds: open !== undefined && this.maxFds !== undefined ? { open, max: this.maxFds } : undefined,
      info: {
        version: process.version,
        pid: process.pid,
        uptime: process.uptime(),
        startTime,
      },
      windowMs,
    };
    if (reset) {
      h?.reset();
      this.elu = eluNow;
      this.cpu = cpuNow;
      this.usage = usageNow;
      this.gcWindow = emptyGc();
    } else {
      // The provisional reader must not share the live accumulator object.
      sample.gc.window = structuredClone(gcWindow);
    }
    return sample;
  }
}

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
const round = (n: number, digits = 3) => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};

/** The `runtime` key of /stats: nested, ms for time, bytes for memory, fractions 0..1. */
export function runtimeStats(s: RuntimeSample): Stats {
  const seconds = s.windowMs / 1000 || 1;
  const gc: Stats = {};
  let count = 0;
  let pause = 0;
  let maxPause = 0;
  for (const kind of GC_KINDS) {
    const w = s.gc.window[kind];
    gc[kind] = { count: w.count, pause: round(w.pause), max: round(w.max) };
    count += w.count;
    pause += w.pause;
    if (w.max > maxPause) maxPause = w.max;
  }
  gc.count = count;
  gc.pause = round(pause);
  gc.maxPause = round(maxPause);
  const spaces: Stats = {};
  for (const sp of s.memory.spaces) spaces[sp.name] = { used: sp.used, size: sp.size, available: sp.available };
  const d = s.eventloop.delay;
  const stats: Stats = {
    eventloop: {
      delay: {
        min: round(d.min),
        mean: round(d.mean),
        stddev: round(d.stddev),
        p50: round(d.p50),
        p90: round(d.p90),
        p95: round(d.p95),
        p99: round(d.p99),
        max: round(d.max),
      },
      utilization: round(s.eventloop.utilization, 4),
      lag: round(s.eventloop.lag),
      resolution: s.eventloop.resolution,
    },
    gc,
    memory: {
      rss: s.memory.rss,
      maxRss: s.memory.maxRss,
      heap: { used: s.memory.heapUsed, total: s.memory.heapTotal, limit: s.memory.heapLimit },
      external: s.memory.external,
      arrayBuffers: s.memory.arrayBuffers,
      spaces,
    },
    cpu: {
      user: round(s.cpu.user),
      system: round(s.cpu.system),
      total: round(s.cpu.user + s.cpu.system),
      utilization: round((s.cpu.user + s.cpu.system) / 1000 / seconds, 4),
    },
    resources: {
      contextSwitches: {
        voluntary: s.usage.voluntaryContextSwitches,
        involuntary: s.usage.involuntaryContextSwitches,
      },
      fs: { reads: s.usage.fsRead, writes: s.usage.fsWrite },
      pageFaults: { minor: s.usage.minorPageFault, major: s.usage.majorPageFault },
    },
    active: { total: sum(s.active.resources), byType: { ...s.active.resources } },
    info: {
      version: s.info.version,
      pid: s.info.pid,
      uptime: round(s.info.uptime),
      startTime: Math.round(s.info.startTime),
    },
  };
  if (s.fds) (stats.resources as Stats).fds = { open: s.fds.open, max: s.fds.max };
  return stats;
}
