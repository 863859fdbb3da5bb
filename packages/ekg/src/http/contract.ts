import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The endpoint contract, once: the route table, the token check and every reply's status, headers
 * and body. No I/O and no ekg state: the router (main thread, every adapter) and the side server's
 * stall responder (watchdog thread) both build their answers here, so they cannot drift.
 */

/** What every adapter writes back: a status, headers and a body (omitted for HEAD by the adapter). */
export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string | Uint8Array;
}

/** The probes' replies as the side server's thread keeps them, `[text, JSON]` each (posted on every change). */
export interface SideProbes {
  /** absent when a check must run before /heartbeat and /ready can answer */
  heartbeat?: [Reply, Reply];
  ready?: [Reply, Reply];
  live: [Reply, Reply];
  /** epoch ms after which heartbeat and ready are stale (a cached check verdict's end) */
  until?: number;
}

/** Reads one request header by its lower-case name. */
export type HeaderGetter = (name: string) => string | undefined;

export const TEXT = 'text/plain; charset=utf-8';
export const JSON_TYPE = 'application/json; charset=utf-8';
export const ALLOW = 'GET, HEAD';
export const METRICS_VARY = 'accept, accept-encoding';

/** ekg's endpoints, in the order a 404 lists them; `open` ones need no token. */
export const ROUTES = [
  { name: 'heartbeat', open: true },
  { name: 'ready', open: true },
  { name: 'live', open: true },
  { name: 'stats', open: false },
  { name: 'metrics', open: false },
] as const;
export type RouteName = (typeof ROUTES)[number]['name'];

export function reply(status: number, type: string, body: string | Uint8Array, extra?: Record<string, string>): Reply {
  const length = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  return {
    status,
    headers: { 'content-type': type, 'content-length': String(length), 'cache-control': 'no-store', ...extra },
    body,
  };
}

/** The same reply with more headers (e.g. `x-ekg-stalled-ms` on an answer given during a stall). */
export function withHeaders(r: Reply, extra: Record<string, string>): Reply {
  return { status: r.status, headers: { ...r.headers, ...extra }, body: r.body };
}

/**
 * One header from Node's `rawHeaders` (name in lower case; repeated ones joined with `, `), without
 * building `req.headers`, and without lower-casing each name sent (a string per header per probe).
 */
export function rawHeader(raw: string[], name: string): string | undefined {
  let out: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i] as string;
    if (k.length === name.length && sameName(k, name)) {
      const v = raw[i + 1] as string;
      out = out === undefined ? v : `${out}, ${v}`;
    }
  }
  return out;
}

/** `k` (a header name as sent, of `lower`'s length) equals `lower` (in lower case) ignoring the case of A–Z. */
function sameName(k: string, lower: string): boolean {
  for (let i = 0; i < k.length; i++) {
    const c = k.charCodeAt(i);
    const l = lower.charCodeAt(i);
    // OR 0x20 lower-cases A–Z; only a letter may match that way
    if (c !== l && ((c | 0x20) !== l || l < 97 || l > 122)) return false;
  }
  return true;
}

export const wantsJson = (header: HeaderGetter): boolean => header('accept')?.includes('application/json') === true;
/** Prometheus asks for gzip. */
export const wantsGzip = (header: HeaderGetter): boolean => header('accept-encoding')?.includes('gzip') === true;
/** OpenMetrics when the scraper lists it in Accept (Prometheus does, with a q-value). */
export const wantsOpenMetrics = (header: HeaderGetter): boolean => header('accept')?.includes('application/openmetrics-text') === true;

/** Which rendering of /metrics a request asks for: the key of a per-window cache. */
export type MetricsVariant = 'prom' | 'open' | 'promGz' | 'openGz';
export function metricsVariant(header: HeaderGetter): MetricsVariant {
  return `${wantsOpenMetrics(header) ? 'open' : 'prom'}${wantsGzip(header) ? 'Gz' : ''}` as MetricsVariant;
}

