import { writeSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Session } from 'node:inspector';
import { parentPort, workerData } from 'node:worker_threads';
import { type Measurement, measurements } from '../formats/measurements.js';
import { OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE } from '../formats/prometheus.js';
import { Buckets } from '../histogram.js';
import {
  type HeaderGetter,
  heartbeatReply,
  internalError,
  liveReply,
  type MetricsVariant,
  metricsReply,
  metricsVariant,
  type Reply,
  type RouteName,
  Routes,
  rawHeader,
  readyReply,
  reply,
  type SideProbes,
  statsReply,
  TEXT,
  wantsJson,
  withHeaders,
} from '../http/contract.js';
import { createSideServer } from '../http/side-http.js';
import { RenderCache } from '../render/cache.js';
import { Reporting, type ReportOptions, transportsFor } from '../reporters/index.js';
import { counted } from '../reporters/transport.js';
import type { Stats } from '../types.js';
import type { Snapshot } from '../window/snapshot.js';
import { type SelfState, statsDocument } from '../window/stats.js';
import { beatMs, type Frame } from './watchdog.js';

/**
 * The watchdog's thread. The main thread writes the time into shared memory every `beat` ms; when
 * that time is older than `threshold`, the event loop is stalled: this thread pauses the main thread
 * through the inspector, reads where it is, resumes it, and says so on stderr at once (by file
 * descriptor: the main thread, which relays worker output, cannot). When the beat comes back, the
 * stall is over and its record goes to the main thread.
 */

const {
  sab,
  threshold,
  stack: wantStack,
  liveFailAfter,
} = workerData as {
  sab: SharedArrayBuffer;
  threshold: number;
  stack: boolean;
  liveFailAfter: number;
};
const beat = new Float64Array(sab);
let since: number | undefined;
let frames: Frame[] | undefined;
let stackError: string | undefined;

function line(s: string): void {
  try {
    writeSync(2, `${s}\n`);
  } catch {
    // stderr closed: nothing to say it on
  }
}

/** The main thread's call frames, or a reason there are none. */
function capture(): Promise<Frame[]> {
  return new Promise((resolve, reject) => {
    const s = new Session();
    const urls = new Map<string, string>();
    const done = (err?: Error, f?: Frame[]) => {
      clearTimeout(timer);
      try {
        s.post('Debugger.resume', () => {
          s.post('Debugger.disable', () => s.disconnect());
        });
      } catch {
        // already gone
      }
      if (err) reject(err);
      else resolve(f ?? []);
    };
    const timer = setTimeout(() => done(new Error('the inspector did not pause the main thread within 1 s')), 1000);
    try {
      s.connectToMainThread();
    } catch (err) {
      clearTimeout(timer);
      reject(err as Error);
      return;
    }
    s.on('Debugger.scriptParsed', (m) => urls.set(m.params.scriptId, m.params.url));
    s.once('Debugger.paused', (m) => {
      done(
        undefined,
        m.params.callFrames.slice(0, 20).map((f) => ({
          fn: f.functionName || '(anonymous)',
          file: f.url || urls.get(f.location.scriptId) || '',
          line: f.location.lineNumber + 1,
          column: (f.location.columnNumber ?? 0) + 1,
        })),
      );
    });
    s.post('Debugger.enable', (err) => {
      if (err) return done(new Error(`Debugger.enable: ${err.message}`));
      s.post('Debugger.pause', (e) => {
        if (e) done(new Error(`Debugger.pause: ${e.message}`));
      });
    });
  });
}

const at = (f: Frame | undefined) => (f ? `${f.fn} (${f.file}:${f.line}:${f.column})` : 'an unknown place');

