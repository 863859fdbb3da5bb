/**
 * One catalogue, several spellings (DESIGN.md "Names"): the dotted path of /stats and StatsD, the
 * Prometheus name (prom-client's where one exists), the OpenTelemetry semantic name, and Heroku's
 * Node name where Heroku has one. docs/metrics.md is generated from this list
 * (`npm run docs --workspace ekg`) and catalogue.test.ts keeps code, list and page in step.
 */
export type Unit = 'ms' | 'seconds' | 'bytes' | 'ratio' | 'count' | 'per second' | 'epoch ms' | 'info';
/** A unit another format writes a catalogued value in: Prometheus (seconds, epoch seconds), Heroku (ns). */
export type OtherUnit = 'ns' | 'epoch seconds';

/**
 * Every unit ekg and the formats it writes use: what it measures (`dim`), its power of ten of that measure's base
 * (`exp`), and its UCUM spelling, as OpenTelemetry writes units. Two units convert when they measure the same thing.
 */
const UNITS: Readonly<Record<Unit | OtherUnit, { dim: string; exp: number; ucum?: string }>> = {
  ns: { dim: 'time', exp: -9, ucum: 'ns' },
  ms: { dim: 'time', exp: -3, ucum: 'ms' },
  seconds: { dim: 'time', exp: 0, ucum: 's' },
  'epoch ms': { dim: 'epoch', exp: -3 },
  'epoch seconds': { dim: 'epoch', exp: 0 },
  bytes: { dim: 'bytes', exp: 0, ucum: 'By' },
  ratio: { dim: 'ratio', exp: 0, ucum: '1' },
  // a count is dimensionless in UCUM; OpenTelemetry names what it counts in braces ({request})
  count: { dim: 'count', exp: 0, ucum: '1' },
  'per second': { dim: 'rate', exp: 0, ucum: '1/s' },
  info: { dim: 'info', exp: 0 },
};

/** A unit by its own name or its UCUM spelling (`s`, `By`, `{fault}`: an annotation is a count). */
function unitDef(u: string): { dim: string; exp: number } | undefined {
  if (u in UNITS) return UNITS[u as Unit | OtherUnit];
  if (/^\{[^}]+\}$/.test(u)) return UNITS.count;
  return Object.values(UNITS).find((d) => d.ucum === u);
}

/** The UCUM spelling of a unit (OTLP's `unit` field), undefined for what UCUM does not measure (info, epoch). */
export function ucumOf(u: Unit | OtherUnit): string | undefined {
  return UNITS[u].ucum;
}

/**
 * The factor that takes a value in `from` to `to` (ms → s: 0.001, ms → ns: 1e6), by unit name or UCUM spelling;
 * undefined when the two measure different things (bytes and seconds). The one unit conversion of every format.
 */
export function unitScale(from: string, to: string): number | undefined {
  const a = unitDef(from);
  const b = unitDef(to);
  return a && b && a.dim === b.dim ? 10 ** (a.exp - b.exp) : undefined;
}

/** `value` in `from` written in `to` (dividing by a power of ten when the target unit is larger, so 7 ms is 0.007 s exactly). */
export function convert(value: number, from: string, to: string): number {
  const a = unitDef(from);
  const b = unitDef(to);
  if (!a || !b || a.dim !== b.dim) throw new Error(`${from} cannot be written in ${to}`);
  const e = a.exp - b.exp;
  return e < 0 ? value / 10 ** -e : value * 10 ** e;
}
/**
 * window: an additive delta over the last window (a count or a sum: StatsD counters);
 * summary: a statistic of the window (percentile, mean, max, rate, utilization);
 * level: the value at the window's end; info: identity, not a measurement.
 */
export type Kind = 'window' | 'summary' | 'level' | 'info';
/** A Prometheus family's `# TYPE`; `info` is written `gauge` in the text format and `info` in OpenMetrics. */
export type PromType = 'counter' | 'gauge' | 'histogram' | 'info';

/** How a catalogued value is spelled in OpenTelemetry's semantic conventions. */
export interface OtelSpelling {
  /** the instrument's name (`process.cpu.time`) */
  name: string;
  /** attributes with fixed values (`cpu.mode: user`) */
  attrs?: Readonly<Record<string, string>>;
  /** the attribute whose value is the path's `*` (`v8js.heap.space.name` for `runtime.memory.spaces.*.used`) */
  starAttr?: string;
  /**
   * set when the value is only part of the instrument — its count or sum, or a sum over an attribute the
   * convention requires: the OTLP exporter then cannot send it under the name, and keeps ekg's
   */
  part?: 'count' | 'sum' | 'summed over spaces';
}