/**
 * `Authorization: Bearer <token>`, checked in constant time: both sides are hashed to 32 bytes
 * first, so neither the token's length nor a common prefix shows in the timing. The scheme is
 * case-insensitive and may be followed by several spaces (RFC 7235 §2.1).
 */
export function bearerCheck(token: string | undefined): ((authorization: string | undefined) => boolean) | undefined {
  if (!token) return undefined;
  const want = createHash('sha256').update(token).digest();
  return (got) => {
    if (got === undefined || got.length < 8 || got.charCodeAt(6) !== 32 || got.slice(0, 6).toLowerCase() !== 'bearer') return false;
    let i = 7;
    while (got.charCodeAt(i) === 32) i++;
    return timingSafeEqual(createHash('sha256').update(got.slice(i)).digest(), want);
  };
}

// Prebuilt: the probe answers allocate nothing.
const HEARTBEAT_OK = reply(200, TEXT, 'heartbeat:ok');
const HEARTBEAT_NG = reply(503, TEXT, 'heartbeat:NG');
const READY_OK = reply(200, TEXT, 'ready:ok');
const LIVE_OK = reply(200, TEXT, 'live:ok');

/** A health verdict as /heartbeat and /ready show it. */
export interface ProbeVerdict {
  ok: boolean;
  state: string;
  checks: Record<string, { ok: boolean; detail?: string }>;
  /** /ready's text after `ready:NG ` (default: the failed checks with their details) */
  why?: string;
  /** more headers (Retry-After under pressure, x-ekg-stalled-ms during a stall) */
  headers?: Record<string, string>;
  /** more fields in the JSON form */
  extra?: Record<string, unknown>;
}

function healthJson(v: ProbeVerdict): Reply {
  return reply(
    v.ok ? 200 : 503,
    JSON_TYPE,
    JSON.stringify({ status: v.ok ? 'ok' : 'NG', state: v.state, checks: v.checks, ...v.extra }),
    v.headers,
  );
}

/** `GET /heartbeat`: the KomachiHeartbeat contract, or JSON when asked. */
export function heartbeatReply(v: ProbeVerdict, json: boolean): Reply {
  if (json) return healthJson(v);
  if (v.headers) return withHeaders(v.ok ? HEARTBEAT_OK : HEARTBEAT_NG, v.headers);
  return v.ok ? HEARTBEAT_OK : HEARTBEAT_NG;
}

/** `GET /ready`: the same verdict, with the reason in the text. */
export function readyReply(v: ProbeVerdict, json: boolean): Reply {
  if (json) return healthJson(v);
  if (v.ok) return v.headers ? withHeaders(READY_OK, v.headers) : READY_OK;
  const why =
    v.why ??
    Object.entries(v.checks)
      .filter(([, c]) => !c.ok)
      .map(([name, c]) => (c.detail ? `${name}: ${c.detail}` : name))
      .join('; ');
  return reply(503, TEXT, `ready:NG ${why}\n`, v.headers);
}

/** `GET /live`. */
export function liveReply(
  l: { ok: boolean; detail?: string; headers?: Record<string, string>; extra?: Record<string, unknown> },
  json: boolean,
): Reply {
  if (json)
    return reply(l.ok ? 200 : 503, JSON_TYPE, JSON.stringify({ status: l.ok ? 'ok' : 'NG', detail: l.detail, ...l.extra }), l.headers);
  if (l.ok) return l.headers ? withHeaders(LIVE_OK, l.headers) : LIVE_OK;
  return reply(503, TEXT, `live:NG ${l.detail ?? ''}\n`, l.headers);
}

export function statsReply(body: string | Uint8Array, failed: boolean): Reply {
  return reply(failed ? 503 : 200, JSON_TYPE, body);
}

/** A /metrics page; `gzipped` when `body` is the compressed page. */
export function metricsReply(type: string, body: string | Uint8Array, gzipped: boolean): Reply {
  return reply(200, type, body, gzipped ? { 'content-encoding': 'gzip', vary: METRICS_VARY } : { vary: METRICS_VARY });
}

