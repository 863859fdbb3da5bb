import { writeSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Session } from 'node:inspector';
import { parentPort, workerData } from 'node:worker_threads';

/**
 * The watchdog's thread. The main thread writes the time into shared memory every `beat` ms; when
 * that time is older than `threshold`, the event loop is stalled: this thread pauses the main thread
 * through the inspector, reads where it is, resumes it, and says so on stderr at once (by file
 * descriptor: the main thread, which relays worker output, cannot). When the beat comes back, the
 * stall is over and its record goes to the main thread.
 */
export interface Frame {
  fn: string;
  file: string;
  line: number;
  column: number;
}

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

setInterval(
  () => {
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
      since = undefined;
    }
  },
  Math.max(20, Math.min(100, threshold / 10)),
);

// ---------------------------------------------------------------- the side server, answering during stalls

interface Served {
  prefix: string;
  token?: string;
  stats?: string;
  metrics?: string;
}
let served: Served | undefined;
let nextId = 1;
const pending = new Map<number, (r: { status: number; headers: Record<string, string>; body: string | Uint8Array } | undefined) => void>();

/** How long the loop has been stalled, ms (0 when it runs). */
const stalledFor = () => {
  const age = Date.now() - (beat[0] as number);
  return since !== undefined || age > threshold ? age : 0;
};

function stallReply(path: string, res: ServerResponse, auth: string | undefined): void {
  const p = served as Served;
  const ms = stalledFor();
  const where = frames?.find((f) => f.file && !f.file.startsWith('node:')) ?? frames?.[0];
  const body = (status: string) =>
    JSON.stringify({ status, stalledFor: ms, ...(where ? { at: `${where.fn} (${where.file}:${where.line}:${where.column})` } : {}) });
  const json = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };
  if (path === `${p.prefix}/heartbeat` || path === `${p.prefix}/ready`) {
    res.writeHead(503, json).end(body('stalled'));
  } else if (path === `${p.prefix}/live`) {
    res.writeHead(ms >= liveFailAfter ? 503 : 200, json).end(body(ms >= liveFailAfter ? 'stalled' : 'ok'));
  } else if (path === `${p.prefix}/stats` || path === `${p.prefix}/metrics`) {
    if (p.token && auth !== `Bearer ${p.token}`) {
      res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8' }).end('unauthorized: send Authorization: Bearer <token>\n');
      return;
    }
    // the last closed window, marked as read during a stall
    const text = path.endsWith('/stats') ? p.stats : p.metrics;
    res
      .writeHead(text ? 200 : 503, {
        'content-type': path.endsWith('/stats') ? 'application/json; charset=utf-8' : 'text/plain; version=0.0.4; charset=utf-8',
        'x-ekg-stalled-ms': String(ms),
      })
      .end(text ?? body('stalled'));
  } else res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
}

function onRequest(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  const path = url.split('?')[0] as string;
  if (stalledFor() > 0) return stallReply(path, res, req.headers.authorization);
  // the main thread answers as it always does, however long that takes while its loop runs (a
  // cluster primary gathering its workers waits up to its clusterTimeout); if the loop stalls
  // meanwhile, this thread answers instead
  const id = nextId++;
  const t0 = Date.now();
  const watch = setInterval(() => {
    if (stalledFor() === 0 && Date.now() - t0 < 30_000) return;
    clearInterval(watch);
    pending.delete(id);
    stallReply(path, res, req.headers.authorization);
  }, 50);
  pending.set(id, (r) => {
    clearInterval(watch);
    if (!r) res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
    else res.writeHead(r.status, r.headers).end(req.method === 'HEAD' ? undefined : r.body);
  });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
  parentPort?.postMessage({ type: 'req', id, method: req.method ?? 'GET', url, headers });
}

parentPort?.on('message', (m: { type: string } & Record<string, unknown>) => {
  if (m.type === 'serve') {
    served = { prefix: m.prefix as string, token: m.token as string | undefined };
    const server = createServer(
      { maxHeaderSize: 16 * 1024, requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000 },
      onRequest,
    );
    server.on('clientError', (_e, socket) => socket.destroy());
    server.once('error', (err: NodeJS.ErrnoException) =>
      parentPort?.postMessage({ type: 'listen-error', code: err.code, message: err.message }),
    );
    server.listen(m.port as number, m.host as string, () => {
      const a = server.address();
      parentPort?.postMessage({ type: 'listening', port: typeof a === 'object' && a ? a.port : 0 });
    });
  } else if (m.type === 'res') {
    pending.get(m.id as number)?.(m.reply as never);
    pending.delete(m.id as number);
  } else if (m.type === 'window' && served) {
    served.stats = m.stats as string;
    served.metrics = m.metrics as string;
  }
});
