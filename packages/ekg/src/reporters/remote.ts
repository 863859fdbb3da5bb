import type { Core } from '../core.js';
import type { Watchdog } from '../watchdog/watchdog.js';
import type { Snapshot } from '../window/snapshot.js';
import { identity, type ReportOptions, type TransportStats, transportsFor } from './index.js';
import { newStats } from './transport.js';

/**
 * The reporters, run in the watchdog's thread: the main thread posts each closed window raw (the
 * snapshot and ekg's own state); the /stats document, flattening, formatting (StatsD lines, Heroku
 * periods) and sending happen there, with the same
 * transports and formats as in-thread reporting. The transports' counters come back with the
 * watchdog's next tick, for /stats and /metrics. Stall events go out from that thread itself, while
 * the main thread is still stuck.
 */
export class RemoteReporting {
  /** the transports' names, known here at once: /stats lists each from its first window, zero until counted */
  private readonly names: string[] = [];
  constructor(
    private readonly wd: Watchdog,
    private readonly core: Pick<Core, 'selfState'>,
  ) {}

  /** Validates here (a bad target throws EKG_ERR_BAD_OPTION in the caller), builds there. */
  add(o: ReportOptions): boolean {
    const probe = transportsFor(o);
    for (const t of probe) void t.close().catch(() => {});
    if (probe.length === 0) return false;
    this.names.push(...probe.map((t) => t.name));
    this.wd.report(o, identity());
    return true;
  }

  /** The window as it is: one post, shared with the side server when it runs in the same thread. */
  window(snapshot: Snapshot, _statsOf?: unknown): void {
    this.wd.snapshot(snapshot, this.core.selfState());
  }

  stats(): Array<{ name: string; stats: TransportStats }> {
    const posted = new Map(this.wd.reporters.map((r) => [r.name, r.stats as unknown as TransportStats]));
    return this.names.map((name) => ({ name, stats: { ...(posted.get(name) ?? newStats()) } }));
  }

  close(): Promise<void> {
    return this.wd.closeReporting();
  }
}
