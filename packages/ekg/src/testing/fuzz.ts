/**
 * Hostile HTTP/1.1 over raw sockets, for the library's servers: malformed request lines, URLs,
 * headers and methods, from a seeded generator (the same seed gives the same bytes).
 */
import { connect } from 'node:net';

/** A small seeded PRNG (mulberry32): a failing run can be replayed from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'M-SEARCH', 'PROPFIND', 'PURGE', 'QUERY', 'LINK'];
const ROUTES = ['heartbeat', 'ready', 'live', 'stats', 'metrics', '', 'nope', 'STATS', 'heartbeat/x', '..', '%2e%2e'];

function randomToken(r: () => number, n: number): string {
  const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@%/";
  let s = '';
  for (let i = 0; i < n; i++) s += chars[Math.floor(r() * chars.length)];
  return s;
}

/** A request target the HTTP parser accepts but a router may not expect. */
function url(r: () => number, prefix: string): string {
  const route = pick(r, ROUTES);
  const base = `${prefix}/${route}`;
  switch (Math.floor(r() * 16)) {
    case 0:
      return `${base}/`;
    case 1:
      return `${base}?${randomToken(r, 1 + Math.floor(r() * 40))}`;
    case 2:
      return `/${base}`;
    case 3:
      return `//x:99999${base}`;
    case 4:
      return '//[';
    case 5:
      return '//a%20b';
    case 6:
      return `${base}%00`;
    case 7:
      return `${base}%zz%`;
    case 8:
      return `http://evil.example${base}`;
    case 9:
      return '*';
    case 10:
      return `${prefix}/${'a'.repeat(1 + Math.floor(r() * 6000))}`;
    case 11:
      return `${base}?${'&'.repeat(200)}`;
    case 12:
      return `${prefix}/${randomToken(r, 30)}`;
    case 13:
      return `${base}#frag`;
    case 14:
      return `${prefix}${'/'.repeat(1 + Math.floor(r() * 10))}${route}`;
    default:
      return base;
  }
}

function headers(r: () => number, token: string): string[] {
  const h: string[] = ['Host: 127.0.0.1'];
  const n = Math.floor(r() * 5);
  for (let i = 0; i < n; i++) {
    switch (Math.floor(r() * 14)) {
      case 0:
        h.push(`Authorization: Bearer ${token}`);
        break;
      case 1:
        h.push(
          `Authorization: ${pick(r, ['bearer', 'BEARER', 'Bearer', 'Basic', 'Bearer  ', ''])} ${randomToken(r, Math.floor(r() * 80))}`,
        );
        break;
      case 2:
        h.push(`Authorization: Bearer ${'x'.repeat(Math.floor(r() * 8000))}`);
        break;
      case 3:
        h.push(`Accept: ${pick(r, ['application/json', 'application/openmetrics-text', '*/*', 'application/json'.repeat(300), ''])}`);
        break;
      case 4:
        h.push(`Accept-Encoding: ${pick(r, ['gzip', 'br', 'gzip, deflate', 'identity;q=0', 'x'.repeat(500)])}`);
        break;
      case 5:
        h.push(`X-${randomToken(r, 5).replace(/[^a-zA-Z0-9]/g, 'a')}: ${randomToken(r, Math.floor(r() * 200))}`);
        break;
      case 6:
        h.push('Authorization: Bearer a', 'Authorization: Bearer b');
        break;
      case 7:
        h.push(`Accept: ${'\u00ff'.repeat(10)}`);
        break;
      case 8:
        h.push(`Content-Type: ${randomToken(r, 20)}`);
        break;
      case 9:
        h.push('Expect: 100-continue');
        break;
      case 10:
        h.push(`Cookie: ${'c=1; '.repeat(Math.floor(r() * 300))}`);
        break;
      case 11:
        h.push(`Accept: ${pick(r, ['text/plain;q=0', 'application/openmetrics-text;version=1.0.0', 'application/json;q=0.1, */*'])}`);
        break;
      case 12:
        h.push('Accept:');
        break;
      default:
        h.push(`Authorization: Bearer ${token}`);
    }
  }
  return h;
}

/** One well-formed (parseable) but hostile request; keeps the connection open unless it says otherwise. */
export function parseable(r: () => number, prefix: string, token: string): string {
  const method = r() < 0.6 ? pick(r, ['GET', 'HEAD']) : pick(r, METHODS);
  const h = headers(r, token);
  let body = '';
  if (r() < 0.15) {
    body = randomToken(r, Math.floor(r() * 300));
    h.push(`Content-Length: ${Buffer.byteLength(body)}`);
  }
  return `${method} ${url(r, prefix)} HTTP/1.1\r\n${h.join('\r\n')}\r\n\r\n${body}`;
}

