import dgram from 'node:dgram';
import { existsSync, unlinkSync } from 'node:fs';
import net from 'node:net';

export interface Endpoint {
  host: string;
  port: number;
}

/** `8125`, `:8125`, `127.0.0.1:8125`, `[::1]:8125` → host and port. */
export function parseEndpoint(s: string, defaultHost: string): Endpoint | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]*))?:?(\d{1,5})$/.exec(s.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? (m[2] || defaultHost), port };
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
