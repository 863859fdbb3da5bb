import type { Stats, WindowInfo } from '../types.js';
import type { HttpSample } from '../vitals/http.js';
import type { RuntimeSample } from '../vitals/runtime.js';
import type { Stall } from '../watchdog/watchdog.js';

/** Everything one window says, built once and rendered to each format from here. */
export interface Snapshot {
  window: WindowInfo;
  runtime: RuntimeSample;
  /** undefined when the http vital is off */
  http: HttpSample | undefined;
  /** custom vitals, in registration order */
  vitals: Array<{ name: string; stats?: Stats; error?: string }>;
  /** the last verdict of each vital with a check, when one has run */
  checks: Record<string, boolean>;
  /** constant labels (service, …) added to every Prometheus sample */
  labels: Record<string, string>;
  /** render prom-client's `_total` gauges (see EkgOptions.promClientTotals) */
  promClientTotals: boolean;
  /** what each push transport has done so far */
  reporters: Array<{ name: string; stats: TransportStats }>;
  /** the watchdog's stalls since start, when it runs */
  stalls?: { count: number; totalMs: number; buckets: number[]; last: Stall[] };
}

/** What a transport has done since start: visible under `ekg.reporters` in /stats and in /metrics. */
export interface TransportStats {
  /** windows delivered */
  sent: number;
  /** failed sends (each attempt of a retry counts) */
  errors: number;
  /** windows given up on: not sent because the target stayed away, or replaced by a newer one */
  dropped: number;
  /** bytes handed to the network */
  bytes: number;
  /** µs of main-thread time spent in this transport's send() (flatten, format, pack, hand-off), since start */
  cpuUs: number;
  lastError?: string;
  lastErrorAt?: number;
  lastSentAt?: number;
}
