import { describe } from '../errors.js';
import type { Measurement } from '../formats/measurements.js';
import { recover, warn } from '../log.js';
import type { Snapshot, TransportStats } from '../window/snapshot.js';

export type { TransportStats };

/** One window, as every transport reads it. `measurements` is computed once and shared. */
export interface WindowPayload {
  snapshot: Snapshot;
  measurements: () => readonly Measurement[];
}

export interface Transport {
  /** e.g. `statsd udp://127.0.0.1:8125`; a label in /stats and /metrics */
  readonly name: string;
  readonly stats: TransportStats;
  /** Never throws, never waits: delivery happens in the background. */
  send(w: WindowPayload): void;
  /** An event (a stall), where the wire has a form for it (DogStatsD `_e`); never throws. */
  event?(title: string, text: string): void;
  close(): Promise<void>;
}

/** Called on every counted success or failure (the watchdog's thread posts the counters then). */
export const counted: { hook: (() => void) | undefined } = { hook: undefined };

/**
 * Error accounting shared by the transports: every failure is counted, but stderr hears of an
 * outage once, when it starts; a success re-arms the line for the next outage.
 */
export class Outage {
  private down = false;
  constructor(
    private readonly name: string,
    private readonly stats: TransportStats,
  ) {}

  fail(err: unknown, what = 'send failed'): void {
    this.stats.errors++;
    this.stats.lastError = `${what}: ${describe(err)}`;
    this.stats.lastErrorAt = Date.now();
    counted.hook?.();
    if (!this.down) {
      this.down = true;
      warn(
        'EKG_ERR_REPORTER',
        `${this.name}: ${this.stats.lastError}; retrying quietly, counted under ekg.reporters in /stats`,
        `outage:${this.name}`,
      );
    }
  }

  ok(bytes: number): void {
    this.stats.sent++;
    this.stats.bytes += bytes;
    this.stats.lastSentAt = Date.now();
    counted.hook?.();
    if (this.down) {
      this.down = false;
      recover(`outage:${this.name}`);
    }
  }
}

export function newStats(): TransportStats {
  return { sent: 0, errors: 0, dropped: 0, bytes: 0, cpuUs: 0 };
}