/** An OpenTelemetry instrument as its semantic convention defines it. */
export interface OtelInstrument {
  instrument: 'gauge' | 'counter' | 'updowncounter' | 'histogram';
  /** UCUM, as the convention writes it (`s`, `By`, `{fault}`) */
  unit: string;
  /** attributes the convention requires */
  required?: readonly string[];
  /** required attributes ekg cannot give and sends the metric without (documented in docs/exporter-otlp.md) */
  waived?: readonly string[];
}

/**
 * The OpenTelemetry semantic conventions of the instruments the catalogue's `otel` spellings name
 * (semantic-conventions model/nodejs, v8js, process, http): instrument, unit, required attributes.
 */
export const otelInstruments: Readonly<Record<string, OtelInstrument>> = {
  ...Object.fromEntries(
    ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99'].map((q) => [
      `nodejs.eventloop.delay.${q}`,
      { instrument: 'gauge', unit: 's' } satisfies OtelInstrument,
    ]),
  ),
  'nodejs.eventloop.utilization': { instrument: 'gauge', unit: '1' },
  'v8js.gc.duration': { instrument: 'histogram', unit: 's', required: ['v8js.gc.type'] },
  'v8js.memory.heap.limit': { instrument: 'updowncounter', unit: 'By', required: ['v8js.heap.space.name'] },
  'v8js.memory.heap.used': { instrument: 'updowncounter', unit: 'By', required: ['v8js.heap.space.name'] },
  'v8js.memory.heap.space.available_size': { instrument: 'updowncounter', unit: 'By', required: ['v8js.heap.space.name'] },
  'v8js.memory.heap.space.physical_size': { instrument: 'updowncounter', unit: 'By', required: ['v8js.heap.space.name'] },
  'process.cpu.time': { instrument: 'counter', unit: 's', required: ['cpu.mode'] },
  'process.cpu.utilization': { instrument: 'gauge', unit: '1', required: ['cpu.mode'] },
  'process.memory.usage': { instrument: 'updowncounter', unit: 'By' },
  'process.context_switches': { instrument: 'counter', unit: '{context_switch}', required: ['process.context_switch.type'] },
  'process.paging.faults': { instrument: 'counter', unit: '{fault}' },
  'process.uptime': { instrument: 'gauge', unit: 's' },
  'http.server.active_requests': {
    instrument: 'updowncounter',
    unit: '{request}',
    required: ['http.request.method', 'url.scheme'],
    waived: ['http.request.method', 'url.scheme'],
  },
  'http.server.request.duration': { instrument: 'histogram', unit: 's', required: ['http.request.method', 'url.scheme'] },
};

export interface MetricDef {
  /** /stats and StatsD spelling; `*` stands for a label value (a heap space, a resource type) */
  path: string;
  unit: Unit;
  kind: Kind;
  help: string;
  /** Prometheus family and, when the path has a `*`, the label it becomes */
  prometheus?: string;
  /** the Prometheus family's `# HELP` text, on the one entry that owns the family (formats/prometheus.ts reads it here) */
  promHelp?: string;
  /** the family's `# TYPE`, on the same entry as `promHelp` (formats/prometheus.ts reads it here) */
  promType?: PromType;
  /** the unit /metrics writes the value in, when it is not `unit` (ms → seconds, as the family's name says) */
  promUnit?: Unit | OtherUnit;
  /** the OpenTelemetry semantic-convention spelling (the agent's OTLP exporter sends the value under it) */
  otel?: OtelSpelling;
  heroku?: string;
  /** the unit Heroku's name carries, when it is not `unit` (`node.gc.pause.ns`) */
  herokuUnit?: OtherUnit;
}

/** prom-client's HELP for its event-loop lag gauges */
const LAG_HELP: Record<string, string> = {
  min: 'The minimum recorded event loop delay.',
  max: 'The maximum recorded event loop delay.',
  mean: 'The mean of the recorded event loop delays.',
  stddev: 'The standard deviation of the recorded event loop delays.',
};

