import { defOf } from 'ekg';
import type { Flushed, FlushResult } from '../aggregate/aggregator.js';
import { type Outcome, post, QueuedExporter, type QueueOptions } from './exporter.js';
import { measurements } from './measurements.js';

export interface HerokuOptions extends QueueOptions {
  /** the metrics URL (on Heroku, `HEROKU_METRICS_URL`) */
  url: string;
  /** how often a payload is posted, ms (default 20 s, as agentmon) */
  period?: number;
  timeout?: number;
}

/**
 * A series under Heroku's Node.js language-metrics name when ekg's catalogue has one (pause in ns,
 * utilization in percent, as Heroku's collector sends them), else under its own name.
 */
function herokuOf(f: Flushed): { name: string; scale: number } {
  const spelled = defOf(f.name)?.heroku;
  if (!spelled) return { name: f.name, scale: 1 };
  const name = spelled.split(' ')[0] as string;
  const scale = spelled.includes('×100') ? 100 : name.endsWith('.ns') ? 1e6 : 1;
  return { name, scale };
}

/**
 * The agentmon contract: every period, `POST {"counters":{…},"gauges":{…}}` with `Content-Type`,
 * `Measurements-Count` and `Measurements-Time`, so ekg-agent stands where agentmon stands. Counters
 * add up over the period (and across instances); gauges keep their last level. A payload waits in
 * the spool like any batch: its time travels with it.
 */
export class HerokuExporter extends QueuedExporter {
  private counters = new Map<string, number>();
  private gauges = new Map<string, number>();
  private periodStart: number | undefined;

  constructor(private readonly o: HerokuOptions) {
    super(`heroku ${new URL(o.url).host}`, o);
  }

  protected encode(w: FlushResult): Array<{ body: Uint8Array; samples: number }> {
    this.periodStart ??= w.start;
    for (const f of w.series) {
      const { name, scale } = herokuOf(f);
      for (const [suffix, v] of measurements(f)) {
        const key = suffix ? `${name}.${suffix}` : name;
        if (f.kind === 'counter' || suffix === 'count' || suffix === 'sum')
          this.counters.set(key, (this.counters.get(key) ?? 0) + v * scale);
        else this.gauges.set(key, v * scale);
      }
    }
    if (w.end - this.periodStart < (this.o.period ?? 20_000) - 500) return [];
    const payload = { counters: Object.fromEntries(this.counters), gauges: Object.fromEntries(this.gauges) };
    const samples = this.counters.size + this.gauges.size;
    this.counters = new Map();
    this.gauges = new Map();
    this.periodStart = w.end;
    if (samples === 0) return [];
    return [{ body: Buffer.from(`${new Date(w.end).toISOString()}\n${JSON.stringify(payload)}`), samples }];
  }

  protected deliver(body: Uint8Array): Promise<Outcome> {
    const text = Buffer.from(body).toString('utf8');
    const nl = text.indexOf('\n');
    const json = text.slice(nl + 1);
    const p = JSON.parse(json) as { counters: object; gauges: object };
    return post(
      this,
      this.o.url,
      json,
      {
        'content-type': 'application/json',
        'measurements-count': String(Object.keys(p.counters).length + Object.keys(p.gauges).length),
        'measurements-time': text.slice(0, nl),
      },
      undefined,
      this.o.timeout ?? 5000,
    );
  }
}
