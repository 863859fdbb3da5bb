import { INTERVAL_GAUGE } from 'ekg-vitals';
import type { MetricType, Sample } from '../model/sample.js';
import { QUANTILES, type Quantiles, quantilesOf, type SeriesKind } from '../model/series.js';
import { Sketch } from './sketch.js';

export type { SeriesKind } from '../model/series.js';

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
  /** counter: cumulative sum since the series appeared (what Prometheus reads as `_total`); distribution: cumulative count */
  total?: number;
  /** distribution: cumulative sum of the samples since the series appeared (a summary's `_sum`) */
  totalSum?: number;
  /** distribution only */
  count?: number;
  sum?: number;
  min?: number;
  max?: number;
  quantiles?: Quantiles;
  sketch?: Sketch;
  /**
   * a gauge that had no sample this window and whose last sample's interval has ended, reported at its
   * last level for exporters that keep levels (StatsD does): not a new observation, never stored
   */
  carried?: true;
}

export interface FlushResult {
  /** window start and end, epoch ms */
  start: number;
  end: number;
  series: Flushed[];
}

/** A series' accumulators for one window. */
interface Acc {
  counter: number;
  gauge: number;
  sketch: Sketch | undefined;
  set: Set<string> | undefined;
  /** bytes of the set's members (UTF-8), held against `maxSetBytes` */
  setBytes: number;
  /** touched in the window */
  active: boolean;
}

interface Series extends Acc {
  /** the map key: name, or name|tags */
  key: string;
  name: string;
  tags: string;
  kind: SeriesKind;
  /** the window (flush epoch) the accumulators belong to */
  epoch: number;
  /** the previous window's accumulators, set aside when a sample arrives before the flush reaches the series */
  stash: Acc | undefined;
  /** windows without a sample: after `idleWindows` of them the series expires */
  idle: number;
  /**
   * counters whose samples describe an interval (`|T<start>`): each amount spread evenly over the
   * interval's length from its arrival, [from, to) in epoch ms, taken by each window by overlap
   */
  spread: Array<{ from: number; to: number; amount: number }> | undefined;
  /** the arrival of the last interval sample, for the interval's length (see `intervalOf`) */
  lastArrival: number;
  /** gauges: the level holds, as an observation, until this time (its sample's arrival + its interval) */
  coverUntil: number;
  /** counter: cumulative sum since the series appeared; distribution: cumulative count */
  total: number;
  /** distribution: cumulative sum */
  totalSum: number;
}

/** A copy of `s` that shares no memory with the string it was sliced from. */
function own(s: string): string {
  return s === '' ? s : Buffer.from(s, 'utf8').toString('utf8');
}

/** The map key of a series: name, tags and kind (a name may carry several kinds at once). */
function seriesKey(name: string, tags: string, kind: SeriesKind): string {
  return `${kind[0]}${name}|${tags}`;
}

/**
 * The length (ms) of the interval a sample describes, from its `|T<start s>` and its arrival: the
 * time since the series' last interval sample when that agrees with the stamp (the stamp has whole
 * seconds only), else arrival − start. A stamp in the future or over an hour old describes no interval.
 */
function intervalOf(ser: { lastArrival: number }, ts: number, at: number): number {
  const stamped = at - ts * 1000;
  const since = at - ser.lastArrival;
  ser.lastArrival = at;
  if (!(stamped > 0 && stamped <= 3_600_000)) return 0;
  return since > 0 && since > stamped - 1500 && since <= stamped + 500 ? since : stamped;
}

const QS = QUANTILES.map((q) => q.q);
const toQuantiles = quantilesOf;

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
  /** windows a silent series is kept, and a silent gauge still reported (default 30: five minutes at 10 s) */
  idleWindows?: number;
  /** sketch relative accuracy (default 0.01) */
  alpha?: number;
  /** distinct members one set keeps per window (default 100,000); more are dropped and counted */
  maxSetMembers?: number;
  /** bytes of members one set keeps per window (default 1 MiB); more are dropped and counted */
  maxSetBytes?: number;
}

export const SET_DEFAULTS = { maxSetMembers: 100_000, maxSetBytes: 1 << 20 } as const;

/**
 * Per series (name + sorted tags), per window: counter → sum and rate; gauge → last, with `+`/`-`
 * deltas; ms, h, d → count, sum, min, max and quantiles from a DDSketch; set → distinct count.
 */