const el = (q: string, help: string): MetricDef => ({
  path: `runtime.eventloop.delay.${q}`,
  unit: 'ms',
  kind: 'summary',
  help,
  // prom-client and OpenTelemetry have no p95; Heroku has it
  ...(q === 'p95'
    ? {}
    : {
        prometheus: `nodejs_eventloop_lag_${q}_seconds`,
        promUnit: 'seconds',
        promHelp: LAG_HELP[q] ?? `The ${q.slice(1)}th percentile of the recorded event loop delays.`,
        promType: 'gauge',
        otel: { name: `nodejs.eventloop.delay.${q}` },
      }),
  ...(q === 'p50'
    ? { heroku: 'node.eventloop.delay.ms.median' }
    : ['p95', 'p99', 'max'].includes(q)
      ? { heroku: `node.eventloop.delay.ms.${q}` }
      : {}),
});

const gc = (kind: string): MetricDef[] => [
  {
    path: `runtime.gc.${kind}.count`,
    unit: 'count',
    kind: 'window',
    help: `${kind} collections in the window`,
    prometheus: `nodejs_gc_duration_seconds_count{kind="${kind}"}`,
    otel: { name: 'v8js.gc.duration', part: 'count', attrs: { 'v8js.gc.type': kind } },
    // Heroku's collector counts every collection that is not minor as old (so old + young = all)
    heroku: kind === 'minor' ? 'node.gc.young.collections' : 'node.gc.old.collections',
  },
  {
    path: `runtime.gc.${kind}.pause`,
    unit: 'ms',
    kind: 'window',
    help: `total ${kind} GC pause in the window`,
    prometheus: `nodejs_gc_duration_seconds_sum{kind="${kind}"}`,
    promUnit: 'seconds',
    otel: { name: 'v8js.gc.duration', part: 'sum', attrs: { 'v8js.gc.type': kind } },
    heroku: kind === 'minor' ? 'node.gc.young.pause.ns' : 'node.gc.old.pause.ns',
    herokuUnit: 'ns',
  },
  { path: `runtime.gc.${kind}.max`, unit: 'ms', kind: 'summary', help: `longest ${kind} GC pause in the window` },
];

