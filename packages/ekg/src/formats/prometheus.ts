import { type PromFamily, prometheusFamilies } from '../catalogue.js';
import type { Stats } from '../types.js';
import { STATUS_CLASSES } from '../vitals/http.js';
import { GC_KINDS, nodeVersion } from '../vitals/runtime.js';
import { STALL_BUCKETS } from '../watchdog/watchdog.js';
import type { Snapshot } from '../window/snapshot.js';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

/** A Prometheus metric name from any dotted or free-form path. */
export function metricName(s: string): string {
  const n = s.replace(/[^a-zA-Z0-9_:]/g, '_').replace(/_+/g, '_');
  return /^[a-zA-Z_:]/.test(n) ? n : `_${n}`;
}

/**
 * Writes the text exposition format 0.0.4, or OpenMetrics 1.0 when `open` is set. The two differ
 * in counter and info family names (OpenMetrics names the family without `_total` / `_info`) and
 * in the closing `# EOF`.
 */
class Writer {
  private out: string[] = [];
  private readonly open: boolean;
  private readonly constLabels: string;

  constructor(open: boolean, labels: Record<string, string>) {
    this.open = open;
    this.constLabels = Object.entries(labels)
      .map(([k, v]) => `${metricName(k)}="${escapeLabel(v)}"`)
      .join(',');
  }

  /**
   * Starts a family. Its TYPE and HELP are the catalogue's (`spec` only for what the catalogue cannot know: custom
   * vitals); a family missing from the catalogue is written `untyped` (catalogue.test.ts fails on it).
   */
  family(name: string, spec: PromFamily | undefined = prometheusFamilies().get(name)): void {
    const kind = spec?.type;
    let family = name;
    let type: string = kind ?? 'untyped';
    if (this.open) {
      if (kind === 'counter' && name.endsWith('_total')) family = name.slice(0, -6);
      if (kind === 'info') family = name.slice(0, -5);
    } else if (kind === 'info') {
      type = 'gauge';
    }
    this.out.push(`# HELP ${family} ${escapeHelp(spec?.help ?? name)}`, `# TYPE ${family} ${type}`);
  }

  sample(name: string, value: number, labels?: Record<string, string | number>): void {
    let l = this.constLabels;
    if (labels) {
      for (const k in labels) l += `${l ? ',' : ''}${k}="${escapeLabel(String(labels[k]))}"`;
    }
    this.out.push(l ? `${name}{${l}} ${formatValue(value)}` : `${name} ${formatValue(value)}`);
  }

  one(name: string, value: number, labels?: Record<string, string | number>): void {
    this.family(name);
    this.sample(name, value, labels);
  }

  byLabel(name: string, label: string, values: Record<string, number>): void {
    this.family(name);
    for (const k of Object.keys(values).sort()) this.sample(name, values[k] as number, { [label]: k });
  }

  histogram(
    name: string,
    series: Array<{ labels: Record<string, string>; cumulative: Array<[number, number]>; sum: number; count: number }>,
  ): void {
    this.family(name);
    for (const s of series) {
      for (const [le, n] of s.cumulative) this.sample(`${name}_bucket`, n, { ...s.labels, le: formatValue(le) });
      this.sample(`${name}_sum`, s.sum, s.labels);
      this.sample(`${name}_count`, s.count, s.labels);
    }
  }

  text(): string {
    if (this.open) this.out.push('# EOF');
    return `${this.out.join('\n')}\n`;
  }
}

/** Custom vital stats as gauges: ekg_<vital>_<path>; booleans as 0/1, strings left out. */
function vitalGauges(w: Writer, prefix: string, stats: Stats, seen: Set<string>): void {
  for (const [key, v] of Object.entries(stats)) {
    const name = metricName(`${prefix}_${key}`);
    if (v !== null && typeof v === 'object') {
      vitalGauges(w, name, v, seen);
      continue;
    }
    const num = typeof v === 'number' ? v : typeof v === 'boolean' ? (v ? 1 : 0) : undefined;
    if (num === undefined || seen.has(name)) continue;
    seen.add(name);
    w.family(name, { name, type: 'gauge', help: `Custom vital stat ${name}.` });
    w.sample(name, num);
  }
}