setInterval(() => {
  const last = beat[0] as number;
  const now = Date.now();
  if (since === undefined && now - last > threshold) {
    since = last;
    frames = undefined;
    stackError = undefined;
    if (!wantStack) {
      line(`ekg: EKG_STALL the event loop has been blocked for ${now - last} ms (stack capture off)`);
      return;
    }
    const t0 = performance.now();
    capture().then(
      (f) => {
        frames = f;
        line(
          `ekg: EKG_STALL the event loop has been blocked for ${Date.now() - last} ms, at ${at(f.find((x) => x.file && !x.file.startsWith('node:')) ?? f[0])}`,
        );
        parentPort?.postMessage({ type: 'captured', ms: performance.now() - t0 });
      },
      (err: Error) => {
        stackError = err.message;
        line(`ekg: EKG_STALL the event loop has been blocked for ${Date.now() - last} ms (no stack: ${err.message})`);
      },
    );
  } else if (since !== undefined && now - last < threshold / 2) {
    const duration = last - since;
    line(`ekg: EKG_STALL the event loop ran again after ${duration} ms`);
    parentPort?.postMessage({ type: 'stall', start: since, duration, stack: frames, stackError });
    // the stall as an event (a DogStatsD `_e`), from here: the main thread may be stuck again
    const where = frames?.find((f) => f.file && !f.file.startsWith('node:')) ?? frames?.[0];
    reporting?.event('event loop stalled', `blocked for ${duration} ms${where ? ` at ${at(where)}` : ''}`);
    since = undefined;
  }
  sweep();
  postReporters();
}, beatMs(threshold));

// ---------------------------------------------------------------- the side server, answering during stalls

/**
 * The last closed window as the main thread posted it (raw), and its pages, each built here on first
 * ask (off the main thread) and reused until the next window: /stats, /metrics in both formats, plain
 * and gzipped, each body encoded once. `live`: /stats and /metrics must be asked of the main thread.
 */
class Pages {
  private doc: { stats: Stats; failed: boolean } | undefined;
  private readonly cache = new RenderCache(() => this.document());
  private readonly replies: Partial<Record<'stats' | MetricsVariant, Reply>> = {};
  constructor(
    readonly snap: Snapshot,
    private readonly self: SelfState,
    readonly live: boolean,
  ) {}

  /** The /stats document (also what the reporters flatten). */
  document(): { stats: Stats; failed: boolean } {
    this.doc ??= statsDocument(this.snap, { ...this.self, sideServer: sideCounts() ?? this.self.sideServer });
    return this.doc;
  }

  get stats(): Reply {
    let r = this.replies.stats;
    if (!r) {
      const { body, failed } = this.cache.stats(this.snap);
      r = statsReply(Buffer.from(body), failed);
      this.replies.stats = r;
    }
    return r;
  }

  metrics(variant: MetricsVariant): Reply {
    let r = this.replies[variant];
    if (!r) {
      const open = variant === 'open' || variant === 'openGz';
      const gz = variant === 'promGz' || variant === 'openGz';
      const body = gz ? this.cache.metricsGzip(this.snap, open) : Buffer.from(this.cache.metrics(this.snap, open));
      r = metricsReply(open ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE, body, gz);
      this.replies[variant] = r;
    }
    return r;
  }
}

/** The Buckets the snapshot carries, their methods back after the structured clone. */
function revive(snap: Snapshot): Snapshot {
  for (const t of Object.values(snap.runtime.gc.total)) Object.setPrototypeOf(t.buckets, Buckets.prototype);
  if (snap.http) Object.setPrototypeOf(snap.http.buckets, Buckets.prototype);
  return snap;
}

let routes: Routes | undefined;
/** the last closed window, posted by the main thread */
let pages: Pages | undefined;
/** the side server's counters, once it serves */
let sideCounts: () => { refused: number; dropped: number } | undefined = () => undefined;
/** the probes' replies as they stand, posted by the main thread on every change */
let probes: SideProbes | undefined;
let nextId = 1;

/** A request the main thread answers (what must run live); swept by the watchdog's one timer. */
interface Pending {
  req: IncomingMessage;
  res: ServerResponse;
  route: RouteName;
  header: HeaderGetter;
  path: string;
  t0: number;
}
const pending = new Map<number, Pending>();

