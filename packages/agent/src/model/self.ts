import type { BadReason } from '../ingest/statsd-parse.js';

/** The agent's own counters since start: `/api/v1/self` and `ekg_agent_*` in `/metrics`. */
export interface SelfStats {
  packets_received: number;
  bytes_received: number;
  metrics_received: number;
  bad_lines: number;
  bad_lines_by_reason: Partial<Record<BadReason, number>>;
  last_bad_lines: string[];
  events_received: number;
  service_checks_received: number;
  pushes_received: number;
  pushes_rejected: number;
  /** HTTP requests refused for a missing or wrong token (401) */
  unauthorized: number;
  series_active: number;
  dropped_cardinality: number;
  dropped_type_clash: number;
  /** set members refused by the per-set caps (members or bytes per window) */
  dropped_set_members: number;
  /** interval samples of a counter merged into its latest one past `MAX_SPREADS` per series */
  spreads_merged: number;
  /** StatsD TCP and Unix socket connections open now */
  statsd_connections_open: number;
  /** connections closed at once because `statsd-max-connections` were open */
  statsd_connections_refused: number;
  /** connections closed after `statsd-idle-timeout` without a byte */
  statsd_connections_idle_closed: number;
  /** windows the store still held in memory (it could not write them) when the agent stopped */
  windows_lost_at_exit: number;
  flushes: number;
  /** wall time of the last flush, from the window's close to the last sink's hand-off */
  last_flush_ms: number;
  /** of which the agent was busy summarising and handing off (the rest it spent reading sockets) */
  last_flush_busy_ms: number;
  /**
   * the last flush by phase, wall against CPU (user + system, every thread) and the GC pauses that began in it:
   * `window` from the timer to the window's columns (summarising chunks and the sockets read between them),
   * `sinks` the hand-off to every sink (the store's write included) and the release
   */
  last_flush_phases?: {
    window_ms: number;
    window_cpu_ms: number;
    sinks_ms: number;
    sinks_cpu_ms: number;
    gc_ms: number;
    gc_count: number;
  };
  last_flush_series: number;
  sink_errors: number;
  started_at: number;
  scrapes: number;
  /** the reason of each scrape target's last failure */
  scrape_failures: Record<string, string>;
}