export const catalogue: readonly MetricDef[] = [
  el('min', 'shortest event-loop delay in the window, net of the sampling resolution'),
  el('mean', 'mean event-loop delay'),
  el('stddev', 'standard deviation of the event-loop delay'),
  el('p50', 'median event-loop delay'),
  el('p90', '90th percentile event-loop delay'),
  el('p95', '95th percentile event-loop delay'),
  el('p99', '99th percentile event-loop delay'),
  el('max', 'longest event-loop delay in the window'),
  {
    path: 'runtime.eventloop.utilization',
    unit: 'ratio',
    kind: 'summary',
    help: 'share of the window the event loop was busy, 0..1',
    prometheus: 'ekg_eventloop_utilization_ratio',
    promHelp: 'Event loop utilization over the last window, 0..1.',
    promType: 'gauge',
    otel: { name: 'nodejs.eventloop.utilization' },
    // a fraction despite its name: Heroku's collector sends eventLoopUtilization().utilization as is
    heroku: 'node.eventloop.usage.percent',
  },
  {
    path: 'runtime.eventloop.resolution',
    unit: 'ms',
    kind: 'level',
    help: "the event-loop delay monitor's sampling interval: ekg's delays are net of it, Heroku's node.eventloop.delay.ms.* include it",
  },
  {
    path: 'runtime.eventloop.lag',
    unit: 'ms',
    kind: 'level',
    help: "how late the sampler's own timer fired at the window's end",
    prometheus: 'nodejs_eventloop_lag_seconds',
    promUnit: 'seconds',
    promHelp: 'Lag of event loop in seconds.',
    promType: 'gauge',
  },
  ...gc('minor'),
  ...gc('major'),
  ...gc('incremental'),
  ...gc('weakcb'),
  {
    path: 'runtime.gc.count',
    unit: 'count',
    kind: 'window',
    help: 'collections of every kind in the window',
    heroku: 'node.gc.collections',
  },
  {
    path: 'runtime.gc.pause',
    unit: 'ms',
    kind: 'window',
    help: 'total GC pause in the window',
    heroku: 'node.gc.pause.ns',
    herokuUnit: 'ns',
  },
  {
    path: 'runtime.gc.maxPause',
    unit: 'ms',
    kind: 'summary',
    help: 'longest GC pause in the window',
    prometheus: 'ekg_gc_pause_max_seconds',
    promUnit: 'seconds',
    promHelp: 'Longest GC pause in the last window.',
    promType: 'gauge',
  },
  {
    path: 'runtime.memory.rss',
    unit: 'bytes',
    kind: 'level',
    help: 'resident set size',
    prometheus: 'process_resident_memory_bytes',
    promHelp: 'Resident memory size in bytes.',
    promType: 'gauge',
    otel: { name: 'process.memory.usage' },
  },
  {
    path: 'runtime.memory.maxRss',
    unit: 'bytes',
    kind: 'level',
    help: 'peak resident set size',
    prometheus: 'ekg_max_resident_memory_bytes',
    promHelp: 'Peak resident set size in bytes.',
    promType: 'gauge',
  },
  {
    path: 'runtime.memory.heap.used',
    unit: 'bytes',
    kind: 'level',
    help: 'V8 heap used',
    prometheus: 'nodejs_heap_size_used_bytes',
    promHelp: 'Process heap size used from Node.js in bytes.',
    promType: 'gauge',
    otel: { name: 'v8js.memory.heap.used', part: 'summed over spaces' },
  },
  {
    path: 'runtime.memory.heap.total',
    unit: 'bytes',
    kind: 'level',
    help: 'V8 heap allocated',
    prometheus: 'nodejs_heap_size_total_bytes',
    promHelp: 'Process heap size from Node.js in bytes.',
    promType: 'gauge',
  },
  {
    path: 'runtime.memory.heap.limit',
    unit: 'bytes',
    kind: 'level',
    help: 'V8 heap size limit',
    prometheus: 'ekg_heap_size_limit_bytes',
    promHelp: 'V8 heap size limit in bytes.',
    promType: 'gauge',
    otel: { name: 'v8js.memory.heap.limit', part: 'summed over spaces' },
  },
  {
    path: 'runtime.memory.external',
    unit: 'bytes',
    kind: 'level',
    help: 'memory of C++ objects bound to JS objects',
    prometheus: 'nodejs_external_memory_bytes',
    promHelp: 'Node.js external memory size in bytes.',
    promType: 'gauge',
  },
  {
    path: 'runtime.memory.arrayBuffers',
    unit: 'bytes',
    kind: 'level',
    help: 'ArrayBuffer memory',
    prometheus: 'ekg_array_buffers_bytes',
    promHelp: 'Memory allocated for ArrayBuffers and SharedArrayBuffers in bytes.',
    promType: 'gauge',
  },
  {
    path: 'runtime.memory.spaces.*.used',
    unit: 'bytes',
    kind: 'level',
    help: 'used bytes of one heap space',
    prometheus: 'nodejs_heap_space_size_used_bytes{space}',
    promHelp: 'Process heap space size used from Node.js in bytes.',
    promType: 'gauge',
    otel: { name: 'v8js.memory.heap.used', starAttr: 'v8js.heap.space.name' },
  },
  {
    path: 'runtime.memory.spaces.*.size',
    unit: 'bytes',
    kind: 'level',
    help: 'allocated bytes of one heap space',
    prometheus: 'nodejs_heap_space_size_total_bytes{space}',
    promHelp: 'Process heap space size total from Node.js in bytes.',
    promType: 'gauge',
    otel: { name: 'v8js.memory.heap.space.physical_size', starAttr: 'v8js.heap.space.name' },
  },
  {
    path: 'runtime.memory.spaces.*.available',
    unit: 'bytes',
    kind: 'level',
    help: 'available bytes of one heap space',
    prometheus: 'nodejs_heap_space_size_available_bytes{space}',
    promHelp: 'Process heap space size available from Node.js in bytes.',
    promType: 'gauge',
    otel: { name: 'v8js.memory.heap.space.available_size', starAttr: 'v8js.heap.space.name' },
  },
  {
    path: 'runtime.cpu.user',
    unit: 'ms',
    kind: 'window',
    help: 'user CPU time in the window',
    prometheus: 'process_cpu_user_seconds_total',
    promUnit: 'seconds',
    promHelp: 'Total user CPU time spent in seconds.',
    promType: 'counter',
    otel: { name: 'process.cpu.time', attrs: { 'cpu.mode': 'user' } },
  },
  {
    path: 'runtime.cpu.system',
    unit: 'ms',
    kind: 'window',
    help: 'system CPU time in the window',
    prometheus: 'process_cpu_system_seconds_total',
    promUnit: 'seconds',
    promHelp: 'Total system CPU time spent in seconds.',
    promType: 'counter',
    otel: { name: 'process.cpu.time', attrs: { 'cpu.mode': 'system' } },
  },
  {
    path: 'runtime.cpu.total',
    unit: 'ms',
    kind: 'window',
    help: 'user + system CPU time in the window',
    prometheus: 'process_cpu_seconds_total',
    promUnit: 'seconds',
    promHelp: 'Total user and system CPU time spent in seconds.',
    promType: 'counter',
  },
  {
    path: 'runtime.cpu.utilization',
    unit: 'ratio',
    kind: 'summary',
    help: 'CPU time over the window as a fraction of one core (can exceed 1 with worker threads)',
    prometheus: 'ekg_cpu_utilization_ratio',
    promHelp: 'CPU time (user+system) over the last window as a fraction of one core.',
    promType: 'gauge',
    otel: { name: 'process.cpu.utilization' },
  },
  {
    path: 'runtime.resources.contextSwitches.voluntary',
    unit: 'count',
    kind: 'window',
    help: 'voluntary context switches in the window',
    prometheus: 'ekg_context_switches_total{kind="voluntary"}',
    promHelp: 'Context switches since process start, by kind.',
    promType: 'counter',
    otel: { name: 'process.context_switches', attrs: { 'process.context_switch.type': 'voluntary' } },
  },
  {
    path: 'runtime.resources.contextSwitches.involuntary',
    unit: 'count',
    kind: 'window',
    help: 'involuntary context switches in the window',
    prometheus: 'ekg_context_switches_total{kind="involuntary"}',
    otel: { name: 'process.context_switches', attrs: { 'process.context_switch.type': 'involuntary' } },
  },
  {
    path: 'runtime.resources.fs.reads',
    unit: 'count',
    kind: 'window',
    help: 'file system reads in the window',
    prometheus: 'ekg_fs_reads_total',
    promHelp: 'File system reads since process start.',
    promType: 'counter',
  },
  {
    path: 'runtime.resources.fs.writes',
    unit: 'count',
    kind: 'window',
    help: 'file system writes in the window',
    prometheus: 'ekg_fs_writes_total',
    promHelp: 'File system writes since process start.',
    promType: 'counter',
  },
  {
    path: 'runtime.resources.pageFaults.minor',
    unit: 'count',
    kind: 'window',
    help: 'minor page faults in the window',
    prometheus: 'ekg_page_faults_total{kind="minor"}',
    promHelp: 'Page faults since process start, by kind.',
    promType: 'counter',
    otel: { name: 'process.paging.faults', attrs: { 'system.paging.fault.type': 'minor' } },
  },
  {
    path: 'runtime.resources.pageFaults.major',
    unit: 'count',
    kind: 'window',
    help: 'major page faults in the window',
    prometheus: 'ekg_page_faults_total{kind="major"}',
    otel: { name: 'process.paging.faults', attrs: { 'system.paging.fault.type': 'major' } },
  },
  {
    path: 'runtime.resources.fds.open',
    unit: 'count',
    kind: 'level',
    help: 'open file descriptors (Linux)',
    prometheus: 'process_open_fds',
    promHelp: 'Number of open file descriptors.',
    promType: 'gauge',
  },
  {
    path: 'runtime.resources.fds.max',
    unit: 'count',
    kind: 'level',
    help: 'file descriptor limit (Linux)',
    prometheus: 'process_max_fds',
    promHelp: 'Maximum number of open file descriptors.',
    promType: 'gauge',
  },
  {
    path: 'runtime.active.total',
    unit: 'count',
    kind: 'level',
    help: 'active resources keeping the event loop alive',
    prometheus: 'nodejs_active_resources_total',
    promHelp: 'Total number of active resources.',
    promType: 'gauge',
  },
  {
    path: 'runtime.active.byType.*',
    unit: 'count',
    kind: 'level',
    help: 'active resources of one type (TCPSocketWrap, Timeout, FSReqCallback, …)',
    prometheus: 'nodejs_active_resources{type}',
    promHelp: 'Number of active resources that are currently keeping the event loop alive, grouped by async resource type.',
    promType: 'gauge',
  },
  {
    path: 'runtime.info.version',
    unit: 'info',
    kind: 'info',
    help: 'Node.js version',
    prometheus: 'nodejs_version_info{version,major,minor,patch}',
    promHelp: 'Node.js version info.',
    promType: 'info',
  },
  { path: 'runtime.info.pid', unit: 'info', kind: 'info', help: 'process id' },
  { path: 'runtime.info.uptime', unit: 'seconds', kind: 'level', help: 'process uptime', otel: { name: 'process.uptime' } },
  {
    path: 'runtime.info.startTime',
    unit: 'epoch ms',
    kind: 'info',
    help: 'process start time',
    prometheus: 'process_start_time_seconds (seconds)',
    promUnit: 'epoch seconds',
    promHelp: 'Start time of the process since unix epoch in seconds.',
    promType: 'gauge',
  },
  {
    path: 'http.requests.total',
    unit: 'count',
    kind: 'window',
    help: 'requests finished in the window (ekg endpoints excluded)',
    prometheus: 'ekg_http_requests_total (sum over class)',
    promHelp: 'HTTP requests served, by status class (ekg endpoints excluded).',
    promType: 'counter',
  },
  { path: 'http.requests.rate', unit: 'per second', kind: 'summary', help: 'requests per second over the window' },
  ...['1xx', '2xx', '3xx', '4xx', '5xx'].map(
    (c): MetricDef => ({
      path: `http.requests.${c}`,
      unit: 'count',
      kind: 'window',
      help: `${c} responses in the window`,
      prometheus: `ekg_http_requests_total{class="${c}"}`,
    }),
  ),
  {
    path: 'http.inFlight',
    unit: 'count',
    kind: 'level',
    help: 'requests being served at the window end',
    prometheus: 'ekg_http_requests_in_flight',
    promHelp: 'HTTP requests being served now.',
    promType: 'gauge',
    otel: { name: 'http.server.active_requests' },
  },
  {
    path: 'http.aborted',
    unit: 'count',
    kind: 'window',
    help: 'requests whose connection closed before the response finished',
    prometheus: 'ekg_http_requests_aborted_total',
    promHelp: 'HTTP requests whose connection closed before the response finished.',
    promType: 'counter',
  },
  {
    path: 'http.duration.count',
    unit: 'count',
    kind: 'window',
    help: 'requests timed in the window',
    prometheus: 'ekg_http_request_duration_seconds_count',
    otel: { name: 'http.server.request.duration', part: 'count' },
  },
  { path: 'http.duration.mean', unit: 'ms', kind: 'summary', help: 'mean request duration' },
  {
    path: 'http.duration.p50',
    unit: 'ms',
    kind: 'summary',
    help: 'median request duration',
    prometheus: 'ekg_http_request_duration_p50_seconds',
    promUnit: 'seconds',
    promHelp: 'Median HTTP request duration over the last window.',
    promType: 'gauge',
  },
  {
    path: 'http.duration.p90',
    unit: 'ms',
    kind: 'summary',
    help: '90th percentile request duration',
    prometheus: 'ekg_http_request_duration_p90_seconds',
    promUnit: 'seconds',
    promHelp: '90th percentile HTTP request duration over the last window.',
    promType: 'gauge',
  },
  {
    path: 'http.duration.p99',
    unit: 'ms',
    kind: 'summary',
    help: '99th percentile request duration',
    prometheus: 'ekg_http_request_duration_p99_seconds',
    promUnit: 'seconds',
    promHelp: '99th percentile HTTP request duration over the last window.',
    promType: 'gauge',
  },
  {
    path: 'http.duration.max',
    unit: 'ms',
    kind: 'summary',
    help: 'longest request in the window',
    prometheus: 'ekg_http_request_duration_max_seconds',
    promUnit: 'seconds',
    promHelp: 'Longest HTTP request over the last window.',
    promType: 'gauge',
  },
];

