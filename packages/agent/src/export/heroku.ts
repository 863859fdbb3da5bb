import { herokuInterval, herokuOf } from 'ekg-vitals';
import type { Flushed, FlushResult } from '../aggregate/aggregator.js';
import { type Outcome, post, QueuedExporter, type QueueOptions } from './exporter.js';
import { measurements } from './measurements.js';
import { Period } from './period.js';

export interface HerokuOptions extends QueueOptions {
  /** the metrics URL (on Heroku, `HEROKU_METRICS_URL`), query string kept */
  url: string;
  /** ms between posts (default METRICS_INTERVAL_OVERRIDE, at least 10 s, else 20 s: Heroku's cadence) */
  period?: number;
  timeout?: number;
}

/** The monitor's resolution when an instance does not say (monitorEventLoopDelay's default, and Heroku's). */
const DEFAULT_RESOLUTION = 10;

/** RFC 3339 in UTC, whole seconds, as agentmon writes Measurements-Time. */
export function wholeSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/**
 * The body as agentmon's Go encoder writes it: `counters` then `gauges`, each left out when empty,
 * keys in byte order, a newline at the end.
 */
export function agentmonBody(counters: Map<string, number>, gauges: Map<string, number>): string {
  const section = (m: Map<string, number>) => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const body: { counters?: object; gauges?: object } = {};
  if (counters.size > 0) body.counters = section(counters);
  if (gauges.size > 0) body.gauges = section(gauges);
  return `${JSON.stringify(body)}\n`;
}

/**
 * The agentmon contract: every period, `POST {"counters":{…},"gauges":{…}}` with `Content-Type`,
 * `Measurements-Count` and a whole-second `Measurements-Time`, so ekg-agent stands where agentmon
 * stands. Counters add up over the period (and across instances); gauges keep their last level, and
 * only gauges that were sent in the period are posted (agentmon keeps no level from one period to the
 * next; a level the agent carries is not a new sample). ekg's own series go out under Heroku's Node
 * names with Heroku's meanings (the catalogue's `herokuOf`): old = every non-minor GC, usage a 0-1
 * fraction, delays with the monitor's resolution added back, pause in ns. Unlike agentmon, whose
 * retry re-sends an already consumed body, a failed post waits in the spool and is retried, in order,
 * with its own time.
 */
export class HerokuExporter extends QueuedExporter {
  /** the windows of the period so far, merged (docs/time-model.md) */
  private readonly acc: Period;
  /** set while `close` encodes the partial period */
  private closing = false;
  readonly period: number;

  constructor(private readonly o: HerokuOptions) {
    super(`heroku ${new URL(o.url).host}`, o);
    this.period = o.period ?? herokuInterval().ms;
    this.acc = new Period(this.period);
  }

  protected encode(w: FlushResult): Array<{ body: Uint8Array; samples: number }> {
    const p = this.closing ? this.acc.take() : this.acc.add(w);
    if (!p) return [];
    const counters = new Map<string, number>();
    const gauges = new Map<string, number>();
    const resolution = new Map<string, number>();
    for (const f of p.series) if (f.name === 'runtime.eventloop.resolution') resolution.set(f.tags, f.value);
    for (const f of p.series) {
      if (f.carried) continue;
      this.add(counters, gauges, f, resolution.get(f.tags) ?? DEFAULT_RESOLUTION);
    }
    const samples = counters.size + gauges.size;
    if (samples === 0) return [];
    const body = agentmonBody(counters, gauges);
    return [{ body: Buffer.from(`${wholeSeconds(p.end)}\n${samples}\n${body}`), samples }];
  }

  /** The open, partial period is posted (a SIGTERM mid-period loses nothing), then the queue drains. */
  override async close(): Promise<void> {
    this.closing = true;
    try {
      this.write({ start: 0, end: 0, series: [] });
    } finally {
      this.closing = false;
    }
    await super.close();
  }

  private add(counters: Map<string, number>, gauges: Map<string, number>, f: Flushed, resolution: number): void {
    const h = herokuOf(f.name);
    if (h && f.kind !== 'distribution') {
      const v = f.value * h.scale + (h.plusResolution ? resolution : 0);
      if (h.counter) counters.set(h.name, (counters.get(h.name) ?? 0) + v);
      else gauges.set(h.name, v);
      return;
    }
    for (const [suffix, v] of measurements(f)) {
      const key = suffix ? `${f.name}.${suffix}` : f.name;
      if (f.kind === 'counter' || suffix === 'count' || suffix === 'sum') counters.set(key, (counters.get(key) ?? 0) + v);
      else gauges.set(key, v);
    }
  }

  protected deliver(body: Uint8Array): Promise<Outcome> {
    // `<time>\n<count>\n<body>`; a batch spooled by an older agent has no count line
    const text = Buffer.from(body).toString('utf8');
    const a = text.indexOf('\n');
    const b = text.indexOf('\n', a + 1);
    const counted = /^\d+$/.test(text.slice(a + 1, b));
    const json = counted ? text.slice(b + 1) : text.slice(a + 1);
    let count = text.slice(a + 1, b);
    if (!counted) {
      const p = JSON.parse(json) as { counters?: object; gauges?: object };
      count = String(Object.keys(p.counters ?? {}).length + Object.keys(p.gauges ?? {}).length);
    }
    return post(
      this,
      this.o.url,
      json,
      {
        'content-type': 'application/json',
        'measurements-count': count,
        'measurements-time': wholeSeconds(Date.parse(text.slice(0, a))),
      },
      undefined,
      this.o.timeout ?? 5000,
    );
  }
}