export class Aggregator {
  private series = new Map<string, Series>();
  /**
   * tags → the length (ms) of the window their sender reports (its `ekg.interval_ms` gauge): the
   * counters and gauges it sends with the same tags describe that interval, ending at their arrival
   */
  private intervals = new Map<string, { ms: number; epoch: number }>();
  private readonly maxSeries: number;
  private readonly idleWindows: number;
  private readonly alpha: number;
  private readonly maxSetMembers: number;
  private readonly maxSetBytes: number;
  private windowStart = Date.now();
  /** incremented as each flush begins */
  private epoch = 0;
  /** the flush under way, if any */
  private job: { step(n: number): boolean } | undefined;
  /** time the last flush spent summarising, without the turns of the event loop between its chunks */
  lastFlushBusyMs = 0;
  /** samples refused by the cardinality cap, since start */
  droppedCardinality = 0;
  /** always 0: a name may carry several kinds at once (kept for /api/v1/self and /metrics) */
  readonly droppedTypeClash = 0;
  /** set members refused by the per-set caps (members or bytes per window), since start */
  droppedSetMembers = 0;

  constructor(o: AggregatorOptions = {}) {
    this.maxSeries = o.maxSeries ?? 100_000;
    this.idleWindows = o.idleWindows ?? 30;
    this.alpha = o.alpha ?? 0.01;
    this.maxSetMembers = o.maxSetMembers ?? SET_DEFAULTS.maxSetMembers;
    this.maxSetBytes = o.maxSetBytes ?? SET_DEFAULTS.maxSetBytes;
  }

  get size(): number {
    return this.series.size;
  }

  /**
   * Adds one sample. `now` is its arrival (default: the clock, read only for samples that carry an
   * interval); a replay passes the recorded one.
   */
  add(s: Sample, now?: number): void {
    const kind = kindOf[s.type];
    // one series per name, tags and kind: a name sent as a counter and as a gauge keeps both
    const key = seriesKey(s.name, s.tags, kind);
    let ser = this.series.get(key);
    if (!ser) {
      if (this.series.size >= this.maxSeries) {
        this.droppedCardinality++;
        return;
      }
      // the parser's strings are slices of the packet: a series kept for minutes must not keep its
      // first packet (a 64 KiB TCP chunk, say) alive with it
      const name = own(s.name);
      const tags = own(s.tags);
      ser = {
        key: seriesKey(name, tags, kind),
        name,
        tags,
        kind,
        counter: 0,
        gauge: 0,
        sketch: undefined,
        set: undefined,
        setBytes: 0,
        active: false,
        epoch: this.epoch,
        stash: undefined,
        idle: 0,
        total: 0,
        totalSum: 0,
        spread: undefined,
        lastArrival: 0,
        coverUntil: 0,
      };
      this.series.set(ser.key, ser);
    } else if (ser.epoch !== this.epoch) {
      // a flush is under way and has not reached this series yet: its window is set aside
      ser.stash = { counter: ser.counter, gauge: ser.gauge, sketch: ser.sketch, set: ser.set, setBytes: ser.setBytes, active: ser.active };
      ser.counter = 0;
      ser.sketch = undefined;
      ser.set = undefined;
      ser.setBytes = 0;
      ser.epoch = this.epoch;
    }
    ser.active = true;
    ser.idle = 0;
    switch (kind) {
      case 'counter':
        if (s.ts !== undefined || this.intervals.size > 0) {
          const at = now ?? Date.now();
          const len = this.intervalFor(ser, s, at);
          if (len > 0) {
            ser.spread ??= [];
            ser.spread.push({ from: at, to: at + len, amount: s.value * s.weight });
            break;
          }
        }
        ser.counter += s.value * s.weight;
        break;
      case 'gauge':
        ser.gauge = s.delta ? ser.gauge + s.value : s.value;
        if (s.ts !== undefined || this.intervals.size > 0 || s.name.endsWith(INTERVAL_GAUGE)) {
          const at = now ?? Date.now();
          if (s.name === INTERVAL_GAUGE || s.name.endsWith(`.${INTERVAL_GAUGE}`)) {
            if (this.intervals.size < this.maxSeries && s.value > 0 && s.value <= 3_600_000)
              this.intervals.set(ser.tags, { ms: s.value, epoch: this.epoch });
          }
          ser.coverUntil = at + this.intervalFor(ser, s, at);
        }
        break;
      case 'distribution':
        ser.sketch ??= new Sketch(this.alpha);
        ser.sketch.add(s.value, s.weight);
        break;
      case 'set': {
        ser.set ??= new Set();
        const m = s.member ?? '';
        if (ser.set.has(m)) break;
        const size = Buffer.byteLength(m);
        if (ser.set.size >= this.maxSetMembers || ser.setBytes + size > this.maxSetBytes) {
          this.droppedSetMembers++;
          break;
        }
        // a copy: the parser's member is a slice of the packet, and would keep all of it alive
        ser.set.add(own(m));
        ser.setBytes += size;
        break;
      }
    }
  }

  /** The interval (ms) a counter or gauge sample describes: its sender's announced window, or its `|T` stamp's. */
  private intervalFor(ser: Series, s: Sample, at: number): number {
    const i = this.intervals.get(ser.tags);
    if (i !== undefined) {
      i.epoch = this.epoch;
      ser.lastArrival = at;
      return i.ms;
    }
    return s.ts === undefined ? 0 : intervalOf(ser, s.ts, at);
  }

