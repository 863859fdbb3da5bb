import { connect } from 'node:net';
import type { FlushResult } from '../aggregate/aggregator.js';
import { type Outcome, QueuedExporter, type QueueOptions } from './exporter.js';
import { measurements, tagPairs } from './measurements.js';

export interface GraphiteOptions extends QueueOptions {
  /** host:port of a Graphite plaintext listener (carbon, VictoriaMetrics -graphiteListenAddr) */
  address: string;
  /** prepended to every name, e.g. `ekg.` */
  prefix?: string;
  timeout?: number;
}

const name = (s: string) => s.replace(/[^a-zA-Z0-9._-]/g, '_');
// graphite tag values may not hold ; or ~, nor spaces in the plaintext protocol
const tagValue = (s: string) => s.replace(/[;~\s]/g, '_') || '_';

/** Graphite plaintext in its tagged form: `name;k=v;k2=v2 value timestamp`, one line a measurement, over TCP. */
export function graphiteLines(w: FlushResult, prefix = ''): string {
  const ts = Math.round(w.end / 1000);
  let out = '';
  for (const f of w.series) {
    const tags = tagPairs(f.tags)
      .map(([k, v]) => `;${name(k)}=${tagValue(v)}`)
      .join('');
    for (const [suffix, v] of measurements(f)) out += `${prefix}${name(f.name)}${suffix ? `.${suffix}` : ''}${tags} ${v} ${ts}\n`;
  }
  return out;
}

export class GraphiteExporter extends QueuedExporter {
  private readonly host: string;
  private readonly port: number;

  constructor(private readonly o: GraphiteOptions) {
    super(`graphite ${o.address}`, o);
    const i = o.address.lastIndexOf(':');
    this.host = o.address.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1';
    this.port = Number(o.address.slice(i + 1));
  }

  protected encode(w: FlushResult): Array<{ body: Uint8Array; samples: number }> {
    const text = graphiteLines(w, this.o.prefix);
    if (!text) return [];
    return [{ body: Buffer.from(text), samples: text.split('\n').length - 1 }];
  }

  /** The plaintext protocol has no answer: a batch is sent once the socket has taken it all and closed cleanly. */
  protected deliver(body: Uint8Array): Promise<Outcome> {
    return new Promise((resolve) => {
      const sock = connect({ host: this.host, port: this.port });
      const timer = setTimeout(() => sock.destroy(new Error('timeout')), this.o.timeout ?? 10_000);
      sock.on('error', (err: Error & { code?: string }) => {
        clearTimeout(timer);
        this.status.last_error = err.code ?? err.message;
        resolve('retry');
      });
      sock.on('connect', () => sock.end(body));
      sock.on('close', (hadError) => {
        clearTimeout(timer);
        if (!hadError) resolve('ok');
      });
      sock.resume();
    });
  }
}
