/**
 * The contract between the core (an Ekg instance: vitals, windows, health, shutdown) and what serves
 * it over HTTP (router, adapters, side server) or to a cluster primary. Those modules depend on this
 * interface, never on ekg.ts; ekg.ts implements it and wires them. Nothing here imports ekg.ts.
 */
import type { Server } from 'node:http';
import type { Pressure } from './health/pressure.js';
import type { CheckResult, Lifecycle, Stats } from './types.js';
import type { Watchdog } from './watchdog/watchdog.js';
import type { Snapshot } from './window/snapshot.js';
import type { SelfState } from './window/stats.js';

/** The health verdict /heartbeat and /ready answer from. */
export interface Health {
  ok: boolean;
  state: Lifecycle;
  checks: Record<string, CheckResult>;
}

/** The resolved options the HTTP side reads. */
export interface CoreOptions {
  /** the instance prefix, normalized (`/ops`, or `''` for the root) */
  readonly prefix: string;
  readonly token: string | undefined;
  /** ms a cluster primary waits for each worker */
  readonly clusterTimeout: number;
}

/** What the router, the adapters, the side server and the cluster need from an ekg instance. */
export interface Core {
  readonly options: CoreOptions;
  /** the stall watchdog, when on */
  readonly watchdog: Watchdog | undefined;
  /** load-shedding thresholds, when set */
  readonly pressure: Pressure | undefined;
  /** The side server's refusals, when one runs (set by listen()). */
  sideServerCounts: (() => { refused: number; dropped: number }) | undefined;
  /** The last closed window (a provisional one before the first closes). */
  snapshot(): Promise<Snapshot>;
  /** Sync access to the last snapshot when there is one. */
  peek(): Snapshot | undefined;
  /** The health verdict; synchronous when no check must run. */
  health(): Health | Promise<Health>;
  /** The same verdict as the probes share it: frozen when ready with no checks (one object for every probe). */
  sharedHealth(): Health | Promise<Health>;
  /** The verdict as it stands without running a check; undefined when one must run. */
  peekHealth(): { value: Health; until?: number } | undefined;
  /** /live */
  live(): { ok: boolean; detail?: string };
  /** What /stats says about ekg itself (plain data, posted with each window to the watchdog's thread). */
  selfState(): SelfState;
  /** The /stats document, nested, one key per vital. */
  statsObject(s: Snapshot): { stats: Stats; failed: boolean };
  /** The /stats body, rendered once per window. */
  statsText(s: Snapshot): { body: string; failed: boolean };
  /** Prometheus text (or OpenMetrics), rendered once per window. */
  metricsText(s: Snapshot, openMetrics?: boolean): string;
  /** The same page gzipped, compressed once per window. */
  metricsGzip(s: Snapshot, openMetrics?: boolean): Uint8Array;
  /** Calls `fn` with every closed window's snapshot. Returns an unsubscribe. */
  onWindow(fn: (s: Snapshot) => void): () => void;
  /** Calls `fn` whenever the health verdict may have changed. Returns an unsubscribe. */
  onHealthChange(fn: () => void): () => void;
  /** Registers a server to close gracefully on shutdown. */
  track(server: Server): void;
}
