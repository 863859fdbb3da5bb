import diagnostics from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { Buckets, type Distribution, Histogram } from '../histogram.js';
import type { Stats } from '../types.js';

/** prom-client's default buckets, so an http_request_duration_seconds panel reads the same. */
export const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

const kOwed = Symbol('ekg.owed');

interface SocketLike {
  [kOwed]?: Owed;
  on(event: string, fn: (this: SocketLike) => void): unknown;
}

interface Tracked {
  statusCode?: number;
  socket?: SocketLike | null;
  /** node:http's ServerResponse.req: a pipelined response has no socket until the ones before it are sent */
  req?: { socket?: SocketLike | null };
}

interface ServerLike {
  close(cb?: (err?: Error) => void): unknown;
  closeIdleConnections?(): void;
  closeAllConnections?(): void;
  listening?: boolean;
}

/**
 * The responses a connection owes, oldest first, with when each started (performance.now()): a ring
 * made once per connection, so a request adds no property to any object and allocates nothing, pipelined
 * or not. HTTP/1.1 answers in order, so a finishing response is the oldest; a start of NaN marks an ekg
 * endpoint's own response, kept in line but not counted.
 */
class Owed {
  res: Array<Tracked | null> = [null, null, null, null];
  start = new Float64Array(4);
  head = 0;
  n = 0;

  push(res: Tracked, now: number): void {
    let cap = this.res.length;
    if (this.n === cap) {
      // a deeper pipeline than seen so far on this connection: double, oldest first at 0
      const res2 = new Array<Tracked | null>(cap * 2).fill(null);
      const start2 = new Float64Array(cap * 2);
      for (let i = 0; i < cap; i++) {
        const j = (this.head + i) & (cap - 1);
        res2[i] = this.res[j] as Tracked | null;
        start2[i] = this.start[j] as number;
      }
      this.res = res2;
      this.start = start2;
      this.head = 0;
      cap *= 2;
    }
    const i = (this.head + this.n) & (cap - 1);
    this.res[i] = res;
    this.start[i] = now;
    this.n++;
  }

  /** Where `res` is in the ring (-1: not owed), newest first: markOwn asks right after its start. */
  find(res: Tracked): number {
    const mask = this.res.length - 1;
    for (let k = this.n - 1; k >= 0; k--) {
      const i = (this.head + k) & mask;
      if (this.res[i] === res) return i;
    }
    return -1;
  }

  /** Takes `res` out and returns its start; undefined when it is not owed (started before the monitor). */
  take(res: Tracked): number | undefined {
    if (this.n === 0) return undefined;
    const mask = this.res.length - 1;
    let i = this.head;
    if (this.res[i] !== res) {
      // not the oldest: HTTP/1.1 does not do this, but if it happens the others keep their places
      i = this.find(res);
      if (i < 0) return undefined;
      const start = this.start[i] as number;
      for (let j = i; j !== this.head; ) {
        const prev = (j - 1) & mask;
        this.res[j] = this.res[prev] as Tracked | null;
        this.start[j] = this.start[prev] as number;
        j = prev;
      }
      i = this.head;
      this.res[i] = null;
      this.head = (i + 1) & mask;
      this.n--;
      return start;
    }
    const start = this.start[i] as number;
    this.res[i] = null;
    this.head = (i + 1) & mask;
    this.n--;
    return start;
  }

  /** Empties the ring (the connection closed); returns how many counted responses it held. */
  drop(): number {
    const mask = this.res.length - 1;
    let counted = 0;
    for (let k = 0; k < this.n; k++) {
      const i = (this.head + k) & mask;
      if (!Number.isNaN(this.start[i] as number)) counted++;
      this.res[i] = null;
    }
    this.n = 0;
    return counted;
  }
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
 * clock read and a push into the connection's ring at start and, at finish, a take from the ring, a
 * clock read, a histogram record, a bucket count and one increment (bench/RESULTS.md gives each in
 * ns). A connection's ring and its one 'close' listener are made at its first request; the listener
 * counts every response the connection still owed when it closed as aborted, pipelined ones included.
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
    const socket = m.socket;
    // node:http always names the connection; without one a response could not be seen to abort
    if (!socket) return;
    let owed = socket[kOwed];
    if (owed === undefined) {
      owed = new Owed();
      socket[kOwed] = owed;
      socket.on('close', onSocketClose);
      // a server is seen once per connection, not per request; a Set rather than a mark on the app's
      // server, whose shape node's request path then sees change
      if (m.server) this.servers.add(m.server);
    }
    owed.push(m.response, performance.now());
    this.started++;
  };

  private readonly onFinish = (message: unknown): void => {
    const m = message as { response: Tracked; socket?: SocketLike };
    const owed = m.socket?.[kOwed];
    if (owed === undefined) return;
    const res = m.response;
    // undefined: started before the monitor was, or already counted as aborted; NaN: an ekg endpoint's own
    const start = owed.take(res);
    if (start === undefined || Number.isNaN(start)) return;
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
    const owed = (res.socket ?? res.req?.socket)?.[kOwed];
    if (owed === undefined) return;
    const i = owed.find(res);
    if (i < 0 || Number.isNaN(owed.start[i] as number)) return;
    owed.start[i] = Number.NaN;
    this.started--;
  }

  /** Called from the shared 'close' listener with the responses a closed connection still owed. */
  abortedResponses(n: number): void {
    this.finished += n;
    this.aborted += n;
    this.abortedTotal += n;
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
 * count as app traffic.
 */
export function markOwn(res: object): void {
  monitorForClose?.ownResponse(res as Tracked);
}
function onSocketClose(this: SocketLike): void {
  const owed = this[kOwed];
  if (!owed || owed.n === 0) return;
  const n = owed.drop();
  if (n > 0) monitorForClose?.abortedResponses(n);
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