/** Prometheus-only families: cumulative forms and compatibility series with no /stats twin. */
export const prometheusOnly: ReadonlyArray<{ name: string; type: PromType; unit: Unit; help: string; promHelp: string }> = [
  {
    name: 'nodejs_gc_duration_seconds',
    type: 'histogram',
    unit: 'seconds',
    help: 'GC pause histogram by kind (prom-client buckets 0.001…5 s)',
    promHelp: 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.',
  },
  {
    name: 'ekg_http_request_duration_seconds',
    type: 'histogram',
    unit: 'seconds',
    help: 'request duration histogram (prom-client default buckets 5 ms…10 s)',
    promHelp: 'HTTP request duration in seconds, from request start to response finish.',
  },
  {
    name: 'process_virtual_memory_bytes',
    type: 'gauge',
    unit: 'bytes',
    help: 'virtual memory size (Linux)',
    promHelp: 'Virtual memory size in bytes.',
  },
  {
    name: 'process_heap_bytes',
    type: 'gauge',
    unit: 'bytes',
    help: 'data segment size (Linux), as prom-client reports it',
    promHelp: 'Process heap size in bytes.',
  },
  {
    name: 'nodejs_active_handles',
    type: 'gauge',
    unit: 'count',
    help: 'libuv handles by type (prom-client)',
    promHelp: 'Number of active libuv handles grouped by handle type. Every handle type is C++ class name.',
  },
  {
    name: 'nodejs_active_handles_total',
    type: 'gauge',
    unit: 'count',
    help: 'libuv handles (prom-client; off with promClientTotals: false)',
    promHelp: 'Total number of active handles.',
  },
  {
    name: 'nodejs_active_requests',
    type: 'gauge',
    unit: 'count',
    help: 'libuv requests by type (prom-client)',
    promHelp: 'Number of active libuv requests grouped by request type. Every request type is C++ class name.',
  },
  {
    name: 'nodejs_active_requests_total',
    type: 'gauge',
    unit: 'count',
    help: 'libuv requests (prom-client; off with promClientTotals: false)',
    promHelp: 'Total number of active requests.',
  },
  {
    name: 'ekg_vital_up',
    type: 'gauge',
    unit: 'count',
    help: "1 when a custom vital's stats() answered in the last window",
    promHelp: '1 when the vital returned its stats in the last window, 0 when it failed.',
  },
  {
    name: 'ekg_vital_healthy',
    type: 'gauge',
    unit: 'count',
    help: "1 when a custom vital's last check passed",
    promHelp: "1 when the vital's last health check passed, 0 when it failed.",
  },
  {
    name: 'ekg_reporter_windows_sent_total',
    type: 'counter',
    unit: 'count',
    help: 'windows a push transport delivered, by transport',
    promHelp: 'Windows a push transport delivered.',
  },
  {
    name: 'ekg_reporter_errors_total',
    type: 'counter',
    unit: 'count',
    help: 'failed sends of a push transport (each retry counts), by transport',
    promHelp: 'Failed sends of a push transport (each retry counts).',
  },
  {
    name: 'ekg_reporter_windows_dropped_total',
    type: 'counter',
    unit: 'count',
    help: 'windows a push transport gave up on, by transport',
    promHelp: 'Windows a push transport gave up on.',
  },
  {
    name: 'ekg_reporter_bytes_total',
    type: 'counter',
    unit: 'count',
    help: 'bytes a push transport handed to the network, by transport',
    promHelp: 'Bytes a push transport handed to the network.',
  },
  {
    name: 'ekg_eventloop_stalls_total',
    type: 'counter',
    unit: 'count',
    help: 'event-loop stalls the watchdog saw (with the watchdog on)',
    promHelp: 'Event-loop stalls the watchdog saw (no turn for its threshold).',
  },
  {
    name: 'ekg_eventloop_stall_duration_seconds',
    type: 'histogram',
    unit: 'seconds',
    help: 'how long each stall blocked the event loop, a histogram (with the watchdog on)',
    promHelp: 'How long each stall blocked the event loop.',
  },
];

