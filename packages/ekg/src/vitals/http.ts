import diagnostics from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { Buckets, type Distribution, Histogram } from '../histogram.js';
import type { Stats } from '../types.js';

/** prom-client's default buckets, so an http_request_duration_seconds panel reads the same. */
export const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

const kOwed = Symbol('ekg.owed');
const START = 'http.server.request.start';
const FINISH = 'http.server.response.finish';

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
 * The responses a connection owes, oldest first, with when each started (performance.now()). Made once
 * per connection, so a request adds no property to any object and allocates nothing: the oldest is held
 * in two fields (one response at a time is what nearly every connection has), and only responses
 * pipelined behind it go to a queue, made the first time a connection pipelines. HTTP/1.1 answers in
 * order, so a finishing response is the oldest; a start of NaN marks an ekg endpoint's own response,
 * kept in line but not counted.
 */
class Owed {
  /** the oldest owed response (null: none owed) and its start */
  res: Tracked | null = null;
  start = 0;
  /** the ones pipelined behind it, oldest first, with their starts */
  moreRes: Tracked[] | undefined = undefined;
  moreStart: number[] | undefined = undefined;

  push(res: Tracked, now: number): void {
    if (this.res === null) {
      this.res = res;
      this.start = now;
      return;
    }
    if (this.moreRes === undefined || this.moreStart === undefined) {
      this.moreRes = [];
      this.moreStart = [];
    }
    this.moreRes.push(res);
    this.moreStart.push(now);
  }

  /** Marks `res` as an ekg endpoint's own (not counted); false when it is not owed or already marked. */
  markOwn(res: Tracked): boolean {
    if (this.res === res) {
      if (Number.isNaN(this.start)) return false;
      this.start = Number.NaN;
      return true;
    }
    // markOwn asks right after its start: the newest first
    const more = this.moreRes;
    const starts = this.moreStart;
    if (more === undefined || starts === undefined) return false;
    for (let i = more.length - 1; i >= 0; i--) {
      if (more[i] !== res) continue;
      if (Number.isNaN(starts[i] as number)) return false;
      starts[i] = Number.NaN;
      return true;
    }
    return false;
  }

  /** Takes `res` out and returns its start; undefined when it is not owed (started before the monitor). */
  take(res: Tracked): number | undefined {
    if (this.res === res) {
      const start = this.start;
      const more = this.moreRes;
      if (more === undefined || more.length === 0) this.res = null;
      else {
        this.res = more.shift() as Tracked;
        this.start = (this.moreStart as number[]).shift() as number;
      }
      return start;
    }
    // not the oldest: HTTP/1.1 does not do this, but if it happens the others keep their places
    const i = this.moreRes?.indexOf(res) ?? -1;
    if (i < 0) return undefined;
    (this.moreRes as Tracked[]).splice(i, 1);
    return (this.moreStart as number[]).splice(i, 1)[0] as number;
  }

  /** Empties the queue (the connection closed); returns how many counted responses it held. */
  drop(): number {
    let counted = this.res !== null && !Number.isNaN(this.start) ? 1 : 0;
    for (const s of this.moreStart ?? []) if (!Number.isNaN(s)) counted++;
    this.res = null;
    if (this.moreRes !== undefined) this.moreRes.length = 0;
    if (this.moreStart !== undefined) this.moreStart.length = 0;
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
 * clock read and a push onto the connection's owed responses at start and, at finish, a take from them, a
 * clock read, a histogram record, a bucket count and one increment (bench/RESULTS.md gives each in
 * ns). A connection's owed-responses record and its one 'close' listener are made at its first request; the listener
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

  /**
   * One subscriber for both channels, so that the channel's call to it sees one function and V8 can
   * inline it there (two subscribers made that call site polymorphic: a full call for each).
   */
  private readonly onMessage = (message: unknown, name: string | symbol): void => {
    if (name === START) this.requestStart(message);
    else this.responseFinish(message);
  };

  private requestStart(message: unknown): void {
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
  }

  private responseFinish(message: unknown): void {
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
  }

  constructor() {
    // onClose needs the monitor but must stay one shared function (no closure per request).
    monitorForClose = this;
  }

  /** An ekg endpoint took this request: it is not app traffic, so it leaves the books. */
  ownResponse(res: Tracked): void {
    const owed = (res.socket ?? res.req?.socket)?.[kOwed];
    if (owed === undefined) return;
    if (owed.markOwn(res)) this.started--;
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
    diagnostics.subscribe(START, this.onMessage);
    diagnostics.subscribe(FINISH, this.onMessage);
  }

  stop(): void {
    if (!this.active) return;
    this.active = false;
    diagnostics.unsubscribe(START, this.onMessage);
    diagnostics.unsubscribe(FINISH, this.onMessage);
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
  if (!owed || owed.res === null) return;
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
