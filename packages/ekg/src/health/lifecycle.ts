import type { Server } from 'node:http';
import { warn } from '../log.js';
import { settle } from '../vitals/runner.js';
import { closeServers } from './shutdown.js';
import type { HealthState } from './state.js';

export interface LifecycleOptions {
  /** signals that start the graceful shutdown */
  readonly signals: readonly NodeJS.Signals[];
  /** ms between failing /ready and closing the servers */
  readonly drainDelay: number;
  /** ms in-flight requests get before their connections are cut */
  readonly shutdownTimeout: number;
  /** the app's onShutdown hooks, each bounded by `timeout` */
  readonly hooks: readonly (() => unknown)[];
  readonly timeout: number;
}

/**
 * An instance's way out: the signal handlers, the graceful shutdown (fail /ready, drain, close the
 * servers, run the hooks, stop), close() for ekg alone, and the end of a short job (when the loop runs
 * dry the open window still goes out). `teardown` stops ekg's own parts; nothing here keeps a process
 * alive longer than the drain and the bounded waits.
 */
export class Lifecycle {
  private closing: Promise<void> | undefined;
  private readonly signalHandlers = new Map<NodeJS.Signals, () => void>();
  private readonly servers = new Set<Server>();
  private drainTimer: NodeJS.Timeout | undefined;
  private onBeforeExit: (() => void) | undefined;

  constructor(
    private readonly o: LifecycleOptions,
    private readonly health: HealthState,
    /** the servers ekg saw requests on, closed with the tracked ones */
    private readonly seen: () => Iterable<Server>,
    /** stops ekg's own parts (the final window, reporters, watchdog, sampler, vitals) */
    private readonly teardown: () => Promise<void>,
  ) {
    for (const sig of o.signals) {
      const handler = () => {
        this.shutdown(sig).catch(() => {});
      };
      this.signalHandlers.set(sig, handler);
      process.on(sig, handler);
    }
  }

  /** Registers a server to close gracefully on shutdown. */
  track(server: Server): void {
    this.servers.add(server);
  }

  /**
   * A job that ends before its first window closes (a 3 s cron job on 10 s windows) still reports: when
   * the loop runs dry, ekg is closed once (its open window sent and waited for). Idempotent.
   */
  closeWhenLoopEnds(): void {
    if (this.onBeforeExit) return;
    this.onBeforeExit = () => {
      if (this.closing || this.health.state === 'closed') return;
      void this.close();
    };
    process.once('beforeExit', this.onBeforeExit);
  }

  /**
   * The graceful shutdown: /ready and /heartbeat answer 503 at once; after `drainDelay` the
   * servers stop accepting, in-flight requests finish (or are cut after `shutdownTimeout`), hooks
   * run, ekg stops. When ekg took the signal and nobody else listens for it, the signal is raised
   * again so the process ends as it would have without ekg.
   */
  shutdown(signal?: NodeJS.Signals): Promise<void> {
    if (this.closing) return this.closing;
    this.health.set('draining');
    this.closing = (async () => {
      if (this.o.drainDelay > 0) {
        await new Promise<void>((r) => {
          this.drainTimer = setTimeout(r, this.o.drainDelay);
          this.drainTimer.unref();
        });
      }
      const servers = new Set<Server>(this.servers);
      for (const srv of this.seen()) servers.add(srv);
      await closeServers(servers, this.o.shutdownTimeout);
      for (const hook of this.o.hooks) {
        const out = await settle('onShutdown hook', hook, this.o.timeout);
        if (!out.ok) warn('EKG_ERR_SHUTDOWN_HOOK', out.error);
      }
      await this.stop();
      if (signal && process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    })();
    return this.closing;
  }

  /** Stops ekg without touching the app's servers. Safe to call any number of times. */
  close(): Promise<void> {
    if (this.health.state !== 'closed' && !this.closing) {
      this.health.set('draining');
      this.closing = this.stop();
    }
    return this.closing ?? Promise.resolve();
  }

  private async stop(): Promise<void> {
    if (this.health.state === 'closed') return;
    for (const [sig, h] of this.signalHandlers) process.off(sig, h);
    this.signalHandlers.clear();
    if (this.drainTimer) clearTimeout(this.drainTimer);
    if (this.onBeforeExit) process.off('beforeExit', this.onBeforeExit);
    await this.teardown();
    this.health.set('closed');
  }
}
