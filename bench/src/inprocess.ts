/**
 * Drives a node:http server with no socket and no load generator: one in-memory connection
 * (a Duplex) takes pipelined GET requests in batches and counts the responses written back. The
 * whole request path runs (parser, diagnostics channels, the app's handler, the response writer),
 * nothing else competes for the thread, and the kernel is out of the picture, so CPU time per
 * request is stable enough on a shared VM to resolve a few hundred nanoseconds.
 */
import type { Server } from 'node:http';
import { Duplex } from 'node:stream';

// BENCH_PATH: the path requested (default /), e.g. /ops/heartbeat for ekg's mounted probe (instructions.ts)
const REQUEST = Buffer.from(`GET ${process.env.BENCH_PATH ?? '/'} HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n`);
const MARK = 'HTTP/1.1 ';

class MemorySocket extends Duplex {
  responses = 0;
  onResponse: (() => void) | undefined;
  remoteAddress = '127.0.0.1';
  remotePort = 40000;
  localAddress = '127.0.0.1';
  localPort = 80;
  encrypted = false;
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    // a response's head starts a chunk (the body may follow in the same chunk or the next)
    const s = chunk.toString('latin1', 0, MARK.length);
    if (s === MARK) {
      this.responses++;
      this.onResponse?.();
    }
    cb();
  }
  setTimeout(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}

/** Serves `n` requests in batches of `batch` over one in-memory connection; resolves when done. */
export async function serve(server: Server, n: number, batch = 64): Promise<void> {
  const socket = new MemorySocket();
  server.emit('connection', socket);
  const payload = Buffer.concat(Array.from({ length: batch }, () => REQUEST));
  let sent = 0;
  await new Promise<void>((resolve) => {
    const next = () => {
      if (socket.responses >= n) {
        socket.onResponse = undefined;
        resolve();
        return;
      }
      if (socket.responses === sent) {
        sent += batch;
        socket.push(payload);
      }
    };
    socket.onResponse = () => {
      if (socket.responses === sent) setImmediate(next);
    };
    next();
  });
  socket.destroy();
}

/** CPU ns per request (process.cpuUsage: every thread of the process, as a pinned core would see). */
export async function cpuPerRequest(server: Server, n: number): Promise<number> {
  const a = process.cpuUsage();
  await serve(server, n);
  const b = process.cpuUsage(a);
  return ((b.user + b.system) * 1000) / n;
}
