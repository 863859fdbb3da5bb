import cluster from 'node:cluster';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { isMainThread, threadId } from 'node:worker_threads';
import { EkgError } from '../errors.js';
import { measurements } from '../formats/measurements.js';
import type { Snapshot } from '../window/snapshot.js';
import { HerokuTransport } from './heroku.js';
import { StreamTransport } from './statsd-stream.js';
import { UdpTransport } from './statsd-udp.js';
import type { Transport, TransportStats, WindowPayload } from './transport.js';

export type { Transport, TransportStats, WindowPayload };

export interface ReportOptions {
  /** StatsD targets: `udp://host:port` (default port 8125), `tcp://host:port`, `unix:///path` */
  statsd?: string | string[];
  /** Heroku-style JSON targets (http/https URLs) */
  push?: string | string[];
  /** StatsD name prefix (default none) */
  prefix?: string;
  /** DogStatsD tags on every line (default true): service, pid, worker, and `tags` */
  dogstatsdTags?: boolean;
  /** extra tags, e.g. from EKG_TAGS */
  tags?: Record<string, string>;
  /** service name tag */
  service?: string;
  /** largest UDP datagram (default 1432) */
  maxPacket?: number;
}

/** Who this process is: pid, host, and which worker (cluster worker id, or worker thread id). */
export function identity(): { pid: string; host: string; worker?: string } {
  const worker = cluster.isWorker && cluster.worker ? String(cluster.worker.id) : !isMainThread ? `thread-${threadId}` : undefined;
  return { pid: String(process.pid), host: hostname(), ...(worker ? { worker } : {}) };
}

function bad(field: string, value: string, expected: string): EkgError {
  return new EkgError('EKG_ERR_BAD_OPTION', `option "${field}" must be ${expected}, got ${JSON.stringify(value)}`);
}

/** Builds the transports for `options`; a malformed target is an EkgError naming it. */
export function transportsFor(o: ReportOptions, who: ReturnType<typeof identity> = identity()): Transport[] {
  const list = (v: string | string[] | undefined) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
  const tags: Record<string, string> = {};
  if (o.dogstatsdTags !== false) {
    if (o.service) tags.service = o.service;
    Object.assign(tags, who, o.tags);
  }
  const fmt = { prefix: o.prefix, tags: o.dogstatsdTags === false ? undefined : tags };
  const out: Transport[] = [];
  for (const target of list(o.statsd)) {
    let u: URL;
    try {
      u = new URL(target);
    } catch {
      throw bad('statsd', target, 'a URL such as udp://127.0.0.1:8125, tcp://host:8125 or unix:///path');
    }
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = u.port === '' ? 8125 : Number(u.port);
    if (u.protocol === 'udp:') out.push(new UdpTransport({ ...fmt, host: host || '127.0.0.1', port, maxPacket: o.maxPacket }));
    else if (u.protocol === 'tcp:') out.push(new StreamTransport({ ...fmt, host: host || '127.0.0.1', port }));
    else if (u.protocol === 'unix:') {
      if (!u.pathname) throw bad('statsd', target, 'unix:///absolute/path');
      out.push(new StreamTransport({ ...fmt, path: decodeURIComponent(u.pathname) }));
    } else throw bad('statsd', target, 'a udp://, tcp:// or unix:// URL');
  }
  for (const target of list(o.push)) {
    try {
      out.push(new HerokuTransport({ url: target }));
    } catch {
      throw bad('push', target, 'an http:// or https:// URL');
    }
  }
  return out;
}

/** Sends every closed window through every transport; the measurements are flattened once. */
export class Reporting {
  constructor(readonly transports: Transport[]) {}

  window(snapshot: Snapshot, statsOf: (s: Snapshot) => import('../types.js').Stats): void {
    let cached: ReturnType<typeof measurements> | undefined;
    this.send({
      snapshot,
      measurements: () => {
        cached ??= measurements(statsOf(snapshot));
        return cached;
      },
    });
  }

  /** One window, already flattened (the watchdog's thread receives it so from the main thread). */
  send(payload: WindowPayload): void {
    for (const t of this.transports) {
      const t0 = performance.now();
      try {
        t.send(payload);
      } catch {
        // a transport's own bug must not reach the app; its counters say what happened
      }
      t.stats.cpuUs += Math.round((performance.now() - t0) * 1000);
    }
  }

  /** An event to every transport that has a form for it (a stall, as a DogStatsD `_e`). */
  event(title: string, text: string): void {
    for (const t of this.transports) {
      try {
        t.event?.(title, text);
      } catch {
        // as in window(): never the app's problem
      }
    }
  }

  stats(): Array<{ name: string; stats: TransportStats }> {
    return this.transports.map((t) => ({ name: t.name, stats: { ...t.stats } }));
  }

  async close(): Promise<void> {
    await Promise.all(this.transports.map((t) => t.close().catch(() => {})));
  }
}
