/** A nested object of numbers; strings and booleans are allowed as information. */
export interface Stats {
  [key: string]: StatValue;
}
export type StatValue = number | string | boolean | null | Stats;

/** A health verdict. `detail` is shown in /heartbeat's JSON and /ready's body. */
export interface Verdict {
  ok: boolean;
  detail?: string;
}

/** A pluggable source of stats and of a health verdict. See docs/api.md#vitals. */
export interface Vital {
  /** Key in /stats, tag in exports: letters, digits and `_`, starting with a letter. */
  name: string;
  /** Once, at start. A failure marks the vital failed. */
  init?(): void | Promise<void>;
  /** Called once per window; the result is what every reader sees until the next window. */
  stats?(): Stats | Promise<Stats>;
  /** Called by /heartbeat and /ready (coalesced, cached for `checkCache`). */
  check?(): Verdict | boolean | Promise<Verdict | boolean>;
  close?(): void | Promise<void>;
  /** Per-call timeout in ms (default: the ekg `timeout`, 5 s). */
  timeout?: number;
  /** When its check fails, /live fails too (the process cannot recover by itself). */
  fatal?: boolean;
}

export interface VitalResult {
  stats?: Stats;
  error?: string;
}

export interface CheckResult {
  ok: boolean;
  detail?: string;
}

/** The state of one closed window, shared by every reader. */
export interface WindowInfo {
  /** epoch ms */
  start: number;
  end: number;
  /** seconds */
  seconds: number;
  /** sequence number, 0 for the provisional window served before the first one closes */
  seq: number;
}

export type Lifecycle = 'starting' | 'ready' | 'draining' | 'closed';