export function renderPrometheus(s: Snapshot, open = false): string {
  const w = new Writer(open, s.labels);
  const r = s.runtime;
  const sec = (ms: number) => ms / 1000;

  // process_* — prom-client's names
  w.one('process_cpu_user_seconds_total', r.cpu.userTotal);
  w.one('process_cpu_system_seconds_total', r.cpu.systemTotal);
  w.one('process_cpu_seconds_total', r.cpu.userTotal + r.cpu.systemTotal);
  w.one('process_start_time_seconds', Math.round(r.info.startTime / 1000));
  w.one('process_resident_memory_bytes', r.memory.rss);
  if (r.memory.virtual !== undefined) w.one('process_virtual_memory_bytes', r.memory.virtual);
  if (r.memory.dataSegment !== undefined) w.one('process_heap_bytes', r.memory.dataSegment);
  if (r.fds) {
    w.one('process_open_fds', r.fds.open);
    w.one('process_max_fds', r.fds.max);
  }

  // nodejs_* — prom-client's names; delays are net of the sampling resolution
  const d = r.eventloop.delay;
  w.one('nodejs_eventloop_lag_seconds', sec(r.eventloop.lag));
  w.one('nodejs_eventloop_lag_min_seconds', sec(d.min));
  w.one('nodejs_eventloop_lag_max_seconds', sec(d.max));
  w.one('nodejs_eventloop_lag_mean_seconds', sec(d.mean));
  w.one('nodejs_eventloop_lag_stddev_seconds', sec(d.stddev));
  w.one('nodejs_eventloop_lag_p50_seconds', sec(d.p50));
  w.one('nodejs_eventloop_lag_p90_seconds', sec(d.p90));
  w.one('nodejs_eventloop_lag_p99_seconds', sec(d.p99));

  const handles = r.active.handles;
  const requests = r.active.requests;
  const resources = r.active.resources;
  const total = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  w.byLabel('nodejs_active_resources', 'type', resources);
  if (s.promClientTotals) w.one('nodejs_active_resources_total', total(resources));
  w.byLabel('nodejs_active_handles', 'type', handles);
  if (s.promClientTotals) w.one('nodejs_active_handles_total', total(handles));
  w.byLabel('nodejs_active_requests', 'type', requests);
  if (s.promClientTotals) w.one('nodejs_active_requests_total', total(requests));

  w.one('nodejs_heap_size_total_bytes', r.memory.heapTotal);
  w.one('nodejs_heap_size_used_bytes', r.memory.heapUsed);
  w.one('nodejs_external_memory_bytes', r.memory.external);
  for (const field of ['total', 'used', 'available'] as const) {
    w.family(`nodejs_heap_space_size_${field}_bytes`);
    for (const sp of r.memory.spaces) {
      const v = field === 'total' ? sp.size : field === 'used' ? sp.used : sp.available;
      w.sample(`nodejs_heap_space_size_${field}_bytes`, v, { space: sp.name });
    }
  }
  w.one('nodejs_version_info', 1, {
    version: nodeVersion.version,
    major: nodeVersion.major,
    minor: nodeVersion.minor,
    patch: nodeVersion.patch,
  });
  w.histogram(
    'nodejs_gc_duration_seconds',
    GC_KINDS.map((kind) => {
      const t = r.gc.total[kind];
      return { labels: { kind }, cumulative: t.buckets.cumulative(), sum: t.buckets.sum, count: t.buckets.count };
    }),
  );

  // ekg_* — what prom-client lacks
  w.one('ekg_eventloop_utilization_ratio', r.eventloop.utilization);
  w.one('ekg_cpu_utilization_ratio', (r.cpu.user + r.cpu.system) / r.windowMs);
  w.one('ekg_heap_size_limit_bytes', r.memory.heapLimit);
  w.one('ekg_array_buffers_bytes', r.memory.arrayBuffers);
  w.one('ekg_max_resident_memory_bytes', r.memory.maxRss);
  const gcMax = Math.max(...GC_KINDS.map((k) => r.gc.window[k].max));
  w.one('ekg_gc_pause_max_seconds', gcMax / 1000);
  const u = r.usageTotal;
  w.family('ekg_context_switches_total');
  w.sample('ekg_context_switches_total', u.voluntaryContextSwitches, { kind: 'voluntary' });
  w.sample('ekg_context_switches_total', u.involuntaryContextSwitches, { kind: 'involuntary' });
  w.family('ekg_page_faults_total');
  w.sample('ekg_page_faults_total', u.minorPageFault, { kind: 'minor' });
  w.sample('ekg_page_faults_total', u.majorPageFault, { kind: 'major' });
  w.one('ekg_fs_reads_total', u.fsRead);
  w.one('ekg_fs_writes_total', u.fsWrite);

  const h = s.http;
  if (h) {
    w.family('ekg_http_requests_total');
    STATUS_CLASSES.forEach((c, i) => {
      w.sample('ekg_http_requests_total', h.classesTotal[i] ?? 0, { class: c });
    });
    w.one('ekg_http_requests_in_flight', h.inFlight);
    w.one('ekg_http_requests_aborted_total', h.abortedTotal);
    w.histogram('ekg_http_request_duration_seconds', [
      { labels: {}, cumulative: h.buckets.cumulative(), sum: h.buckets.sum, count: h.buckets.count },
    ]);
    const dd = h.duration;
    w.one('ekg_http_request_duration_p50_seconds', dd.p50 / 1000);
    w.one('ekg_http_request_duration_p90_seconds', dd.p90 / 1000);
    w.one('ekg_http_request_duration_p99_seconds', dd.p99 / 1000);
    w.one('ekg_http_request_duration_max_seconds', dd.max / 1000);
  }

  if (s.vitals.length > 0) {
    w.family('ekg_vital_up');
    for (const v of s.vitals) w.sample('ekg_vital_up', v.error ? 0 : 1, { vital: v.name });
  }
  const checks = Object.keys(s.checks);
  if (checks.length > 0) {
    w.family('ekg_vital_healthy');
    for (const name of checks) w.sample('ekg_vital_healthy', s.checks[name] ? 1 : 0, { vital: name });
  }
  if (s.reporters.length > 0) {
    const each = (name: string, pick: (t: Snapshot['reporters'][number]['stats']) => number) => {
      w.family(name);
      for (const r of s.reporters) w.sample(name, pick(r.stats), { transport: r.name });
    };
    each('ekg_reporter_windows_sent_total', (t) => t.sent);
    each('ekg_reporter_errors_total', (t) => t.errors);
    each('ekg_reporter_windows_dropped_total', (t) => t.dropped);
    each('ekg_reporter_bytes_total', (t) => t.bytes);
  }
  if (s.stalls) {
    w.family('ekg_eventloop_stalls_total');
    w.sample('ekg_eventloop_stalls_total', s.stalls.count);
    w.family('ekg_eventloop_stall_duration_seconds');
    let acc = 0;
    STALL_BUCKETS.forEach((le, i) => {
      acc += s.stalls?.buckets[i] ?? 0;
      w.sample('ekg_eventloop_stall_duration_seconds_bucket', acc, { le: String(le) });
    });
    w.sample('ekg_eventloop_stall_duration_seconds_bucket', s.stalls.count, { le: '+Inf' });
    w.sample('ekg_eventloop_stall_duration_seconds_sum', s.stalls.totalMs / 1000);
    w.sample('ekg_eventloop_stall_duration_seconds_count', s.stalls.count);
  }
  const seen = new Set<string>();
  for (const v of s.vitals) if (v.stats) vitalGauges(w, `ekg_${v.name}`, v.stats, seen);
  return w.text();
}
