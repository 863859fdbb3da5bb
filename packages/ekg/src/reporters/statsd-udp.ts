import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { pack, type StatsdFormat, statsdEvent, statsdLines } from '../formats/statsd.js';
import { newStats, Outage, type Transport, type WindowPayload } from './transport.js';

/** how long close() waits for the last datagrams (a name to resolve, a socket to bind) */
const CLOSE_WAIT_MS = 2000;
const unrefDelay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export interface UdpOptions extends StatsdFormat {
  host: string;
  port: number;
  /** largest datagram, bytes (default 1432: fits a 1500-byte MTU with IP and UDP headers) */
  maxPacket?: number;
}

/**
 * StatsD over UDP. The host name is resolved once per window, not per packet; the socket is
 * unref'd and created on first use. Nothing is queued: a window that cannot go is counted, not kept.
 */
export class UdpTransport implements Transport {
  readonly name: string;
  readonly stats = newStats();
  private readonly outage: Outage;
  private socket: dgram.Socket | undefined;
  private family: 4 | 6 | undefined;
  private closed = false;

  constructor(private readonly o: UdpOptions) {
    this.name = `statsd udp://${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`;
    this.outage = new Outage(this.name, this.stats);
  }

  send(w: WindowPayload): void {
    if (this.closed) return;
    const packets = pack(statsdLines(w.measurements(), this.o, w.snapshot.window), this.o.maxPacket ?? 1432);
    if (packets.length === 0) return;
    const d = this.deliver(packets).catch((err: unknown) => this.outage.fail(err));
    this.inflight.add(d);
    void d.finally(() => this.inflight.delete(d));
  }

  /** deliveries not yet handed to the kernel: close() waits for them, so a job's last window is not lost */
  private readonly inflight = new Set<Promise<void>>();

  event(title: string, text: string): void {
    if (this.closed) return;
    const p = Buffer.from(statsdEvent(title, text, this.o));
    const send = (address: string, family: 4 | 6) => this.socketFor(family).send(p, this.o.port, address, () => {});
    if (isIP(this.o.host)) send(this.o.host, isIP(this.o.host) === 6 ? 6 : 4);
    else
      lookup(this.o.host).then(
        (r) => send(r.address, r.family === 6 ? 6 : 4),
        () => {},
      );
  }

  private async deliver(packets: Buffer[]): Promise<void> {
    let address = this.o.host;
    let family: 4 | 6 = isIP(address) === 6 ? 6 : 4;
    if (!isIP(address)) {
      try {
        const r = await lookup(address);
        address = r.address;
        family = r.family === 6 ? 6 : 4;
      } catch (err) {
        this.stats.dropped++;
        this.outage.fail(err, `cannot resolve ${this.o.host}`);
        return;
      }
    }
    const socket = this.socketFor(family);
    let failed = false;
    let bytes = 0;
    await Promise.all(
      packets.map(
        (p) =>
          new Promise<void>((done) => {
            socket.send(p, this.o.port, address, (err) => {
              if (err) {
                if (!failed) this.outage.fail(err);
                failed = true;
              } else bytes += p.length;
              done();
            });
          }),
      ),
    );
    if (failed) this.stats.dropped++;
    else this.outage.ok(bytes);
  }

  private socketFor(family: 4 | 6): dgram.Socket {
    if (this.socket && this.family === family) return this.socket;
    this.socket?.close();
    const s = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    s.on('error', (err) => this.outage.fail(err));
    s.unref();
    this.socket = s;
    this.family = family;
    return s;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.inflight.size > 0) await Promise.race([Promise.all(this.inflight), unrefDelay(CLOSE_WAIT_MS)]);
    const s = this.socket;
    this.socket = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}
