import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { bearerCheck } from 'ekg-vitals';
import { report } from '../errors.js';
import { defaultMaxConnections, type Endpoint } from '../ingest/listeners.js';
import { PushError, parsePush, pushInterval } from '../ingest/push.js';
import { IDENTITY } from '../model/instance.js';
import type { Sample } from '../model/sample.js';
import type { SelfStats } from '../model/self.js';
import { normalizeTags, parseTags } from '../model/tags.js';
import type { StoreReader } from '../store/reader.js';
import { handleApi, newApiCounters } from './api.js';
import { isAsset, serveAsset } from './assets.js';
import type { WebCounters } from './metrics.js';

const MAX_BODY = 1 << 20;
/** An identity value (X-Ekg-Host, …) is at most this long. */
const MAX_IDENTITY = 200;

export type { WebCounters } from './metrics.js';

/**
 * What the HTTP server needs from the agent, and no more: its settings, a reader for the query API,
 * the agent's own stats, an ingest function for pushes, and the texts of /metrics and /api/v1/alerts.
 */
export interface WebDeps {
  token: string | undefined;
  queryMaxPoints: number;
  queryTimeout: number;
  /** connections held at once (`--http-max-connections`); default a quarter of the open-file limit, at most 1,000 */
  maxConnections?: number;
  /** the query API's store; undefined with --store off (the API answers 404) */
  reader(): StoreReader | undefined;
  /** the agent's counters: the server counts pushes and refusals into them */
  readonly self: Pick<SelfStats, 'pushes_received' | 'pushes_rejected' | 'unauthorized'>;
  /** /api/v1/self, less the server's own counters and memory, which it adds */
  selfView(): Record<string, unknown>;
  /** false when the store cannot write: /heartbeat says degraded */
  healthy(): boolean;
  /** the agent's /metrics text, given the server's counters */
  metrics(web: WebCounters): string;
  /** /api/v1/alerts */
  alerts(): unknown;
  /** takes a push's samples into the current window */
  ingest(samples: Sample[]): void;
}

function send(res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'no-store', ...extra });
  res.end(body);
}

const json = (res: ServerResponse, status: number, body: unknown, extra?: Record<string, string>) =>
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body), extra);