/** The gauge that starts each window's StatsD lines and says how long the window they describe is (docs/time-model.md). */
export const INTERVAL_GAUGE = 'ekg.interval_ms';

/** StatsD-only gauges: what the StatsD reporters send besides the catalogued values. */
export const statsdOnly: ReadonlyArray<{ name: string; unit: Unit; help: string }> = [
  {
    name: INTERVAL_GAUGE,
    unit: 'ms',
    help: "the length of the window the lines that follow describe (sent first in each window; ekg-agent spreads the sender's counters over it)",
  },
];

/** What /metrics writes in a family's `# HELP` and `# TYPE` lines. */
export interface PromFamily {
  name: string;
  type: PromType;
  help: string;
  /** the unit its values are written in (undefined for a custom vital's gauge: ekg does not know it) */
  unit?: Unit | OtherUnit;
}

let families: Map<string, PromFamily> | undefined;
/** Every Prometheus family ekg renders, from its catalogue entry (the one with `promHelp`) or `prometheusOnly`. */
export function prometheusFamilies(): ReadonlyMap<string, PromFamily> {
  if (!families) {
    families = new Map();
    for (const m of catalogue)
      if (m.prometheus && m.promHelp && m.promType) {
        const name = familyOf(m.prometheus);
        families.set(name, { name, type: m.promType, help: m.promHelp, unit: m.promUnit ?? m.unit });
      }
    for (const p of prometheusOnly) families.set(p.name, { name: p.name, type: p.type, help: p.promHelp, unit: p.unit });
  }
  return families;
}