export function internalError(err: unknown): Reply {
  let msg: string;
  try {
    msg = err instanceof Error ? err.message : String(err);
  } catch {
    msg = 'an error that cannot be described';
  }
  return reply(500, TEXT, `ekg internal error: ${String(msg).slice(0, 300)}\n`);
}

/** The side server's limits (main thread or watchdog thread alike; docs/limits.md). */
export const SIDE_SERVER = {
  /** request line and headers together, bytes (more: 431) */
  maxHeaderSize: 16 * 1024,
  /** ms for a whole request to arrive (more: 408) */
  requestTimeout: 10_000,
  /** ms for the headers to arrive */
  headersTimeout: 5_000,
  /** ms an idle keep-alive connection is kept */
  keepAliveTimeout: 5_000,
  /** probes and scrapers need not send Host (Node would answer 400 with no word of why) */
  requireHostHeader: false,
  /** open connections at once; more are closed at accept */
  maxConnections: 1024,
} as const;

/**
 * The raw answer to bytes Node's HTTP parser refused (a broken request line, header or framing):
 * 431 for headers over the limit, 408 for a request too slow, else 400, naming the parser's code.
 */
export function clientErrorResponse(code: string | undefined): string {
  const [status, text] =
    code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large']
      : code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout']
        : [400, 'Bad Request'];
  const body = `bad request: ${/^[A-Z_]{1,40}$/.test(code ?? '') ? code : 'not HTTP/1.1'}\n`;
  return `HTTP/1.1 ${status} ${text}\r\nContent-Type: ${TEXT}\r\nContent-Length: ${body.length}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`;
}

/**
 * The route table at one prefix, with the token check. `route` answers what the contract alone
 * decides (404, 405, 401) and names the endpoint otherwise; what the endpoint says is the caller's.
 */
export class Routes {
  /**
   * Five paths compared in turn, not a Map: a request's path is a new string each time, and a Map would
   * hash it first (~250 instructions a probe, callgrind), while `===` on strings of another length is one compare.
   */
  private readonly paths: Array<{ path: string; name: RouteName; open: boolean }>;
  private readonly authorized: ((authorization: string | undefined) => boolean) | undefined;
  private readonly listing: string;

  constructor(
    readonly prefix: string,
    token: string | undefined,
  ) {
    this.paths = ROUTES.map((r) => ({ path: `${prefix}/${r.name}`, name: r.name, open: r.open }));
    this.authorized = bearerCheck(token);
    this.listing = this.paths.map((r) => r.path).join(', ');
  }

  /** True when `path` (no query string) is under the prefix: the request is ekg's to answer. */
  owns(path: string): boolean {
    const p = this.prefix;
    return p === '' || path === p || (path.startsWith(p) && path.charCodeAt(p.length) === 47) /* / */;
  }

  /** The path of `url`, without the query string or a trailing slash. */
  static path(url: string): string {
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  }

  /**
   * For a path this prefix owns: the endpoint's name when the request may have it, a Reply when
   * the contract answers (404 listing the endpoints, 405 with Allow, 401), or undefined when ekg,
   * mounted at the root, leaves the path to the app.
   */
  route(method: string, path: string, header: HeaderGetter): RouteName | Reply | undefined {
    const r = this.find(path);
    if (!r) return this.prefix === '' ? undefined : this.notFound(path);
    if (method !== 'GET' && method !== 'HEAD')
      return reply(405, TEXT, `method ${method.slice(0, 20)} not allowed; use GET or HEAD\n`, { allow: ALLOW });
    if (!r.open && this.authorized && !this.authorized(header('authorization')))
      return reply(401, TEXT, 'unauthorized: send Authorization: Bearer <token>\n', { 'www-authenticate': 'Bearer realm="ekg"' });
    return r.name;
  }

  private find(path: string): { name: RouteName; open: boolean } | undefined {
    for (const r of this.paths) if (r.path === path) return r;
    return undefined;
  }

  /** 404 naming the endpoints (also what a side server, which has no app behind it, answers for the rest). */
  notFound(path: string): Reply {
    return reply(404, TEXT, `not found: ${path.slice(0, 200)}; ekg serves ${this.listing}\n`);
  }
}