/** A raw answer on a socket Node no longer serves, then close. */
function closeWith(socket: Duplex, status: string, body: string): void {
  socket.end(
    `HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/**
 * The request target → path and parameters, or undefined when it is no path. Only the origin form
 * (`/path?query`) and the absolute form (`http://host/path`) are paths; `//x:99999` is a path here,
 * not a host, so the URL is built on a fixed origin rather than resolved against one.
 */
export function parseTarget(raw: string): { path: string; params: URLSearchParams } | undefined {
  try {
    const u = raw.startsWith('/') ? new URL(`http://agent${raw}`) : /^https?:\/\//i.test(raw) ? new URL(raw) : undefined;
    return u && { path: u.pathname, params: u.searchParams };
  } catch {
    return undefined;
  }
}

/**
 * The app's identity for a push: `X-Ekg-*` headers or query parameters (service, instance, pid,
 * host, worker). Each must make one tag by the tags' own rule (ingest's normalizeTags): a comma
 * would add tags of the sender's choosing, so it is refused, naming the header.
 */
function identity(req: IncomingMessage, params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of IDENTITY) {
    const header = req.headers[`x-ekg-${k}`];
    const v = header ?? params.get(k) ?? undefined;
    const what = header !== undefined ? `X-Ekg-${k[0]?.toUpperCase()}${k.slice(1)}` : `the ${k} parameter`;
    if (typeof v !== 'string' || v === '') continue;
    if (v.length > MAX_IDENTITY) throw new PushError(400, `${what}: ${v.length} characters; at most ${MAX_IDENTITY}`);
    const tag = normalizeTags(`${k}:${v}`);
    const parsed = tag === undefined ? {} : parseTags(tag);
    const value = parsed[k];
    if (value === undefined || Object.keys(parsed).length !== 1)
      throw new PushError(400, `${what}: "${v.slice(0, 100)}" is not one tag value (no commas)`);
    out[k] = value;
  }
  return out;
}

/**
 * The agent's HTTP server: the dashboard, /heartbeat, /metrics, the query API and POST /v1/push.
 * Every request gets an answer: a target that is no path is a 400, a request that does not parse
 * is a 400 (431, 408) before the connection closes, and an error raised while serving one request
 * is a 500, logged once and counted, never the end of the agent. Errors at start are the caller's.
 */
export function startWeb(agent: WebDeps, ep: Endpoint): Promise<Server> {
  // the library's check: `Bearer` in any case (RFC 7235), the token compared in constant time
  const check = bearerCheck(agent.token);
  const authorized = (req: IncomingMessage) => !check || check(req.headers.authorization);
  const counters: WebCounters = {
    ...newApiCounters(),
    http_bad_requests: 0,
    http_errors: 0,
    http_connections_evicted: 0,
    http_connections_refused: 0,
  };
  const limits = { queryMaxPoints: agent.queryMaxPoints, queryTimeout: agent.queryTimeout };
  const logged = new Set<string>();

  /** The last-resort guard: a 500 (or a closed connection once the answer has begun), one log line per kind of error. */
  const fail = (res: ServerResponse, err: unknown): void => {
    counters.http_errors++;
    const msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    if (!logged.has(msg) && logged.size < 100) {
      logged.add(msg);
      const where = err instanceof Error ? (err.stack?.split('\n')[1]?.trim() ?? '') : '';
      report(
        'EKG_AGENT_ERR_HTTP',
        `http: a request failed, answered 500 and kept serving (logged once, counted in http_errors): ${msg} ${where}`,
      );
    }
    try {
      if (!res.headersSent) json(res, 500, { error: 'the agent failed to answer this request; its log says why' });
      else res.destroy();
    } catch {
      res.destroy();
    }
  };

  const route = (req: IncomingMessage, res: ServerResponse): void | Promise<void> => {
    const target = parseTarget(req.url ?? '');
    if (!target) {
      counters.http_bad_requests++;
      return send(res, 400, 'text/plain; charset=utf-8', 'bad request: the request target is not a path (like /api/v1/self)\n');
    }
    const { path, params } = target;
    const read = req.method === 'GET' || req.method === 'HEAD';
    // the dashboard's files carry no data: it loads, then asks for the token the API wants
    if (isAsset(path) && read && serveAsset(req, res, path)) return;
    if (path === '/heartbeat') {
      if (!read) return send(res, 405, 'text/plain; charset=utf-8', 'use GET or HEAD\n', { allow: 'GET, HEAD' });
      // a store that cannot write is reported, but with 200: restarting the agent would lose the
      // windows it holds in memory meanwhile, and would not free the disk. Why is behind the
      // token, in /api/v1/self: this path is open
      return send(res, 200, 'text/plain; charset=utf-8', agent.healthy() ? 'heartbeat:ok' : 'heartbeat:degraded');
    }
    if (!authorized(req)) {
      agent.self.unauthorized++;
      return send(
        res,
        401,
        'application/json; charset=utf-8',
        JSON.stringify({ error: 'this agent needs Authorization: Bearer <token>' }),
        {
          'www-authenticate': 'Bearer realm="ekg-agent"',
        },
      );
    }
    if (path === '/metrics' && read) {
      return send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', agent.metrics(counters));
    }
    if (path === '/api/v1/self') {
      if (!read) return send(res, 405, 'text/plain; charset=utf-8', 'use GET\n', { allow: 'GET, HEAD' });
      const m = process.memoryUsage();
      return json(res, 200, {
        ...agent.selfView(),
        ...counters,
        rss_bytes: m.rss,
        heap_used_bytes: m.heapUsed,
        heap_total_bytes: m.heapTotal,
      });
    }
    if (path === '/api/v1/alerts' && read) {
      return json(res, 200, agent.alerts());
    }
    if (path.startsWith('/api/v1/')) {
      if (!read) return send(res, 405, 'text/plain; charset=utf-8', 'use GET\n', { allow: 'GET, HEAD' });
      const reader = agent.reader();
      if (!reader) return json(res, 404, { error: 'no store: the agent runs with --store off' });
      return handleApi(reader, path, params, Date.now(), limits, counters).then(([status, body, headers]) =>
        json(res, status, body, headers),
      );
    }
    if (path === '/v1/push') return push(req, res, params);
    send(
      res,
      404,
      'text/plain; charset=utf-8',
      'not found: the agent serves the dashboard at /, /heartbeat, /metrics, /api/v1/{self,instances,series,query,batch,events,alerts} and POST /v1/push\n',
    );
  };

  const push = (req: IncomingMessage, res: ServerResponse, params: URLSearchParams): void => {
    if (req.method !== 'POST') return send(res, 405, 'text/plain; charset=utf-8', 'use POST\n', { allow: 'POST' });
    const refuse = (status: number, error: string) => {
      agent.self.pushes_rejected++;
      if (status === 413) res.setHeader('connection', 'close');
      json(res, status, { error });
    };
    let id: Record<string, string>;
    let interval: number | undefined;
    try {
      id = identity(req, params);
      interval = pushInterval(req.headers['x-ekg-interval-ms'], params.get('interval_ms'));
    } catch (err) {
      req.resume();
      return refuse((err as PushError).status ?? 400, (err as Error).message);
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY) return refuse(413, `body over ${MAX_BODY} bytes`);
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (c: Buffer) => {
      if (refused) return;
      size += c.length;
      if (size > MAX_BODY) {
        refused = true;
        refuse(413, `body over ${MAX_BODY} bytes`);
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (refused) return;
      try {
        const samples = parsePush(Buffer.concat(chunks).toString('utf8'), id, interval);
        agent.ingest(samples);
        agent.self.pushes_received++;
        json(res, 202, { accepted: samples.length });
      } catch (err) {
        if (err instanceof PushError) return refuse(err.status, err.message);
        fail(res, err);
      }
    });
    req.on('error', () => {});
  };

  const server = createServer({ maxHeaderSize: 16 * 1024, requestTimeout: 30_000 }, (req, res) => {
    try {
      route(req, res)?.catch((err: unknown) => fail(res, err));
    } catch (err) {
      fail(res, err);
    }
  });
  // Connections held at once (--http-max-connections; by default a quarter of the open-file limit, as StatsD's), so that a flood of idle or
  // half-sent requests cannot take the descriptors the store, the spool and StatsD need. At the cap, a
  // new connection evicts the oldest one that has no request in progress (idle keep-alive, or headers
  // still coming): whoever holds connections open without asking anything cannot lock out a probe.
  // Only when every connection is serving a request is the new one closed.
  const maxConnections = agent.maxConnections ?? defaultMaxConnections();
  const conns = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    if (conns.size >= maxConnections) {
      let victim: Socket | undefined;
      for (const c of conns)
        if (!(c as Socket & { _httpMessage?: unknown })._httpMessage) {
          victim = c;
          break;
        }
      if (victim) {
        counters.http_connections_evicted++;
        conns.delete(victim);
        victim.destroy();
      } else {
        counters.http_connections_refused++;
        socket.destroy();
        return;
      }
    }
    conns.add(socket);
    socket.once('close', () => conns.delete(socket));
  });
  // what Node does with no listener (a 400, 431 or 408, then close), and counted
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return socket.destroy();
    counters.http_bad_requests++;
    // an answer already begun on this connection cannot be followed by another
    const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
    if (!socket.writable || inFlight?.headersSent) return socket.destroy();
    const status =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? '431 Request Header Fields Too Large'
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? '408 Request Timeout'
          : '400 Bad Request';
    closeWith(socket, status, `bad request: ${err.code ?? 'malformed'}\n`);
  });
  // CONNECT asks for a tunnel: Node hands the socket over, or drops it when nobody listens
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    counters.http_bad_requests++;
    closeWith(socket, '405 Method Not Allowed', 'the agent is no proxy: CONNECT is not served\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(ep.port, ep.host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
