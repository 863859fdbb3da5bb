import type { Health } from '../core.js';
import type { CheckResult, Lifecycle } from '../types.js';
import { reason } from '../vitals/runner.js';
import type { VitalSet } from '../vitals/set.js';
import type { Pressure } from './pressure.js';

const OK_HEALTH_CHECKS: Record<string, CheckResult> = Object.freeze({}) as Record<string, CheckResult>;
/** Ready with no checks: one verdict, not an object per probe. */
const READY_OK: Health = Object.freeze({ ok: true, state: 'ready', checks: OK_HEALTH_CHECKS });

/** What the verdict asks of the custom vitals. */
export type Checks = Pick<VitalSet, 'hasChecks' | 'check' | 'fatalFailure'>;

/**
 * An instance's health: its lifecycle state, the service's own readiness mark, and the verdict
 * /heartbeat, /ready and /live answer from — the checks run concurrently, concurrent callers share
 * one run, and a verdict is reused for `checkCache` ms. Whoever reads the verdict without running a
 * check (the side server's prebuilt answers) subscribes to `onChange`.
 */
export class HealthState {
  private current: Lifecycle = 'starting';
  private notReady: string | undefined;
  private cache: { at: number; value: Health } | undefined;
  private pending: Promise<Health> | undefined;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly checks: Checks,
    private readonly pressure: Pressure | undefined,
    /** ms a check verdict is reused */
    private readonly checkCache: number,
  ) {}

  get state(): Lifecycle {
    return this.current;
  }

  /** Moves the lifecycle on (starting → ready → draining → closed); the cached verdict no longer holds. */
  set(state: Lifecycle): void {
    this.current = state;
    this.cache = undefined;
    this.changed();
  }

  /** Marks the service not ready (with a reason /ready shows) or ready again. */
  setReady(ready: boolean, why = 'marked not ready'): void {
    this.notReady = ready ? undefined : why;
    this.cache = undefined;
    this.changed();
  }

  /** The set of checks changed (a vital added): the cached verdict no longer speaks for every vital. */
  invalidate(): void {
    this.cache = undefined;
    this.changed();
  }

  /** The verdict; synchronous when no check must run. Never rejects. */
  health(): Health | Promise<Health> {
    const state = this.current;
    if (state !== 'ready') {
      const detail = state === 'starting' ? 'starting' : 'shutting down';
      return { ok: false, state, checks: { ekg: { ok: false, detail } } };
    }
    if (this.notReady !== undefined) return { ok: false, state, checks: { ekg: { ok: false, detail: this.notReady } } };
    if (this.pressure?.reason !== undefined) return { ok: false, state, checks: { pressure: { ok: false, detail: this.pressure.reason } } };
    if (!this.checks.hasChecks()) return READY_OK;
    const now = Date.now();
    if (this.cache && now - this.cache.at < this.checkCache) return this.cache.value;
    if (this.pending) return this.pending;
    // checkOne never rejects; should ekg's own code fail here anyway, the probe gets a failed verdict
    // and the next probe runs the checks again: health state is never left pending
    const p = this.checks.check().then(
      ({ ok, checks }) => {
        const value: Health = { ok, state: this.current, checks };
        this.cache = { at: Date.now(), value };
        this.changed();
        this.pending = undefined;
        return value;
      },
      (err: unknown): Health => {
        this.pending = undefined;
        return { ok: false, state: this.current, checks: { ekg: { ok: false, detail: `checks could not run: ${reason(err)}` } } };
      },
    );
    this.pending = p;
    return p;
  }

  /**
   * The verdict as it stands, without running a check: what /heartbeat would answer now, and until
   * when (`until`, epoch ms) when it is a cached check result; undefined when a check must run.
   */
  peek(): { value: Health; until?: number } | undefined {
    if (this.current !== 'ready' || this.notReady !== undefined || this.pressure?.reason !== undefined)
      return { value: this.health() as Health };
    if (!this.checks.hasChecks()) return { value: READY_OK };
    const c = this.cache;
    return c ? { value: c.value, until: c.at + this.checkCache } : undefined;
  }

  /** /live: false once shutdown is past its drain, or when a vital marked `fatal` fails its check. */
  live(): { ok: boolean; detail?: string } {
    if (this.current === 'closed') return { ok: false, detail: 'shut down' };
    const fatal = this.checks.fatalFailure();
    if (fatal !== undefined) return { ok: false, detail: `fatal vital "${fatal}" failed` };
    return { ok: true };
  }

  /** Calls `fn` whenever what `peek()` or `live()` say may have changed. Returns an unsubscribe. */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Tells the listeners the verdict may have changed (a window's pressure, an init failing). */
  changed(): void {
    for (const fn of this.listeners) {
      try {
        fn();
      } catch {
        // a listener's fault stays with the listener
      }
    }
  }
}