/**
 * Called from the watchdog's timer: a request the main thread has not answered is answered here
 * once the loop stalls, or after 30 s however busy the loop (no timer per request).
 */
function sweep(): void {
  if (pending.size === 0) return;
  const stalled = stalledFor() > 0;
  const now = Date.now();
  for (const [id, p] of pending) {
    if (!stalled && now - p.t0 < 30_000) continue;
    pending.delete(id);
    send(p.req, p.res, stallReply(p.route, p.header));
  }
}

/** How long the loop has been stalled, ms (0 when it runs). */
const stalledFor = () => {
  const age = Date.now() - (beat[0] as number);
  return since !== undefined || age > threshold ? age : 0;
};

/** What an endpoint says while the main thread cannot: the contract's replies, from the watchdog's view. */
function stallReply(name: RouteName, header: HeaderGetter): Reply {
  const ms = stalledFor();
  const where = frames?.find((f) => f.file && !f.file.startsWith('node:')) ?? frames?.[0];
  const at = where ? `${where.fn} (${where.file}:${where.line}:${where.column})` : undefined;
  const detail = `the event loop has been stalled for ${ms} ms${at ? ` at ${at}` : ''}`;
  const headers = { 'x-ekg-stalled-ms': String(ms) };
  const extra = { stalledFor: ms, ...(at ? { at } : {}) };
  const json = wantsJson(header);
  switch (name) {
    case 'heartbeat':
    case 'ready': {
      const v = { ok: false, state: 'stalled', checks: { watchdog: { ok: false, detail } }, headers, extra };
      return name === 'heartbeat' ? heartbeatReply(v, json) : readyReply(v, json);
    }
    case 'live':
      return ms >= liveFailAfter ? liveReply({ ok: false, detail, headers, extra }, json) : liveReply({ ok: true, headers, extra }, json);
    default: {
      // the last closed window, marked as read during a stall
      if (!pages) return reply(503, TEXT, `${name}:NG no window has closed yet; ${detail}\n`, headers);
      if (name === 'stats') return withHeaders(pages.stats, headers);
      return withHeaders(pages.metrics(metricsVariant(header)), headers);
    }
  }
}

function send(req: IncomingMessage, res: ServerResponse, r: Reply): void {
  if (res.headersSent || res.destroyed) return;
  // Corked: with a Buffer body (the pages) Node writes the head and the body separately, two syscalls and two
  // segments per answer; corked around both, they leave in one writev.
  const socket = res.socket;
  socket?.cork();
  res.writeHead(r.status, r.headers).end(req.method === 'HEAD' ? undefined : r.body);
  socket?.uncork();
}

function onRequest(req: IncomingMessage, res: ServerResponse): void {
  try {
    answer(req, res);
  } catch (err) {
    send(req, res, internalError(err));
  }
}

function answer(req: IncomingMessage, res: ServerResponse): void {
  const table = routes as Routes;
  const url = req.url ?? '/';
  const method = req.method ?? 'GET';
  const header: HeaderGetter = (name) => rawHeader(req.rawHeaders, name);
  const path = Routes.path(url);
  // what the contract alone decides (404, 405, 401) is answered here, stalled or not: the main
  // thread only ever sees requests for an endpoint, authorized
  const r = table.owns(path) ? table.route(method, path, header) : undefined;
  if (r === undefined) return send(req, res, table.notFound(path));
  if (typeof r !== 'string') return send(req, res, r);
  if (stalledFor() > 0) return send(req, res, stallReply(r, header));
  const ready = served(r, header);
  if (ready) return send(req, res, ready);
  // what must run live goes to the main thread, which answers as it always does however long that
  // takes while its loop runs (a check, a cluster primary gathering its workers); should the loop
  // stall meanwhile, sweep() answers instead
  const id = nextId++;
  pending.set(id, { req, res, route: r, header, path, t0: Date.now() });
  const headers: Record<string, string> = {};
  for (const name of ['accept', 'accept-encoding', 'authorization']) {
    const v = header(name);
    if (v !== undefined) headers[name] = v;
  }
  parentPort?.postMessage({ type: 'req', id, method, url, headers });
}

