import diagnostics from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { Buckets, type Distribution, Histogram } from '../histogram.js';
import type { Stats } from '../types.js';

/** prom-client's default buckets, so an http_request_duration_seconds panel reads the same. */
export const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

const kStart = Symbol('ekg.start');
const kSeen = Symbol('ekg.server');
const kRes = Symbol('ekg.response');
/** kStart of a response no longer tracked: a number, so the slot keeps one representation (a double) */
const DONE = -1;

interface SocketLike {
  [kRes]?: Tracked | null;
  /** when the response in kRes started (performance.now()) */
  [kStart]?: number;
  on(event: string, fn: (this: SocketLike) => void): unknown;
}

interface Tracked {
  [kStart]?: number;
  statusCode?: number;
  socket?: SocketLike | null;
}

interface ServerLike {
  [kSeen]?: boolean;
  close(cb?: (err?: Error) => void): unknown;
  closeIdleConnections?(): void;
  closeAllConnections?(): void;
  listening?: boolean;
}

export interface HttpSample {
  /** window counts by status class; index 0..4 = 1xx..5xx, 5 = other */
  classes: number[];
  /** cumulative, never reset */
  classesTotal: number[];
  requests: number;
  inFlight: number;
  aborted: number;
  abortedTotal: number;
  duration: Distribution;
  buckets: Buckets;
  windowMs: number;
}

/**
 * The `http` vital's engine. It subscribes to Node's HTTP server diagnostics channels, so every
 * server in the process is measured without the user wrapping anything. Per request it does a
 * clock read and two writes into the connection's slots at start and, at finish, a clock read, a
 * histogram record, a bucket count and one increment (bench/RESULTS.md gives each in ns); aborted
 * responses are found by one 'close' listener per connection. Nothing is added to the response
 * unless it is pipelined behind another; that slot always holds a number (DONE once counted):
 * writing `undefined` into it would turn every response's slot into a boxed value.
 */
export class HttpMonitor {
  private readonly window = new Histogram();
  private readonly buckets = new Buckets(HTTP_BUCKETS);
  private classes = [0, 0, 0, 0, 0, 0];
  /** totals up to the last closed window; the current window's counts are added on read */
  private readonly classesTotal = [0, 0, 0, 0, 0, 0];
  private started = 0;
  private finished = 0;
  private aborted = 0;
  private abortedTotal = 0;
  private active = false;
  /** Servers seen serving requests, for graceful shutdown. */
  readonly servers = new Set<ServerLike>();

  private readonly onStart = (message: unknown): void => {
    const m = message as { response: Tracked; socket?: SocketLike; server?: ServerLike };
    const res = m.response;
    const now = performance.now();
    this.started++;
    const socket = m.socket;
    const held = socket?.[kRes];
    if (socket && held == null) {
      // The connection's slot, not the response: a response is a new object per request, and a property
      // added to it costs a properties array per request (bench/src/instructions.ts counts it); the
      // socket takes its two slots once per connection. The slot is absent only on a connection's first
      // request, which also adds its one 'close' listener: it alone sees aborted responses.
      if (held === undefined) socket.on('close', onSocketClose);
      socket[kRes] = res;
      socket[kStart] = now;
    } else {
      // pipelined behind a response the connection still owes (or no socket): the response keeps its own start
      res[kStart] = now;
    }
    const server = m.server;
    if (server && server[kSeen] !== true) {
      server[kSeen] = true;
      this.servers.add(server);
    }
  };

  private readonly onFinish = (message: unknown): void => {
    const m = message as { response: Tracked; socket?: SocketLike };
    const res = m.response;
    const socket = m.socket;
    let start: number | undefined;
    if (socket && socket[kRes] === res) {
      start = socket[kStart];
      // the connection no longer holds the finished response (and its request) alive until its next one
      socket[kRes] = null;
    } else {
      start = res[kStart];
      // undefined: started before the monitor was; DONE: an ekg endpoint's own response
      if (start === undefined || start === DONE) return;
      res[kStart] = DONE;
    }
    if (start === undefined) return;
    this.finished++;
    const ms = performance.now() - start;
    this.window.record(ms);
    this.buckets.observe(ms / 1000);
    const code = res.statusCode ?? 0;
    const cls = code >= 100 && code < 600 ? ((code / 100) | 0) - 1 : 5;
    this.classes[cls] = (this.classes[cls] as number) + 1;
  };

  constructor() {
    // onClose needs the monitor but must stay one shared function (no closure per request).
    monitorForClose = this;
  }

  /** An ekg endpoint took this request: it is not app traffic, so it leaves the books. */
  ownResponse(res: Tracked): void {
    const socket = res.socket;
    if (socket && socket[kRes] === res) {
      socket[kRes] = null;
    } else {
      if (res[kStart] === undefined || res[kStart] === DONE) return;
      res[kStart] = DONE;
    }
    this.started--;
  }

  /** Called from the shared 'close' listener for a response that never finished (the one its socket held). */
  abortedResponse(): void {
    this.finished++;
    this.aborted++;
    this.abortedTotal++;
  }

  start(): void {
    if (this.active) return;
    this.active = true;
    diagnostics.subscribe('http.server.request.start', this.onStart);
    diagnostics.subscribe('http.server.response.finish', this.onFinish);
  }

  stop(): void {
    if (!this.active) return;
    this.active = false;
    diagnostics.unsubscribe('http.server.request.start', this.onStart);
    diagnostics.unsubscribe('http.server.response.finish', this.onFinish);
  }

  sample(windowMs: number, reset = true): HttpSample {
    const classes = this.classes;
    const classesTotal = this.classesTotal.map((t, i) => t + (classes[i] as number));
    if (reset) this.classesTotal.splice(0, classesTotal.length, ...classesTotal);
    const out: HttpSample = {
      classes: reset ? classes : classes.slice(),
      classesTotal,
      requests: classes.reduce((a, b) => a + b, 0),
      inFlight: Math.max(0, this.started - this.finished),
      aborted: this.aborted,
      abortedTotal: this.abortedTotal,
      duration: this.window.summary(),
      buckets: this.buckets,
      windowMs,
    };
    if (reset) {
      this.classes = [0, 0, 0, 0, 0, 0];
      this.aborted = 0;
      this.window.reset();
    }
    return out;
  }
}

let monitorForClose: HttpMonitor | undefined;

/**
 * Called by the adapters for each request an ekg endpoint answers: probes and scrapes do not
 * count as app traffic. It reuses the start-time slot, so the response keeps its hidden class.
 */
export function markOwn(res: object): void {
  monitorForClose?.ownResponse(res as Tracked);
}
function onSocketClose(this: SocketLike): void {
  const res = this[kRes];
  this[kRes] = null;
  if (res) monitorForClose?.abortedResponse();
}

const round = (n: number) => Math.round(n * 1000) / 1000;

/** The `http` key of /stats: counts over the window, durations in ms. */
export function httpStats(s: HttpSample): Stats {
  const seconds = s.windowMs / 1000 || 1;
  const requests: Stats = { total: s.requests, rate: round(s.requests / seconds) };
  STATUS_CLASSES.forEach((c, i) => {
    requests[c] = s.classes[i] ?? 0;
  });
  const d = s.duration;
  return {
    requests,
    inFlight: s.inFlight,
    aborted: s.aborted,
    duration: {
      count: d.count,
      mean: round(d.mean),
      p50: round(d.p50),
      p90: round(d.p90),
      p99: round(d.p99),
      max: round(d.max),
    },
  };
}
