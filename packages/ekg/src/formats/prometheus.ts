import { convert, defOf, familyOf, type OtherUnit, type PromFamily, prometheusFamilies, type Unit } from '../catalogue.js';
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

const families = new Map<string, string>();
/**
 * The Prometheus family of a catalogued /stats path, as the catalogue names it: the renderer names no family the
 * catalogue has (only the Prometheus-only ones, which the catalogue lists by that name).
 */
function fam(path: string): string {
  let name = families.get(path);
  if (name === undefined) {
    const p = defOf(path)?.prometheus;
    if (!p) throw new Error(`the catalogue gives ${path} no Prometheus family`);
    name = familyOf(p);
    families.set(path, name);
  }
  return name;
}

/**
 * A catalogued value in its family's unit: from the catalogue's /stats unit (or `from`, for a snapshot field kept in
 * another, like the cumulative CPU seconds) to the unit the catalogue gives the family (ms → seconds).
 */
function val(path: string, value: number, from?: Unit | OtherUnit): number {
  const d = defOf(path);
  if (!d) throw new Error(`${path} is not in the catalogue`);
  return convert(value, from ?? d.unit, d.promUnit ?? d.unit);
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
  /** one sample of a catalogued path's family, in the family's unit */
  const one = (path: string, value: number, from?: Unit | OtherUnit) => w.one(fam(path), val(path, value, from));

  // process_* — prom-client's names
  // the totals since process start are kept in seconds (the window's deltas in ms)
  one('runtime.cpu.user', r.cpu.userTotal, 'seconds');
  one('runtime.cpu.system', r.cpu.systemTotal, 'seconds');
  one('runtime.cpu.total', r.cpu.userTotal + r.cpu.systemTotal, 'seconds');
  w.one(fam('runtime.info.startTime'), Math.round(val('runtime.info.startTime', r.info.startTime)));
  one('runtime.memory.rss', r.memory.rss);
  if (r.memory.virtual !== undefined) w.one('process_virtual_memory_bytes', r.memory.virtual);
  if (r.memory.dataSegment !== undefined) w.one('process_heap_bytes', r.memory.dataSegment);
  if (r.fds) {
    one('runtime.resources.fds.open', r.fds.open);
    one('runtime.resources.fds.max', r.fds.max);
  }

  // nodejs_* — prom-client's names; delays are net of the sampling resolution
  const d = r.eventloop.delay;
  one('runtime.eventloop.lag', r.eventloop.lag);
  for (const q of ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99'] as const) one(`runtime.eventloop.delay.${q}`, d[q]);

  const handles = r.active.handles;
  const requests = r.active.requests;
  const resources = r.active.resources;
  const total = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  w.byLabel(fam('runtime.active.byType.*'), 'type', resources);
  if (s.promClientTotals) one('runtime.active.total', total(resources));
  w.byLabel('nodejs_active_handles', 'type', handles);
  if (s.promClientTotals) w.one('nodejs_active_handles_total', total(handles));
  w.byLabel('nodejs_active_requests', 'type', requests);
  if (s.promClientTotals) w.one('nodejs_active_requests_total', total(requests));

  one('runtime.memory.heap.total', r.memory.heapTotal);
  one('runtime.memory.heap.used', r.memory.heapUsed);
  one('runtime.memory.external', r.memory.external);
  for (const field of ['size', 'used', 'available'] as const) {
    const path = `runtime.memory.spaces.*.${field}`;
    const name = fam(path);
    w.family(name);
    for (const sp of r.memory.spaces) w.sample(name, val(path, sp[field]), { space: sp.name });
  }
  w.one(fam('runtime.info.version'), 1, {
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
  one('runtime.eventloop.utilization', r.eventloop.utilization);
  one('runtime.cpu.utilization', (r.cpu.user + r.cpu.system) / r.windowMs);
  one('runtime.memory.heap.limit', r.memory.heapLimit);
  one('runtime.memory.arrayBuffers', r.memory.arrayBuffers);
  one('runtime.memory.maxRss', r.memory.maxRss);
  one('runtime.gc.maxPause', Math.max(...GC_KINDS.map((k) => r.gc.window[k].max)));
  const u = r.usageTotal;
  w.family(fam('runtime.resources.contextSwitches.voluntary'));
  w.sample(fam('runtime.resources.contextSwitches.voluntary'), u.voluntaryContextSwitches, { kind: 'voluntary' });
  w.sample(fam('runtime.resources.contextSwitches.voluntary'), u.involuntaryContextSwitches, { kind: 'involuntary' });
  w.family(fam('runtime.resources.pageFaults.minor'));
  w.sample(fam('runtime.resources.pageFaults.minor'), u.minorPageFault, { kind: 'minor' });
  w.sample(fam('runtime.resources.pageFaults.minor'), u.majorPageFault, { kind: 'major' });
  one('runtime.resources.fs.reads', u.fsRead);
  one('runtime.resources.fs.writes', u.fsWrite);

  const h = s.http;
  if (h) {
    w.family(fam('http.requests.total'));
    STATUS_CLASSES.forEach((c, i) => {
      w.sample(fam('http.requests.total'), h.classesTotal[i] ?? 0, { class: c });
    });
    one('http.inFlight', h.inFlight);
    one('http.aborted', h.abortedTotal);
    w.histogram('ekg_http_request_duration_seconds', [
      { labels: {}, cumulative: h.buckets.cumulative(), sum: h.buckets.sum, count: h.buckets.count },
    ]);
    for (const q of ['p50', 'p90', 'p99', 'max'] as const) one(`http.duration.${q}`, h.duration[q]);
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
    const stall = prometheusFamilies().get('ekg_eventloop_stall_duration_seconds') as PromFamily;
    w.family(stall.name, stall);
    let acc = 0;
    STALL_BUCKETS.forEach((le, i) => {
      acc += s.stalls?.buckets[i] ?? 0;
      w.sample('ekg_eventloop_stall_duration_seconds_bucket', acc, { le: String(le) });
    });
    w.sample('ekg_eventloop_stall_duration_seconds_bucket', s.stalls.count, { le: '+Inf' });
    w.sample('ekg_eventloop_stall_duration_seconds_sum', convert(s.stalls.totalMs, 'ms', stall.unit as Unit));
    w.sample('ekg_eventloop_stall_duration_seconds_count', s.stalls.count);
  }
  const seen = new Set<string>();
  for (const v of s.vitals) if (v.stats) vitalGauges(w, `ekg_${v.name}`, v.stats, seen);
  return w.text();
}
