import dgram from 'node:dgram';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import net from 'node:net';

export interface Endpoint {
  host: string;
  port: number;
}

/** A listen address and the transports it names (`udp://…` or `tcp://…` name one; the bare forms both). */
export interface ListenAddress extends Endpoint {
  udp: boolean;
  tcp: boolean;
}

/** The forms every listen address accepts, for help texts and error messages. */
export const LISTEN_FORMS = 'PORT, :PORT, HOST:PORT, [IPv6]:PORT or off';
/** … and a StatsD address, which may also name one transport. */
export const STATSD_FORMS = `${LISTEN_FORMS}; udp://HOST:PORT or tcp://HOST:PORT for one transport only`;

const HOST = /^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/;
const V6 = /^[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?$/;

/**
 * The one parser of listen addresses (the agent's --statsd and --http, the YAML keys and env vars):
 * `8125`, `:8125`, `127.0.0.1:8125`, `localhost:8125`, `[::1]:8125`, and with `schemes`,
 * `udp://HOST:PORT` or `tcp://HOST:PORT` (any of the forms after the scheme). `off` gives 'off';
 * anything else undefined. A missing host is `defaultHost`.
 */
export function parseListen(value: string, defaultHost: string, o: { schemes?: boolean } = {}): ListenAddress | 'off' | undefined {
  let s = value.trim();
  if (s === 'off') return 'off';
  let udp = true;
  let tcp = true;
  const scheme = /^([a-z]+):\/\//i.exec(s);
  if (scheme) {
    const name = (scheme[1] as string).toLowerCase();
    if (!o.schemes || (name !== 'udp' && name !== 'tcp')) return undefined;
    udp = name === 'udp';
    tcp = name === 'tcp';
    s = s.slice(scheme[0].length).replace(/\/$/, '');
  }
  let host = defaultHost;
  let port: string;
  if (/^\d+$/.test(s)) port = s;
  else if (s.startsWith('[')) {
    const m = /^\[([^\]]*)\]:(\d+)$/.exec(s);
    if (!m || !V6.test(m[1] as string)) return undefined;
    host = m[1] as string;
    port = m[2] as string;
  } else {
    const colon = s.lastIndexOf(':');
    if (colon === -1) return undefined;
    const h = s.slice(0, colon);
    port = s.slice(colon + 1);
    if (h !== '') {
      if (!HOST.test(h)) return undefined;
      host = h;
    }
  }
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return undefined;
  return { host, port: Number(port), udp, tcp };
}

/** `8125`, `:8125`, `127.0.0.1:8125`, `[::1]:8125` → host and port (no scheme, no `off`). */
export function parseEndpoint(s: string, defaultHost: string): Endpoint | undefined {
  const a = parseListen(s, defaultHost);
  return a === 'off' || a === undefined ? undefined : { host: a.host, port: a.port };
}

/** UDP: one datagram is one packet; a large receive buffer rides out bursts. */
export async function listenUdp(ep: Endpoint, recvBuffer: number, onPacket: (buf: Buffer) => void): Promise<dgram.Socket> {
  const sock = dgram.createSocket({ type: ep.host.includes(':') ? 'udp6' : 'udp4', recvBufferSize: recvBuffer });
  sock.on('message', onPacket);
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(ep.port, ep.host, () => {
      sock.off('error', reject);
      sock.on('error', () => {});
      resolve();
    });
  });
  try {
    sock.setRecvBufferSize(recvBuffer);
  } catch {
    // the kernel may cap it (net.core.rmem_max); the bind still stands
  }
  return sock;
}

/**
 * The budgets of the stream listeners (TCP and the Unix socket share one): connections held at
 * once, how long a silent one is kept, and how long a line may be. Counters are kept here.
 */
export interface StreamBudget {
  /** connections open at once, over TCP and the Unix socket together; past it a new one is closed at once */
  maxConnections: number;
  /** a connection that sends nothing for this long (ms) is closed; 0: never */
  idleTimeoutMs: number;
  /** the longest line (characters); a longer one is dropped up to its newline */
  maxLine: number;
  open: number;
  refused: number;
  idleClosed: number;
}

/**
 * The default connection cap: well under the process's open-file limit (a quarter of it, at most
 * 1,000), so that the HTTP server, the store and the spool keep the rest.
 */
export function defaultMaxConnections(): number {
  let soft = 1024;
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m) soft = m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
  } catch {
    // not Linux: 1024 is the usual soft limit elsewhere
  }
  return Math.max(16, Math.min(1000, Math.floor(soft / 4)));
}

/**
 * TCP or a Unix stream socket: newline-delimited lines; a partial line waits for its end. A line
 * longer than `budget.maxLine` is reported once through `tooLong` and the rest of it is discarded up
 * to its newline (it is not read as new lines).
 */
export async function listenStream(
  target: Endpoint | { path: string },
  onText: (text: string) => void,
  budget: StreamBudget,
  tooLong: (head: string) => void,
): Promise<net.Server> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    if (budget.open >= budget.maxConnections) {
      budget.refused++;
      socket.destroy();
      return;
    }
    budget.open++;
    sockets.add(socket);
    socket.once('close', () => {
      budget.open--;
      sockets.delete(socket);
    });
    if (budget.idleTimeoutMs > 0)
      socket.setTimeout(budget.idleTimeoutMs, () => {
        budget.idleClosed++;
        socket.destroy();
      });
    let partial = '';
    /** inside an over-long line: everything up to the next newline is dropped */
    let discarding = false;
    const over = (head: string) => {
      tooLong(head.slice(0, 200));
      discarding = true;
      partial = '';
    };
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      let data: string;
      if (discarding) {
        const nl = chunk.indexOf('\n');
        if (nl === -1) return;
        discarding = false;
        data = chunk.slice(nl + 1);
      } else data = partial + chunk;
      const nl = data.lastIndexOf('\n');
      if (nl === -1) {
        if (data.length > budget.maxLine) over(data);
        else partial = data;
        return;
      }
      const tail = data.slice(nl + 1);
      if (tail.length > budget.maxLine) over(tail);
      else partial = tail;
      onText(data.slice(0, nl));
    });
    socket.on('end', () => {
      if (partial && !discarding) onText(partial);
      partial = '';
    });
    socket.on('error', () => {});
  });
  if ('path' in target && existsSync(target.path)) unlinkSync(target.path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if ('path' in target) server.listen(target.path, () => resolve());
    else server.listen(target.port, target.host, () => resolve());
  });
  server.on('error', () => {});
  open.set(server, sockets);
  return server;
}

const open = new WeakMap<net.Server, Set<net.Socket>>();

/**
 * Stops a stream listener: no new connections; the open ones are ended (what the kernel already
 * holds is still read) and destroyed after `graceMs`, so a client that holds its connection open
 * cannot hold up the agent's exit.
 */
export function closeStream(server: net.Server, graceMs = 1000): Promise<void> {
  const closed = new Promise<void>((r) => server.close(() => r()));
  const sockets = open.get(server) ?? new Set();
  for (const s of sockets) s.end();
  const t = setTimeout(() => {
    for (const s of sockets) s.destroy();
  }, graceMs);
  t.unref();
  return closed.finally(() => clearTimeout(t));
}
