import type { Sampler, Window } from '../sampler.js';
import type { Snapshot } from '../window/snapshot.js';

/**
 * Turns the sampler's windows into an instance's snapshots: on each window the custom vitals are
 * asked, the snapshot is built (`build`) and kept as the last one, and a closed window goes to
 * `publish` (the reporters) and to every onWindow listener. Before the first window closes, a
 * provisional one is read on demand (custom vitals asked once, reused until the first close).
 */
export class Collector {
  private snap: Snapshot | undefined;
  private collecting: Promise<void> | undefined;
  private readonly listeners = new Set<(s: Snapshot) => void>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly sampler: Sampler,
    /** the custom vitals' stats of this window */
    private readonly vitals: () => Promise<Snapshot['vitals']>,
    private readonly build: (w: Window, vitals: Snapshot['vitals']) => Snapshot,
    /** a closed window, before the listeners see it */
    private readonly publish: (s: Snapshot) => void,
    /** true once the instance is closed: nothing is collected or published after */
    private readonly closed: () => boolean,
    /** each window as the sampler closes it, before the vitals are asked (pressure) */
    onTick: (w: Window) => void,
  ) {
    this.unsubscribe = sampler.onWindow((w) => {
      if (this.closed()) return;
      onTick(w);
      this.start(w);
    });
  }

  private start(w: Window): Promise<void> {
    const p = this.collect(w).finally(() => {
      if (this.collecting === p) this.collecting = undefined;
    });
    this.collecting = p;
    return p;
  }

  private async collect(w: Window): Promise<void> {
    const snap = this.build(w, await this.vitals());
    this.snap = snap;
    // the provisional window (seq 0) is only for readers; reporters send closed windows
    if (w.info.seq > 0 && !this.closed()) {
      this.publish(snap);
      for (const fn of this.listeners) {
        try {
          fn(snap);
        } catch {
          // a listener's fault stays with the listener
        }
      }
    }
  }

  /** Calls `fn` with every closed window's snapshot (after custom vitals). Returns an unsubscribe. */
  onWindow(fn: (s: Snapshot) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The last closed window, or a provisional one before the first closes. */
  async snapshot(): Promise<Snapshot> {
    if (this.snap) return this.snap;
    if (this.collecting) {
      await this.collecting;
      if (this.snap) return this.snap;
    }
    await this.start(this.sampler.current());
    return this.snap as unknown as Snapshot;
  }

  /** Sync access to the last snapshot when there is one. */
  peek(): Snapshot | undefined {
    return this.snap;
  }

  /** Closes the current window now instead of waiting for the timer. */
  async flush(): Promise<Snapshot> {
    const w = this.sampler.tick();
    // every instance collects on the window event; wait for ours
    await this.collecting;
    return this.snap ?? this.build(w, []);
  }

  /** Stops listening to the sampler (the sampler itself is released by its owner). */
  stop(): void {
    this.unsubscribe();
  }
}