  /** Closes the window: returns its series and starts the next; idle series expire. */
  flush(now = Date.now(), o: { final?: boolean } = {}): FlushResult {
    const t = performance.now();
    const job = this.beginFlush(now, o.final);
    while (!job.step(Number.POSITIVE_INFINITY));
    this.lastFlushBusyMs = performance.now() - t;
    return job.result;
  }

  /**
   * The same, off the receive path: the series map is swapped in O(1), so samples arriving during
   * the flush go to the new window, and the old one is drained in chunks with a turn of the event
   * loop between them, so the sockets are read while 100k series are summarised.
   */
  async flushAsync(now = Date.now(), chunk = 2048): Promise<FlushResult> {
    let t = performance.now();
    let busy = 0;
    const job = this.beginFlush(now);
    while (!job.step(chunk)) {
      busy += performance.now() - t;
      await new Promise<void>((r) => setImmediate(r));
      t = performance.now();
    }
    this.lastFlushBusyMs = busy + performance.now() - t;
    return job.result;
  }

  /** `final`: the last window before the agent stops takes what is left of every spread interval */
  private beginFlush(now: number, final = false): { result: FlushResult; step(n: number): boolean } {
    // a flush that begins while another is under way finishes that one first
    if (this.job) while (!this.job.step(Number.POSITIVE_INFINITY));
    const start = this.windowStart;
    const seconds = Math.max(0.001, (now - start) / 1000);
    this.windowStart = now;
    // the map stays as it is: series are read in place and samples that arrive meanwhile go to the
    // next window (see `add`), so a flush costs no re-hashing of 100k keys
    const epoch = ++this.epoch;
    // a sender silent for `idleWindows` windows is forgotten with its series
    for (const [tags, i] of this.intervals) if (epoch - i.epoch > this.idleWindows) this.intervals.delete(tags);
    const series = this.series;
    const it = series.values();
    const out: Flushed[] = [];
    const job = {
      result: { start, end: now, series: out },
      step: (n: number) => {
        for (let i = 0; i < n; i++) {
          const r = it.next();
          if (r.done) {
            if (this.job === job) this.job = undefined;
            return true;
          }
          const s = r.value;
          let acc: Acc;
          if (s.epoch === epoch) {
            // new during this flush, or already set aside by a sample of the next window
            if (!s.stash) continue;
            acc = s.stash;
            s.stash = undefined;
          } else {
            acc = s;
            s.epoch = epoch;
          }
          if (s.spread) {
            // the part of each interval sample that falls in this window [start, now)
            let keep = 0;
            for (const p of s.spread) {
              const a = Math.max(p.from, start);
              const b = Math.min(p.to, now);
              // the last window takes all that is left, whenever it ends
              if (final || b > a) {
                const part = final || p.to <= p.from ? p.amount : (p.amount * (b - a)) / (p.to - p.from);
                acc.counter += part;
                p.amount -= part;
                p.from = b;
                acc.active = true;
              }
              if (!final && p.to > now) s.spread[keep++] = p;
            }
            s.spread.length = keep;
            if (keep === 0) s.spread = undefined;
            else s.idle = 0;
          }
          // a gauge within its sample's interval is still an observation
          if (!acc.active && s.kind === 'gauge' && s.coverUntil > start && acc === s) {
            this.emit(s, acc, seconds, out);
            s.idle = 0;
            continue;
          }
          if (!acc.active) {
            // a silent counter, timer or set has nothing to say; a silent gauge keeps its level; a
            // series idle for `idleWindows` expires (a counter's total lives until then)
            if (acc === s && ++s.idle > this.idleWindows) {
              series.delete(s.key);
              continue;
            }
            if (s.kind !== 'gauge') continue;
          }
          this.emit(s, acc, seconds, out);
          if (!acc.active) (out[out.length - 1] as Flushed).carried = true;
          if (acc === s) s.active = false;
        }
        return false;
      },
    };
    this.job = job;
    return job;
  }

  private emit(s: Series, acc: Acc, seconds: number, out: Flushed[]): void {
    switch (s.kind) {
      case 'counter':
        s.total += acc.counter;
        out.push({ name: s.name, tags: s.tags, kind: 'counter', value: acc.counter, rate: acc.counter / seconds, total: s.total });
        acc.counter = 0;
        break;
      case 'gauge':
        out.push({ name: s.name, tags: s.tags, kind: 'gauge', value: acc.gauge });
        break;
      case 'set':
        out.push({ name: s.name, tags: s.tags, kind: 'set', value: acc.set?.size ?? 0 });
        acc.set = undefined;
        acc.setBytes = 0;
        break;
      case 'distribution': {
        const k = acc.sketch as Sketch;
        s.total += k.count;
        s.totalSum += k.sum;
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
          total: s.total,
          totalSum: s.totalSum,
          sketch: k,
        });
        acc.sketch = undefined;
        break;
      }
    }
  }
}
