import { findSourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { internalError, type SideProbes } from '../http/contract.js';
import { warn } from '../log.js';

/** A frame of the main thread's stack, as the watchdog's thread reads it through the inspector. */
export interface Frame {
  fn: string;
  file: string;
  line: number;
  column: number;
}

/** A transport's counters as the watchdog's thread posts them (reporters/transport.ts's TransportStats). */
export type ReporterCounts = { name: string; stats: Record<string, number | string | undefined> };

export interface WatchdogOptions {
  /** ms without a completed event-loop turn that make a stall (default 1000) */
  stallThreshold?: number;
  /** pause the main thread through the inspector to read where it is stuck (default true) */
  stack?: boolean;
  /** stall records kept for /stats (default 20) */
  keep?: number;
  /** ms of stall after which the side server's /live answers 503 (default 10000) */
  liveFailAfter?: number;
}

/** One answer of the side server, as ekg's router gives it. */
export interface SideReply {
  status: number;
  headers: Record<string, string>;
  body: string | Uint8Array;
}

export interface Stall {
  /** epoch ms of the last turn before the stall */
  start: number;
  /** ms */
  duration: number;
  stack?: Frame[];
  /** why there is no stack (the inspector busy or unavailable) */
  stackError?: string;
}

/**
 * How often the main thread writes its beat and the watchdog's thread reads it: a quarter of the
 * threshold, at most 250 ms (4 wake-ups a second per thread at the default 1 s; each costs a context
 * switch on a busy core). A stall is seen within threshold + one period; a probe's 503 needs no period.
 */
export const beatMs = (threshold: number) => Math.max(10, Math.min(250, threshold / 4));

/** Stall-duration histogram bounds, seconds. */
export const STALL_BUCKETS = [1, 2.5, 5, 10, 30, 60] as const;

/**
 * Watches the event loop from a worker thread. The main thread's only cost is an unref'd timer
 * that writes the time into shared memory; the worker notices when it stops and records the stall.
 */
export class Watchdog {
  readonly stalls: Stall[] = [];
  count = 0;
  totalMs = 0;
  readonly buckets = new Array<number>(STALL_BUCKETS.length + 1).fill(0);
  lastCaptureMs: number | undefined;
  /** the side server's port once it listens in this thread (useful with port 0) */
  sidePort: number | undefined;
  private worker: Worker | undefined;
  private shared: Float64Array | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly threshold: number;

  constructor(private readonly o: WatchdogOptions = {}) {
    this.threshold = o.stallThreshold ?? 1000;
  }

  start(): void {
    if (this.worker) return;
    // [0] the main thread's beat; [1], [2] the side server's refused requests and dropped connections
    const sab = new SharedArrayBuffer(24);
    const beat = new Float64Array(sab);
    this.shared = beat;
    beat[0] = Date.now();
    this.timer = setInterval(() => {
      beat[0] = Date.now();
    }, beatMs(this.threshold));
    this.timer.unref();
    const w = new Worker(new URL('./worker.js', import.meta.url), {
      // marked, so that ekg-vitals/register (preloaded into every thread) leaves this one alone
      workerData: {
        sab,
        threshold: this.threshold,
        stack: this.o.stack !== false,
        liveFailAfter: this.o.liveFailAfter ?? 10_000,
        ekgWatchdog: true,
      },
      execArgv: [],
    });
    w.on(
      'message',
      (
        m: { type: string } & Stall & {
            ms?: number;
            id?: number;
            method?: string;
            url?: string;
            headers?: Record<string, string>;
            port?: number;
            message?: string;
          },
      ) => {
        if (m.type === 'captured') this.lastCaptureMs = m.ms;
        if (m.type === 'reporters') {
          this.reporters = (m as unknown as { reporters: Watchdog['reporters'] }).reporters;
          return;
        }
        if (m.type === 'report-closed') {
          this.reportClosed?.();
          return;
        }
        if (m.type === 'req') return this.answer(m.id as number, m.method as string, m.url as string, m.headers ?? {});
        if (m.type === 'listening' || m.type === 'listen-error') {
          if (m.type === 'listening') this.sidePort = m.port;
          this.listening?.(m.type === 'listening' ? (m.port as number) : new Error(m.message));
          this.listening = undefined;
          return;
        }
        if (m.type !== 'stall') return;
        const s: Stall = {
          start: m.start,
          duration: m.duration,
          ...(m.stack ? { stack: m.stack.map(mapped) } : {}),
          ...(m.stackError ? { stackError: m.stackError } : {}),
        };
        this.count++;
        this.totalMs += s.duration;
        let b = STALL_BUCKETS.findIndex((x) => s.duration / 1000 <= x);
        if (b === -1) b = STALL_BUCKETS.length;
        this.buckets[b] = (this.buckets[b] as number) + 1;
        this.stalls.push(s);
        if (this.stalls.length > (this.o.keep ?? 20)) this.stalls.shift();
      },
    );
    w.on('error', (err) => {
      warn('EKG_ERR_WATCHDOG', `the watchdog stopped: ${err.message}; stalls are no longer detected`);
      this.stop();
    });
    // after the listeners: adding one refs the worker's port again
    w.unref();
    this.worker = w;
  }

  private handle:
    | ((method: string, url: string, headers: Record<string, string>) => SideReply | Promise<SideReply> | undefined)
    | undefined;
  private listening: ((r: number | Error) => void) | undefined;

  /**
   * Runs the side server in the watchdog's thread. It answers from what the main thread posts — each
   * window's pages and each change of the probes' replies — with no round trip; only what must run
   * live (a check past its cache, a cluster primary's gather, anything before the first post) comes
   * to `handle` on the main thread. While the loop is stalled the thread answers itself: /ready and
   * /heartbeat 503 at once, /live 503 after `liveFailAfter`, /stats and /metrics from the last
   * window. Resolves with the port.
   */
  serve(
    o: { port: number; host: string; prefix: string; token?: string },
    handle: (method: string, url: string, headers: Record<string, string>) => SideReply | Promise<SideReply> | undefined,
  ): Promise<number> {
    const w = this.worker;
    if (!w) return Promise.reject(new Error('the watchdog is not running'));
    this.handle = handle;
    return new Promise((resolve, reject) => {
      this.listening = (r) => (typeof r === 'number' ? resolve(r) : reject(r));
      w.postMessage({ type: 'serve', ...o });
    });
  }

  /** The side server's counters, written by its thread into shared memory: read without a message. */
  sideCounts(): { refused: number; dropped: number } {
    return { refused: this.shared?.[1] ?? 0, dropped: this.shared?.[2] ?? 0 };
  }

  private posted: { snap: object; live: boolean } | undefined;

  /**
   * Each closed window, raw, for the thread to build /stats, /metrics and the reporters' payloads from
   * (the main thread renders nothing for them): posted once per window however many readers there (the
   * side server, the reporters), and again when only `live` changed. `live`: the side server must ask
   * the main thread for /stats and /metrics (a cluster primary gathers its workers per request).
   * `snap` is the window's Snapshot and `self` its SelfState (window/: typed by the callers, as
   * window/snapshot.ts imports this module's Stall).
   */
  snapshot(snap: object, self: object, live = false): void {
    if (!this.worker || (this.posted?.snap === snap && this.posted.live === live)) return;
    this.posted = { snap, live };
    try {
      this.worker.postMessage({ type: 'snapshot', snap, self, live });
    } catch {
      // not cloneable (vitals' stats are sanitized to plain data, so this is ekg's own fault): the
      // thread keeps the previous window, and the host app never sees the error
    }
  }

  /** The probes' replies, on every change of the health state: served without asking while they hold. */
  probes(probes: SideProbes): void {
    this.worker?.postMessage({ type: 'probes', probes });
  }

  /** The transports' counters in the watchdog's thread, as it last posted them. */
  reporters: ReporterCounts[] = [];
  private reportClosed: (() => void) | undefined;

  /** Starts reporting from the watchdog's thread (see reporters/remote.ts). */
  report(options: object, who: object): void {
    this.worker?.postMessage({ type: 'report', options, who });
  }

  /**
   * Closes the thread's reporters once their last window is sent (each transport bounds its own wait);
   * the thread is ref'd meanwhile, so a process at its end waits for those sends and no longer.
   */
  closeReporting(): Promise<void> {
    const w = this.worker;
    if (!w) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        this.reportClosed = undefined;
        w.off('exit', done);
        w.unref();
        resolve();
      };
      this.reportClosed = done;
      w.on('exit', done);
      w.ref();
      w.postMessage({ type: 'report-close' });
    });
  }

  private answer(id: number, method: string, url: string, headers: Record<string, string>): void {
    const send = (reply: SideReply | undefined) => this.worker?.postMessage({ type: 'res', id, reply });
    try {
      const r = this.handle?.(method, url, headers);
      if (r instanceof Promise) r.then(send, (err: unknown) => send(internalError(err)));
      else send(r);
    } catch (err) {
      send(internalError(err));
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    void this.worker?.terminate();
    this.worker = undefined;
  }
}

/**
 * A frame in the app's own sources when it runs with source maps (`--enable-source-maps`, or Node's
 * source-map support on): the TypeScript file and line rather than the compiled JavaScript.
 */
function mapped(f: Frame): Frame {
  if (!f.file || f.file.startsWith('node:')) return f;
  try {
    const map = findSourceMap(f.file) ?? (f.file.startsWith('file:') ? findSourceMap(fileURLToPath(f.file)) : undefined);
    const e = map?.findEntry(f.line - 1, f.column - 1) as
      | { originalSource?: string; originalLine?: number; originalColumn?: number }
      | undefined;
    if (!e?.originalSource || e.originalLine === undefined) return f;
    return { fn: f.fn, file: e.originalSource, line: e.originalLine + 1, column: (e.originalColumn ?? 0) + 1 };
  } catch {
    return f;
  }
}
