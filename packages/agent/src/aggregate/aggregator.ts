import type { MetricType, Sample } from '../ingest/statsd-parse.js';
import { Sketch } from './sketch.js';

export type SeriesKind = 'counter' | 'gauge' | 'distribution' | 'set';

/** One series at the end of one flush window: what sinks receive. */
export interface Flushed {
  name: string;
  /** sorted `k:v` tags joined by `,` */
  tags: string;
  kind: SeriesKind;
  /** counter: sum over the window; gauge: last value; set: distinct members; distribution: count */
  value: number;
  /** counter: per second over the window */
  rate?: number;
  /** distribution only */
  count?: number;
  sum?: number;
  min?: number;
  max?: number;
  quantiles?: Record<'p50' | 'p90' | 'p95' | 'p99' | 'p999', number>;
  sketch?: Sketch;
}

export interface FlushResult {
  /** window start and end, epoch ms */
  start: number;
  end: number;
  series: Flushed[];
}

interface Series {
  name: string;
  tags: string;
  kind: SeriesKind;
  counter: number;
  gauge: number;
  sketch: Sketch | undefined;
  set: Set<string> | undefined;
  /** touched in the current window */
  active: boolean;
  /** windows without a sample (gauges are carried over until idle for `idleWindows`) */
  idle: number;
}

const QS = [0.5, 0.9, 0.95, 0.99, 0.999] as const;
function toQuantiles(q: number[]): NonNullable<Flushed['quantiles']> {
  return { p50: q[0] as number, p90: q[1] as number, p95: q[2] as number, p99: q[3] as number, p999: q[4] as number };
}

const kindOf: Record<MetricType, SeriesKind> = {
  c: 'counter',
  g: 'gauge',
  ms: 'distribution',
  h: 'distribution',
  d: 'distribution',
  s: 'set',
};

export interface AggregatorOptions {
  /** most series kept at once (default 100,000); samples for new series past it are dropped and counted */
  maxSeries?: number;
  /** windows a silent gauge is still reported (default 30: five minutes at 10 s) */
  idleWindows?: number;
  /** sketch relative accuracy (default 0.01) */
  alpha?: number;
}

/**
 * Per series (name + sorted tags), per window: counter → sum and rate; gauge → last, with `+`/`-`
 * deltas; ms, h, d → count, sum, min, max and quantiles from a DDSketch; set → distinct count.
 */
export class Aggregator {
  private series = new Map<string, Series>();
  private readonly maxSeries: number;
  private readonly idleWindows: number;
  private readonly alpha: number;
  private windowStart = Date.now();
  /** samples refused by the cardinality cap, since start */
  droppedCardinality = 0;
  /** samples whose type clashed with the series' existing type, since start */
  droppedTypeClash = 0;

  constructor(o: AggregatorOptions = {}) {
    this.maxSeries = o.maxSeries ?? 100_000;
    this.idleWindows = o.idleWindows ?? 30;
    this.alpha = o.alpha ?? 0.01;
  }

  get size(): number {
    return this.series.size;
  }

  add(s: Sample): void {
    const key = s.tags ? `${s.name}|${s.tags}` : s.name;
    let ser = this.series.get(key);
    const kind = kindOf[s.type];
    if (!ser) {
      if (this.series.size >= this.maxSeries) {
        this.droppedCardinality++;
        return;
      }
      ser = { name: s.name, tags: s.tags, kind, counter: 0, gauge: 0, sketch: undefined, set: undefined, active: false, idle: 0 };
      this.series.set(key, ser);
    } else if (ser.kind !== kind) {
      this.droppedTypeClash++;
      return;
    }
    ser.active = true;
    ser.idle = 0;
    switch (kind) {
      case 'counter':
        ser.counter += s.value * s.weight;
        break;
      case 'gauge':
        ser.gauge = s.delta ? ser.gauge + s.value : s.value;
        break;
      case 'distribution':
        ser.sketch ??= new Sketch(this.alpha);
        ser.sketch.add(s.value, s.weight);
        break;
      case 'set':
        ser.set ??= new Set();
        if (ser.set.size < 100_000) ser.set.add(s.member ?? '');
        break;
    }
  }

  /** Closes the window: returns its series and starts the next; idle series expire. */
  flush(now = Date.now()): FlushResult {
    const job = this.beginFlush(now);
    while (!job.step(Number.POSITIVE_INFINITY));
    return job.result;
  }

  /**
   * The same, off the receive path: the series map is swapped in O(1), so samples arriving during
   * the flush go to the new window, and the old one is drained in chunks with a turn of the event
   * loop between them, so the sockets are read while 100k series are summarised.
   */
  async flushAsync(now = Date.now(), chunk = 2048): Promise<FlushResult> {
    const job = this.beginFlush(now);
    while (!job.step(chunk)) await new Promise<void>((r) => setImmediate(r));
    return job.result;
  }

  private beginFlush(now: number): { result: FlushResult; step(n: number): boolean } {
    const start = this.windowStart;
    const seconds = Math.max(0.001, (now - start) / 1000);
    this.windowStart = now;
    const old = this.series;
    this.series = new Map();
    const it = old.entries();
    const out: Flushed[] = [];
    const carry = (key: string, s: Series) => {
      s.active = false;
      // a sample that arrived during an async flush already made a fresh series: that one wins
      if (!this.series.has(key)) this.series.set(key, s);
    };
    return {
      result: { start, end: now, series: out },
      step: (n: number) => {
        for (let i = 0; i < n; i++) {
          const r = it.next();
          if (r.done) return true;
          const [key, s] = r.value;
          if (!s.active) {
            s.idle++;
            // a silent counter, timer or set has nothing to say; a silent gauge keeps its level until idle
            if (s.kind !== 'gauge' || s.idle > this.idleWindows) continue;
          }
          switch (s.kind) {
            case 'counter':
              out.push({ name: s.name, tags: s.tags, kind: 'counter', value: s.counter, rate: s.counter / seconds });
              s.counter = 0;
              break;
            case 'gauge':
              out.push({ name: s.name, tags: s.tags, kind: 'gauge', value: s.gauge });
              break;
            case 'set':
              out.push({ name: s.name, tags: s.tags, kind: 'set', value: s.set?.size ?? 0 });
              s.set = undefined;
              break;
            case 'distribution': {
              const k = s.sketch as Sketch;
              out.push({
                name: s.name,
                tags: s.tags,
                kind: 'distribution',
                value: k.count,
                count: k.count,
                sum: k.sum,
                min: k.min,
                max: k.max,
                quantiles: toQuantiles(k.quantiles(QS)),
                sketch: k,
              });
              s.sketch = undefined;
              break;
            }
          }
          carry(key, s);
        }
        return false;
      },
    };
  }
}