let EMPTY = -1;

/**
 * Bytes that break the request line, headers or framing (the parser refuses them: a 4xx naming
 * why), or parse but end the connection. `answered` is false only for bytes that hold no request.
 */
export function malformed(r: () => number, prefix: string): { bytes: Buffer; answered: boolean } {
  const p = `${prefix}/heartbeat`;
  const cases: Array<() => string | Buffer> = [
    () => `GET ${p}\r\n\r\n`,
    () => `GET ${p} HTTP/9.9\r\nHost: x\r\n\r\n`,
    () => `GET  ${p}  HTTP/1.1\r\nHost: x\r\n\r\n`,
    () => `GET ${p} HTTP/1.1\nHost: x\n\n`,
    () => `G\u0000ET ${p} HTTP/1.1\r\n\r\n`,
    () => `GET ${p}\u0001 HTTP/1.1\r\n\r\n`,
    () => `GET ${p} HTTP/1.1\r\nBad Header: x\r\n\r\n`,
    () => `GET ${p} HTTP/1.1\r\n: novalue\r\n\r\n`,
    () => `GET ${p} HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n`,
    () => `POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`,
    () => `POST ${p} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n`,
    () => `GET ${p} HTTP/1.1\r\nX: ${'a'.repeat(20 * 1024)}\r\n\r\n`,
    () => `GET ${p} HTTP/1.1\r\nHost: x\r\nX: a\u0000b\r\n\r\n`,
    () => `${'A'.repeat(100)} ${p} HTTP/1.1\r\n\r\n`,
    () => `GET /${'x'.repeat(70 * 1024)} HTTP/1.1\r\n\r\n`,
    // no request at all (empty lines before a request line are skipped): closed without a word
    () => `\r\n\r\n\r\n`,
    () => 'GET',
    () => `GET ${p} HTTP/1.1\r\nHost: x\r\n`,
    () => Buffer.from(Array.from({ length: 1 + Math.floor(r() * 400) }, () => Math.floor(r() * 256))),
    () => `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`,
    () => `\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003`,
    () => `GET ${p} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`,
    () => `GET http://[::1 HTTP/1.1\r\n\r\n`,
    () => `GET ${p} HTTP/1.1\r\nHost: x\r\n Folded: header\r\n\r\n`,
    // parseable, but each ends the connection
    () => `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    () => `GET ${p} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`,
    () => `GET ${p} HTTP/1.0\r\n\r\n`,
    () => `POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort`,
  ];
  if (EMPTY === -1) EMPTY = cases.findIndex((f) => f() === '\r\n\r\n\r\n');
  const i = Math.floor(r() * cases.length);
  const c = (cases[i] as () => string | Buffer)();
  return { bytes: typeof c === 'string' ? Buffer.from(c, 'latin1') : c, answered: i !== EMPTY };
}

export interface SocketResult {
  /** final status codes read back (1xx left out), in order */
  statuses: number[];
  /** true when the response bytes contained ekg's internal-error text */
  internalError: boolean;
  /** the connection gave neither the answers expected nor a close within the timeout */
  hung: boolean;
}

const STATUS = /HTTP\/1\.[01] (\d{3}) /g;

/**
 * Writes `payload` on a fresh connection and reads the answers. With `expect`, the payload is
 * that many pipelined requests and the exchange ends once as many final answers have arrived (or
 * the server closes); without, the client half-closes and reads until the server closes. Status
 * lines are counted as they arrive (ekg's bodies — JSON, Prometheus text, short lines — never hold one).
 */
export function exchange(port: number, payload: Buffer | string, expect?: number, timeoutMs = 30_000): Promise<SocketResult> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let text = '';
    let done = false;
    const statuses = (): number[] => [...text.matchAll(STATUS)].map((m) => Number(m[1])).filter((x) => x >= 200);
    const finish = (hung: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ statuses: statuses(), internalError: text.includes('ekg internal error'), hung });
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    s.setNoDelay(true);
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (expect !== undefined && statuses().length >= expect) finish(false);
    });
    s.on('error', () => finish(false));
    s.on('close', () => finish(false));
    s.on('connect', () => {
      if (expect === undefined) s.end(payload);
      else s.write(payload);
    });
  });
}
