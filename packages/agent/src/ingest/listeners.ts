import dgram from 'node:dgram';
import { existsSync, unlinkSync } from 'node:fs';
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

/** TCP or a Unix stream socket: newline-delimited lines; a partial line waits for its end. */
export async function listenStream(target: Endpoint | { path: string }, onText: (text: string) => void): Promise<net.Server> {
  const server = net.createServer((socket) => {
    let partial = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      const data = partial + chunk;
      const nl = data.lastIndexOf('\n');
      if (nl === -1) {
        // a line longer than 64 KiB without a newline is garbage: drop it rather than grow
        partial = data.length > 65536 ? '' : data;
        return;
      }
      partial = data.slice(nl + 1);
      onText(data.slice(0, nl));
    });
    socket.on('end', () => {
      if (partial) onText(partial);
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
  return server;
}
