import { escapeLabel as esc, metricName } from 'ekg-vitals';
import type { Aggregator, FlushResult } from '../aggregate/aggregator.js';
import type { Alerts } from '../alert/alerts.js';
import type { ExporterStatus } from '../export/exporter.js';
import type { SelfStats } from '../model/self.js';
import { QUANTILES } from '../model/series.js';
import { tagEntries } from '../model/tags.js';
import type { ApiCounters } from './api.js';

/** The HTTP server's own counters, shown in /api/v1/self and the agent's /metrics. */
export interface WebCounters extends ApiCounters {
  /** requests refused before routing (400, 408, 431): a request line, URL or header that does not parse */
  http_bad_requests: number;
  /** requests that raised an unexpected error: answered 500 by the last-resort guard, the agent kept serving */
  http_errors: number;
  /** connections closed to make room at the cap: the oldest with no request in progress */
  http_connections_evicted: number;
  /** connections closed at once at the cap, every held one serving a request */
  http_connections_refused: number;
}

/** What /metrics reads of the agent: its counters, the aggregator's, the exporters', the alerts' and the last window. */
export interface MetricsSource {
  readonly self: SelfStats;
  readonly aggregator: Pick<Aggregator, 'size' | 'droppedCardinality' | 'droppedTypeClash' | 'droppedSetMembers'>;
  readonly exporters: ReadonlyArray<{ name: string; status: ExporterStatus }>;
  readonly alerts: Pick<Alerts, 'metricLines'> | undefined;
  readonly last: FlushResult | undefined;
}

/** Tags as Prometheus labels: a bare tag (value '') is left out, as Prometheus reads an empty value as no label (remote write does the same). */
function labels(tags: string, extra?: string): string {
  const parts: string[] = [];
  for (const [key, v] of tagEntries(tags)) {
    const k = metricName(key).replace(/:/g, '_');
    if (v !== '' && !k.startsWith('__')) parts.push(`${k}="${esc(v)}"`);
  }
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** The agent's /metrics: its own counters, then the last window's aggregates in Prometheus text. */
export function renderAgentMetrics(agent: MetricsSource, web?: WebCounters): string {
  const s = agent.self;
  const out: string[] = [];
  const one = (name: string, type: string, help: string, value: number) =>
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
  one('ekg_agent_packets_received_total', 'counter', 'StatsD packets and stream chunks received.', s.packets_received);
  one('ekg_agent_metrics_received_total', 'counter', 'Samples received (StatsD lines and push values).', s.metrics_received);
  one('ekg_agent_pushes_received_total', 'counter', 'HTTP pushes accepted.', s.pushes_received);
  one('ekg_agent_pushes_rejected_total', 'counter', 'HTTP pushes refused (400, 413).', s.pushes_rejected);
  one('ekg_agent_unauthorized_total', 'counter', 'HTTP requests refused for a missing or wrong token (401).', s.unauthorized);
  if (web) {
    one(
      'ekg_agent_http_bad_requests_total',
      'counter',
      'HTTP requests refused before routing (400, 408, 431): a request line, URL or header that does not parse.',
      web.http_bad_requests,
    );
    one(
      'ekg_agent_http_errors_total',
      'counter',
      'HTTP requests that failed unexpectedly, answered 500; the agent kept serving.',
      web.http_errors,
    );
    one(
      'ekg_agent_queries_store_busy_total',
      'counter',
      "API queries answered 503 because SQLite's file was locked (the agent never waits on it); ask again.",
      web.queries_store_busy,
    );
    one(
      'ekg_agent_http_connections_evicted_total',
      'counter',
      'HTTP connections closed at the connection cap to make room: the oldest with no request in progress.',
      web.http_connections_evicted,
    );
    one(
      'ekg_agent_http_connections_refused_total',
      'counter',
      'HTTP connections closed at once at the connection cap, every held one serving a request.',
      web.http_connections_refused,
    );
    out.push(
      '# HELP ekg_agent_queries_refused_total API queries refused by a budget (docs/limits.md).',
      '# TYPE ekg_agent_queries_refused_total counter',
      `ekg_agent_queries_refused_total{budget="query_max_points"} ${web.queries_over_points}`,
      `ekg_agent_queries_refused_total{budget="query_timeout"} ${web.queries_over_time}`,
    );
    one('ekg_agent_series_truncated_total', 'counter', '/api/v1/series answers cut at their limit.', web.series_truncated);
    one('ekg_agent_instances_truncated_total', 'counter', '/api/v1/instances answers cut at their limit.', web.instances_truncated);
  }
  out.push('# HELP ekg_agent_bad_lines_total Lines refused, by reason.', '# TYPE ekg_agent_bad_lines_total counter');
  for (const [reason, n] of Object.entries(s.bad_lines_by_reason)) out.push(`ekg_agent_bad_lines_total{reason="${reason}"} ${n}`);
  if (Object.keys(s.bad_lines_by_reason).length === 0) out.push('ekg_agent_bad_lines_total{reason="none"} 0');
  one('ekg_agent_series_active', 'gauge', 'Series held by the aggregator.', agent.aggregator.size);
  out.push('# HELP ekg_agent_dropped_total Samples dropped, by reason.', '# TYPE ekg_agent_dropped_total counter');
  out.push(`ekg_agent_dropped_total{reason="cardinality"} ${agent.aggregator.droppedCardinality}`);
  out.push(`ekg_agent_dropped_total{reason="type_clash"} ${agent.aggregator.droppedTypeClash}`);
  out.push(`ekg_agent_dropped_total{reason="set_members"} ${agent.aggregator.droppedSetMembers}`);
  one('ekg_agent_statsd_connections_open', 'gauge', 'StatsD TCP and Unix socket connections open.', s.statsd_connections_open);
  one(
    'ekg_agent_statsd_connections_refused_total',
    'counter',
    'StatsD connections closed at once, statsd-max-connections being open.',
    s.statsd_connections_refused,
  );
  one(
    'ekg_agent_statsd_connections_idle_closed_total',
    'counter',
    'StatsD connections closed after statsd-idle-timeout without a byte.',
    s.statsd_connections_idle_closed,
  );
  one('ekg_agent_flush_duration_seconds', 'gauge', 'Wall time of the last flush, sockets read between its chunks.', s.last_flush_ms / 1000);
  one(
    'ekg_agent_flush_busy_seconds',
    'gauge',
    'Of the last flush, the time spent summarising and handing off.',
    s.last_flush_busy_ms / 1000,
  );
  one('ekg_agent_flushes_total', 'counter', 'Windows flushed.', s.flushes);
  if (agent.exporters.length > 0) {
    const per: Array<[string, string, string, (st: (typeof agent.exporters)[number]['status']) => number]> = [
      ['ekg_agent_exporter_queued_batches', 'gauge', 'Batches waiting in the exporter spool.', (st) => st.queued],
      ['ekg_agent_exporter_queued_bytes', 'gauge', 'Bytes waiting in the exporter spool.', (st) => st.queued_bytes],
      ['ekg_agent_exporter_batches_sent_total', 'counter', 'Batches the target took.', (st) => st.batches_sent],
      ['ekg_agent_exporter_samples_sent_total', 'counter', 'Samples the target took.', (st) => st.samples_sent],
      ['ekg_agent_exporter_failures_total', 'counter', 'Attempts that failed (each retry counts).', (st) => st.failures],
      ['ekg_agent_exporter_batches_rejected_total', 'counter', 'Batches refused as malformed and set aside.', (st) => st.batches_rejected],
      ['ekg_agent_exporter_batches_dropped_total', 'counter', 'Batches pushed out of a full spool.', (st) => st.batches_dropped],
      [
        'ekg_agent_exporter_labels_dropped_total',
        'counter',
        'Tags renamed or left out so no label repeats.',
        (st) => st.labels_dropped ?? 0,
      ],
      [
        'ekg_agent_exporter_values_dropped_total',
        'counter',
        'Values left out: non-finite, duplicate or kind clash.',
        (st) => st.values_dropped ?? 0,
      ],
    ];
    for (const [name, type, help, get] of per) {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const e of agent.exporters) out.push(`${name}{exporter="${esc(e.name)}"} ${get(e.status)}`);
    }
  }
  if (agent.alerts) out.push(...agent.alerts.metricLines());

  const w = agent.last;
  return `${out.join('\n')}\n${w ? windowText(w) : ''}`;
}