/** The `# HELP` text of a Prometheus family ekg renders (undefined for an unknown family). */
export function prometheusHelp(family: string): string | undefined {
  return prometheusFamilies().get(family)?.help;
}

/** Prometheus family name of a catalogue entry (without labels or notes). */
export function familyOf(prometheus: string): string {
  return prometheus.replace(/[{ (].*$/, '').replace(/_(count|sum|bucket)$/, '');
}

let byPath: Map<string, MetricDef> | undefined;
let patterns: Array<[RegExp, MetricDef]> | undefined;
/** How a catalogued value becomes Heroku's: a counter or a gauge, in Heroku's unit and with Heroku's meaning. */
export interface HerokuSpelling {
  name: string;
  counter: boolean;
  /** from the catalogue's unit to Heroku's: ms → ns for the pause counters */
  scale: number;
  /** how a post of several windows combines them: counters add up, the max delay is the max, the rest are averaged */
  combine: 'sum' | 'max' | 'mean';
  /** the delay percentiles: Heroku's include the monitor's resolution, which ekg's leave out */
  plusResolution: boolean;
}

/**
 * Heroku's spelling of a path (`runtime.gc.major.count` → `node.gc.old.collections`), or undefined.
 * Several paths may share one Heroku name (major, incremental and weakcb are all "old"): their
 * counters add up. The one place the Heroku reporter and the agent's Heroku exporter learn the names.
 */
export function herokuOf(path: string): HerokuSpelling | undefined {
  const m = defOf(path);
  if (!m?.heroku) return undefined;
  const counter = m.kind === 'window';
  return {
    name: m.heroku,
    counter,
    scale: unitScale(m.unit, m.herokuUnit ?? m.unit) as number,
    combine: counter ? 'sum' : m.path.endsWith('.max') ? 'max' : 'mean',
    plusResolution: m.path.startsWith('runtime.eventloop.delay.'),
  };
}

/** Heroku's name for each catalogued path that has one, in catalogue order (tests and docs). */
export const herokuPaths: ReadonlyArray<{ path: string; heroku: string }> = catalogue.flatMap((m) =>
  m.heroku ? [{ path: m.path, heroku: m.heroku }] : [],
);

/** The catalogue entry of a /stats or StatsD name (`runtime.heap.space.old_space.used` matches its `*` entry). */
export function defOf(path: string): MetricDef | undefined {
  if (!byPath) {
    byPath = new Map();
    patterns = [];
    for (const d of catalogue) {
      if (d.path.includes('*')) patterns.push([new RegExp(`^${d.path.replace(/\./g, '\\.').replace(/\*/g, '[^.]+')}$`), d]);
      else byPath.set(d.path, d);
    }
  }
  const hit = byPath.get(path);
  if (hit) return hit;
  for (const [re, d] of patterns ?? []) if (re.test(path)) return d;
  return undefined;
}

/** The unit of a /stats or StatsD name, from the catalogue; undefined for a name ekg does not define. */
export function unitOf(path: string): Unit | undefined {
  return defOf(path)?.unit;
}

/** An OTel spelling as docs/metrics.md writes it: `name (part, key=value, star attribute)`. */
export function otelText(o: OtelSpelling): string {
  const notes = [
    ...(o.part ? [o.part] : []),
    ...Object.entries(o.attrs ?? {}).map(([k, v]) => `${k}=${v}`),
    ...(o.starAttr ? [o.starAttr] : []),
  ];
  return notes.length ? `${o.name} (${notes.join(', ')})` : o.name;
}

/**
 * The OTel instrument a /stats or StatsD name is sent as, with its attributes (the path's `*` as `starAttr`'s
 * value), its instrument kind, UCUM unit and required attributes (`otelInstruments`); undefined when the catalogue
 * gives it none or the value is only part of one (see `OtelSpelling.part`).
 */
export function otelOf(path: string): ({ name: string; attrs: Array<[string, string]> } & OtelInstrument) | undefined {
  const d = defOf(path);
  const o = d?.otel;
  const inst = o && otelInstruments[o.name];
  if (!d || !o || !inst || o.part) return undefined;
  const attrs = Object.entries(o.attrs ?? {});
  if (o.starAttr) {
    const star = new RegExp(`^${d.path.replace(/\./g, '\\.').replace(/\*/g, '([^.]+)')}$`).exec(path)?.[1];
    if (star === undefined) return undefined;
    attrs.push([o.starAttr, star]);
  }
  return { ...inst, name: o.name, attrs };
}
