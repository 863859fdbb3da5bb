import net from 'node:net';
import { pack, type StatsdFormat, statsdEvent, statsdLines } from '../formats/statsd.js';
import { newStats, Outage, type Transport, type WindowPayload } from './transport.js';

export type StreamOptions = StatsdFormat &
  ({ host: string; port: number; path?: undefined } | { path: string; host?: undefined; port?: undefined });

const MIN_BACKOFF = 500;
const MAX_BACKOFF = 30_000;
/** a stalled reader must not make the app buffer without end */
const MAX_BUFFERED = 1 << 20;
/** how long close() waits for a connection still being made, so that the last window can go */
const CLOSE_WAIT_MS = 2000;

/**
 * StatsD over TCP or a Unix stream socket: newline-terminated lines. Connects on first use,
 * reconnects with exponential backoff (0.5 s … 30 s, jittered) on an unref'd timer. While
 * disconnected it holds at most the newest window; the one it replaces is counted as dropped.
 */
export class StreamTransport implements Transport {
  readonly name: string;
  readonly stats = newStats();
  private readonly outage: Outage;
  private socket: net.Socket | undefined;
  private open = false;
  private pending: Buffer | undefined;
  private backoff = MIN_BACKOFF;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly o: StreamOptions) {
    this.name = o.path !== undefined ? `statsd unix://${o.path}` : `statsd tcp://${o.host}:${o.port}`;
    this.outage = new Outage(this.name, this.stats);
  }

  send(w: WindowPayload): void {
    if (this.closed) return;
    const lines = statsdLines(w.measurements(), this.o, w.snapshot.window);
    if (lines.length === 0) return;
    const payload = Buffer.concat(pack(lines, 64 * 1024).flatMap((b) => [b, Buffer.from('\n')]));
    if (this.open && this.socket) {
      this.write(this.socket, payload);
      return;
    }
    if (this.pending) this.stats.dropped++;
    this.pending = payload;
    if (!this.socket && !this.timer) this.connect();
  }

  event(title: string, text: string): void {
    // only on a live connection: an event is not worth holding for a reconnect
    if (this.closed || !this.open || !this.socket || this.socket.writableLength > MAX_BUFFERED) return;
    this.socket.write(`${statsdEvent(title, text, this.o)}\n`, () => {});
  }

  private write(socket: net.Socket, payload: Buffer): void {
    if (socket.writableLength > MAX_BUFFERED) {
      this.stats.dropped++;
      this.outage.fail(new Error(`the reader is not keeping up (${socket.writableLength} bytes waiting)`));
      return;
    }
    socket.write(payload, (err) => {
      if (err) this.outage.fail(err);
      else this.outage.ok(payload.length);
    });
  }

  private connect(): void {
    if (this.closed) return;
    const socket = this.o.path !== undefined ? net.connect({ path: this.o.path }) : net.connect({ host: this.o.host, port: this.o.port });
    this.socket = socket;
    socket.unref();
    socket.setNoDelay(true);
    socket.on('connect', () => {
      this.open = true;
      this.backoff = MIN_BACKOFF;
      const p = this.pending;
      this.pending = undefined;
      if (p) this.write(socket, p);
    });
    // data from the agent is not expected; reading keeps the socket from filling up
    socket.on('data', () => {});
    socket.on('error', (err) => {
      this.outage.fail(err, this.open ? 'connection lost' : 'cannot connect');
    });
    socket.on('close', (hadError) => {
      if (!hadError && !this.closed) this.outage.fail(new Error('the agent closed the connection'), 'connection lost');
      this.open = false;
      if (this.socket === socket) this.socket = undefined;
      this.retry();
    });
  }

  private retry(): void {
    if (this.closed || this.timer) return;
    const delay = this.backoff * (0.75 + Math.random() * 0.5);
    this.backoff = Math.min(MAX_BACKOFF, this.backoff * 2);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // reconnect only when there is something to say: an idle app does not keep dialing
      if (this.pending) this.connect();
    }, delay);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // a window still waiting for the connection (a job's last one) gets a bounded chance to go
    const connecting = this.socket;
    if (connecting && !this.open && this.pending) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, CLOSE_WAIT_MS);
        t.unref();
        connecting.once('connect', () => {
          clearTimeout(t);
          r();
        });
        connecting.once('close', () => {
          clearTimeout(t);
          r();
        });
      });
    }
    const s = this.socket;
    this.socket = undefined;
    if (s && this.open) await new Promise<void>((r) => s.end(() => r()));
    s?.destroy();
  }
}
