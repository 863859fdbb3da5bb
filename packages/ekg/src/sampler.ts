import { performance } from 'node:perf_hooks';
import type { WindowInfo } from './types.js';
import { HttpMonitor, type HttpSample } from './vitals/http.js';
import { RuntimeMonitor, type RuntimeSample } from './vitals/runtime.js';

export interface Window {
  info: WindowInfo;
  runtime: RuntimeSample;
  http: HttpSample;
}

type Listener = (w: Window) => void;

const TIMEOUT_MAX = 2 ** 31 - 1;

/**
 * One sampler per process, shared by every ekg instance in it (a second `createEkg()` or
 * `ekg-vitals/register` beside app code does not double the work or split the windows). It ticks on a
 * single unref'd timer; each tick closes a window that every reader then shares.
 */
export class Sampler {
  private static shared: Sampler | undefined;

  /** Takes a reference on the process sampler, starting it on first use. */
  static acquire(interval: number): Sampler {
    let s = Sampler.shared;
    if (!s) {
      s = new Sampler(interval);
      Sampler.shared = s;
    }
    s.refs++;
    if (s.refs === 1) s.start();
    return s;
  }

  readonly interval: number;
  readonly runtime = new RuntimeMonitor();
  readonly http = new HttpMonitor();
  last: Window | undefined;
  /** µs the last tick took on the main thread */
  lastTickCost = 0;
  private refs = 0;
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private expected = 0;
  private windowStart = Date.now();
  private readonly listeners = new Set<Listener>();

  private constructor(interval: number) {
    this.interval = interval;
  }

  onWindow(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  release(): void {
    if (this.refs === 0) return;
    this.refs--;
    if (this.refs === 0) {
      this.stop();
      if (Sampler.shared === this) Sampler.shared = undefined;
    }
  }

  /** The last closed window, or a provisional one (seq 0) read without consuming anything. */
  current(): Window {
    return this.last ?? this.read(false);
  }

  /** Closes the current window now (tests and shutdown use it; the timer does the same). */
  tick(): Window {
    const t0 = performance.now();
    const w = this.read(true);
    this.last = w;
    this.lastTickCost = Math.round((performance.now() - t0) * 1000);
    for (const fn of this.listeners) {
      try {
        fn(w);
      } catch {
        // a listener's fault stays with that listener
      }
    }
    return w;
  }

  private read(reset: boolean): Window {
    const end = Date.now();
    const start = this.windowStart;
    const ms = Math.max(1, end - start);
    if (reset) {
      this.windowStart = end;
      this.seq++;
    }
    return {
      info: { start, end, seconds: ms / 1000, seq: reset ? this.seq : 0 },
      runtime: this.runtime.sample(ms, reset),
      http: this.http.sample(ms, reset),
    };
  }

  private start(): void {
    this.runtime.start();
    this.http.start();
    this.windowStart = Date.now();
    this.schedule(performance.now() + this.interval);
  }

  private stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.runtime.stop();
    this.http.stop();
  }

  private schedule(at: number): void {
    this.expected = at;
    // setTimeout takes at most 2^31-1 ms (~24.8 days); past that Node fires after 1 ms, every 1 ms
    this.timer = setTimeout(this.onTimer, Math.min(TIMEOUT_MAX, Math.max(0, at - performance.now())));
    this.timer.unref();
  }

  private readonly onTimer = (): void => {
    const now = performance.now();
    // a window longer than setTimeout can wait: wait again for the rest
    if (this.expected - now > 1) return this.schedule(this.expected);
    // How late our own timer fired: the event-loop lag prom-client measures with setImmediate.
    this.runtime.setLag(now - this.expected);
    let next = this.expected + this.interval;
    if (next <= now) next = now + this.interval; // the loop was blocked past a whole window
    this.tick();
    if (this.refs > 0) this.schedule(next);
  };
}