/**
 * The last window's series in Prometheus text, rendered once per window: with 100,000 series it is 5 MB
 * and about a second of the loop, which a client asking for /metrics in a loop would otherwise pay on
 * every request. Keyed by the window itself, so it is freed with it.
 */
const rendered = new WeakMap<FlushResult, string>();
function windowText(w: FlushResult): string {
  const hit = rendered.get(w);
  if (hit !== undefined) return hit;
  const out: string[] = [];
  const families = new Map<string, { type: string; lines: string[] }>();
  const fam = (name: string, type: string) => {
    let f = families.get(name);
    if (!f) {
      f = { type, lines: [] };
      families.set(name, f);
    }
    return f;
  };
  for (const ser of w.series) {
    const base = metricName(ser.name);
    if (ser.kind === 'counter') {
      fam(`${base}_total`, 'counter').lines.push(`${base}_total${labels(ser.tags)} ${num(ser.total ?? ser.value)}`);
    } else if (ser.kind === 'gauge' || ser.kind === 'set') {
      fam(base, 'gauge').lines.push(`${base}${labels(ser.tags)} ${num(ser.value)}`);
    } else if (ser.quantiles) {
      const f = fam(base, 'summary');
      for (const { name, q } of QUANTILES) f.lines.push(`${base}${labels(ser.tags, `quantile="${q}"`)} ${num(ser.quantiles[name])}`);
      f.lines.push(
        `${base}_sum${labels(ser.tags)} ${num(ser.totalSum ?? ser.sum)}`,
        `${base}_count${labels(ser.tags)} ${num(ser.total ?? ser.count)}`,
      );
    }
  }
  for (const [name, f] of families) out.push(`# TYPE ${name} ${f.type}`, ...f.lines);
  const text = out.length ? `${out.join('\n')}\n` : '';
  rendered.set(w, text);
  return text;
}

/** A value as Prometheus text spells it: `+Inf`, `-Inf` and `NaN` for what JavaScript calls Infinity and NaN. */
function num(v: number | undefined): string {
  if (v === undefined || Number.isFinite(v)) return String(v);
  return v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN';
}