/** The answer from what the main thread posted, when it still holds; undefined when it must be asked. */
function served(name: RouteName, header: HeaderGetter): Reply | undefined {
  switch (name) {
    case 'heartbeat':
    case 'ready': {
      const both = probes?.[name];
      if (!both || (probes?.until !== undefined && Date.now() >= probes.until)) return undefined;
      return both[wantsJson(header) ? 1 : 0];
    }
    case 'live':
      return probes?.live[wantsJson(header) ? 1 : 0];
    default: {
      if (!pages || pages.live) return undefined;
      return name === 'stats' ? pages.stats : pages.metrics(metricsVariant(header));
    }
  }
}

// ---------------------------------------------------------------- the reporters, sending off the main thread

let reporting: Reporting | undefined;
/** the last window sent (a window may be posted twice: once more when only its `live` changed) */
let sentSeq = 0;
let lastReporters = '';
let posting = false;
// a delivery's outcome reaches /stats at once, not at the next tick (one post per turn however many transports)
counted.hook = () => {
  if (posting) return;
  posting = true;
  queueMicrotask(() => {
    posting = false;
    postReporters();
  });
};

/** The transports' counters to the main thread (for /stats and /metrics), when they changed. */
function postReporters(r: Reporting | undefined = reporting): void {
  if (!r) return;
  const stats = r.stats();
  const json = JSON.stringify(stats);
  if (json === lastReporters) return;
  lastReporters = json;
  parentPort?.postMessage({ type: 'reporters', reporters: stats });
}

parentPort?.on('message', (m: { type: string } & Record<string, unknown>) => {
  if (m.type === 'serve') {
    routes = new Routes(m.prefix as string, m.token as string | undefined);
    // counted into shared memory, read by the main thread when it builds /stats
    const server = createSideServer(onRequest, (what) => {
      const i = what === 'refused' ? 1 : 2;
      beat[i] = (beat[i] as number) + 1;
    });
    sideCounts = () => ({ refused: beat[1] as number, dropped: beat[2] as number });
    server.once('error', (err: NodeJS.ErrnoException) =>
      parentPort?.postMessage({ type: 'listen-error', code: err.code, message: err.message }),
    );
    server.listen(m.port as number, m.host as string, () => {
      const a = server.address();
      parentPort?.postMessage({ type: 'listening', port: typeof a === 'object' && a ? a.port : 0 });
    });
  } else if (m.type === 'res') {
    const p = pending.get(m.id as number);
    if (!p) return;
    pending.delete(m.id as number);
    send(p.req, p.res, (m.reply as Reply | undefined) ?? (routes as Routes).notFound(p.path));
  } else if (m.type === 'snapshot') {
    pages = new Pages(revive(m.snap as Snapshot), m.self as SelfState, m.live as boolean);
    // the provisional window (seq 0) is only for readers; reporters send closed windows
    if (reporting && pages.snap.window.seq > sentSeq) {
      const p = pages;
      sentSeq = p.snap.window.seq;
      let list: Measurement[] | undefined;
      reporting.send({ snapshot: p.snap, measurements: () => (list ??= measurements(p.document().stats)) });
      postReporters();
    }
  } else if (m.type === 'report') {
    try {
      const more = transportsFor(m.options as ReportOptions, m.who as ReturnType<typeof import('../reporters/index.js').identity>);
      reporting = new Reporting([...(reporting?.transports ?? []), ...more]);
    } catch {
      // validated by the main thread before it posted
    }
  } else if (m.type === 'report-close') {
    const r = reporting;
    reporting = undefined;
    void (r ? r.close() : Promise.resolve()).then(() => {
      if (r) lastReporters = '';
      postReporters(r);
      parentPort?.postMessage({ type: 'report-closed' });
    });
  } else if (m.type === 'probes') {
    probes = m.probes as SideProbes;
  }
});
