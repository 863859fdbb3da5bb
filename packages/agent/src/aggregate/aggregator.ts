import { INTERVAL_GAUGE } from 'ekg-vitals';
import { grown } from '../model/bytes.js';
import { MAX_INTERVAL_MS, type MetricType, type Sample } from '../model/sample.js';
import { QUANTILES, type Quantiles, quantilesOf, type SeriesKind } from '../model/series.js';
import { SketchArena } from './arena.js';
import { IdHash, seriesHash } from './id-hash.js';
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
  /** distribution: the sketch as `Sketch.encode` writes it, when the window holds it so (the store copies it as it is) */
  readonly sketchBytes?: Uint8Array;
  /**
   * a gauge that had no sample this window and whose last sample's interval has ended, reported at its
   * last level for exporters that keep levels (StatsD does): not a new observation, never stored
   */
  carried?: true;
  /**
   * counter or gauge: ms of the interval its last sample described (its sender's window, a push's
   * stated interval, the time between scrapes), when it described one: when the next one is due
   */
  interval?: number;
}

export interface FlushResult {
  /** window start and end, epoch ms */
  start: number;
  end: number;
  series: Flushed[];
  /** the aggregator's window column by column (its `series` are made from them only when read): what the store writes from */
  readonly cols?: WindowCols;
}

/** A series' accumulators for one window, set aside when a sample of the next window arrives before the flush reaches it. */
interface Stash {
  counter: number;
  gauge: number;
  sketch: Sketch | undefined;
  set: Set<string> | undefined;
  active: boolean;
}

/**
 * Interval samples one counter series holds at once. Past it, a new sample merges into the latest:
 * its amount is spread from that one's start to the later end (the total is exact; within the span
 * the time shape is approximate). A sender of `|T` lines at 1 kHz with 1 h intervals would otherwise
 * hold 3.6 million of them for one series.
 */
export const MAX_SPREADS = 64;

/** A counter's interval sample (`|T<start>`): its amount spread evenly over [from, to), epoch ms. */
interface Spread {
  from: number;
  to: number;
  amount: number;
}

/** A copy of `s` that shares no memory with the string it was sliced from. */
function own(s: string): string {
  return s === '' ? s : Buffer.from(s, 'utf8').toString('utf8');
}

/**
 * The length (ms) of the interval a sample describes, from its `|T<start s>`, its arrival and the
 * arrival of the series' last interval sample: the time since then when that agrees with the stamp
 * (the stamp has whole seconds only), else arrival − start. A stamp in the future or over an hour
 * old describes no interval.
 */
function intervalOf(last: number, ts: number, at: number): number {
  const stamped = at - ts * 1000;
  const since = at - last;
  if (!(stamped > 0 && stamped <= MAX_INTERVAL_MS)) return 0;
  return since > 0 && since > stamped - 1500 && since <= stamped + 500 ? since : stamped;
}

/** Series kinds as the state arrays hold them; FREE marks a slot whose series expired. */
const COUNTER = 0;
const GAUGE = 1;
const DISTRIBUTION = 2;
const SET = 3;
const FREE = 255;

const QS = QUANTILES.map((q) => q.q);

const kindOf: Record<MetricType, number> = { c: COUNTER, g: GAUGE, ms: DISTRIBUTION, h: DISTRIBUTION, d: DISTRIBUTION, s: SET };

/**
 * A window's numbers, series after series in one buffer (each kind's layout below), which its
 * `Flushed` objects read: a window of 100k series costs 100k small objects and one buffer, not
 * 100k objects each boxing five or eight doubles (~20 MB per window, promoted to the old
 * generation since a flush outlives many scavenges, and collected only minutes later).
 */
export interface Cols {
  f: Float64Array;
  /** the window's sketches, `Sketch.encodeInto`'s form back to back (where each lies: its numbers' last two slots) */
  sk: Uint8Array;
  alpha: number;
}

/** What every kind's window holds: its strings as fields (a copy by spread keeps them), its numbers in the window's buffer. */
abstract class ColsFlushed {
  abstract readonly kind: SeriesKind;
  // private: a spread copies the strings and kind, never the window's buffer
  readonly #c: Cols;
  readonly #o: number;

  constructor(
    public name: string,
    public tags: string,
    c: Cols,
    o: number,
  ) {
    this.#c = c;
    this.#o = o;
  }

  /** slot `i` of this series' numbers */
  protected v(i: number): number {
    return this.#c.f[this.#o + i] as number;
  }

  /** the window's sketch bytes from `at` to `end` */
  protected bytes(at: number, end: number): Uint8Array {
    return this.#c.sk.subarray(at, end);
  }

  protected get alpha(): number {
    return this.#c.alpha;
  }
}

/** counter: value, rate, total, interval */
const COUNTER_SLOTS = 4;
class CounterFlushed extends ColsFlushed implements Flushed {
  readonly kind = 'counter' as const;
  get value(): number {
    return this.v(0);
  }
  get rate(): number {
    return this.v(1);
  }
  get total(): number {
    return this.v(2);
  }
  get interval(): number | undefined {
    return this.v(3) || undefined;
  }
}

/** gauge: value, interval, carried (1) */
const GAUGE_SLOTS = 3;
class GaugeFlushed extends ColsFlushed implements Flushed {
  readonly kind = 'gauge' as const;
  get value(): number {
    return this.v(0);
  }
  get interval(): number | undefined {
    return this.v(1) || undefined;
  }
  get carried(): true | undefined {
    return this.v(2) === 1 ? true : undefined;
  }
}

/** set: value */
const SET_SLOTS = 1;
class SetFlushed extends ColsFlushed implements Flushed {
  readonly kind = 'set' as const;
  get value(): number {
    return this.v(0);
  }
}

/**
 * distribution: count, sum, min, max, total, totalSum, and where its sketch's bytes start and end in
 * the window's. Its sketch is decoded from them, and its quantiles computed, only when a sink reads
 * them (the store copies the bytes and never asks): a window of 50k distributions holds no sketch
 * object and costs no quantile walk unless /metrics, the console or an exporter wants one.
 */
const DIST_SLOTS = 8;
class DistributionFlushed extends ColsFlushed implements Flushed {
  readonly kind = 'distribution' as const;
  #quantiles: Quantiles | undefined;
  /** decoded on first read (or set by a sink), until `Aggregator.release` */
  #sketch: Sketch | undefined;

  get sketch(): Sketch | undefined {
    this.#sketch ??= Sketch.decode(this.sketchBytes, this, this.alpha);
    return this.#sketch;
  }

  set sketch(k: Sketch | undefined) {
    this.#sketch = k;
  }

  /** the sketch as `Sketch.encode` writes it */
  get sketchBytes(): Uint8Array {
    return this.bytes(this.v(6), this.v(7));
  }

  get value(): number {
    return this.v(0);
  }
  get count(): number {
    return this.v(0);
  }
  get sum(): number {
    return this.v(1);
  }
  get min(): number {
    return this.v(2);
  }
  get max(): number {
    return this.v(3);
  }
  get total(): number {
    return this.v(4);
  }
  get totalSum(): number {
    return this.v(5);
  }

  get quantiles(): Quantiles | undefined {
    // a sketch a sink decoded is read; else one is decoded for the walk and not kept
    this.#quantiles ??= quantilesOf((this.#sketch ?? Sketch.decode(this.sketchBytes, this, this.alpha)).quantiles(QS));
    return this.#quantiles;
  }

  set quantiles(q: Quantiles | undefined) {
    this.#quantiles = q;
  }

  /** Every sink has had the window: a sketch decoded for one is let go (the bytes stay). */
  release(): void {
    this.#sketch = undefined;
  }
}

/** numbers per series in a window's buffer, by kind (COUNTER, GAUGE, DISTRIBUTION, SET) */
const SLOTS = [COUNTER_SLOTS, GAUGE_SLOTS, DIST_SLOTS, SET_SLOTS];

/** A flush's window as it is built. */
interface Win {
  c: Cols;
  /** numbers in use */
  n: number;
  /** sketch bytes in use */
  skn: number;
  out: WindowCols;
}

/** The kinds as `WindowCols.kinds` holds them. */
export const KIND_COUNTER = COUNTER;
export const KIND_GAUGE = GAUGE;
export const KIND_DISTRIBUTION = DISTRIBUTION;
export const KIND_SET = SET;
const KIND_NAMES: SeriesKind[] = ['counter', 'gauge', 'distribution', 'set'];

/**
 * A closed window's series, column by column: its strings in two arrays (the aggregator's own, shared),
 * its numbers in the window's buffer. A window of 100k series costs no object per series: the store
 * reads these columns, and `series` objects are made only for a sink that reads them.
 */
export class WindowCols {
  /** series in the window */
  n = 0;
  /** (sized as the last window's, then cut to `n` by `done`: no growth step by step) */
  names: string[];
  tags: string[];
  kinds: Uint8Array;
  /** where each series' numbers start in the window's buffer */
  offs: Uint32Array;

  constructor(
    /** the window's numbers and sketch bytes */
    readonly c: Cols,
    room: number,
  ) {
    this.kinds = new Uint8Array(room);
    this.offs = new Uint32Array(room);
    this.names = new Array<string>(room).fill('');
    this.tags = new Array<string>(room).fill('');
  }

  /** numbers and sketch bytes the window uses in its buffers (set when it closes) */
  used = 0;
  skUsed = 0;

  /** The window is closed: its arrays keep only what it uses. */
  done(used: number, skUsed: number): void {
    this.names.length = this.n;
    this.tags.length = this.n;
    this.used = used;
    this.skUsed = skUsed;
  }

  /** A copy in buffers of its own (for a window kept after the aggregator reuses these). */
  copy(): WindowCols {
    const c = new WindowCols({ f: this.c.f.slice(0, this.used), sk: this.c.sk.slice(0, this.skUsed), alpha: this.c.alpha }, 0);
    c.n = this.n;
    c.names = this.names.slice();
    c.tags = this.tags.slice();
    c.kinds = this.kinds.slice(0, this.n);
    c.offs = this.offs.slice(0, this.n);
    c.used = this.used;
    c.skUsed = this.skUsed;
    return c;
  }

  add(name: string, tags: string, kind: number, at: number): void {
    const i = this.n++;
    if (i === this.kinds.length) {
      this.kinds = grown(this.kinds, i * 2);
      this.offs = grown(this.offs, i * 2);
    }
    if (i < this.names.length) {
      this.names[i] = name;
      this.tags[i] = tags;
    } else {
      this.names.push(name);
      this.tags.push(tags);
    }
    this.kinds[i] = kind;
    this.offs[i] = at;
  }

  kindName(i: number): SeriesKind {
    return KIND_NAMES[this.kinds[i] as number] as SeriesKind;
  }

  /** counter: sum; gauge: level; set: members; distribution: count */
  value(i: number): number {
    return this.c.f[this.offs[i] as number] as number;
  }

  /** a gauge carried past its sample's interval (not an observation) */
  carried(i: number): boolean {
    return this.kinds[i] === GAUGE && this.c.f[(this.offs[i] as number) + 2] === 1;
  }

  /** counter or gauge: ms its last sample described, else 0 */
  interval(i: number): number {
    const k = this.kinds[i];
    return k === COUNTER
      ? (this.c.f[(this.offs[i] as number) + 3] as number)
      : k === GAUGE
        ? (this.c.f[(this.offs[i] as number) + 1] as number)
        : 0;
  }

  /** distribution: slot `j` of count, sum, min, max, total, totalSum, sketch start, sketch end */
  dist(i: number, j: number): number {
    return this.c.f[(this.offs[i] as number) + j] as number;
  }

  /** The series as objects, reading their numbers from the window's buffer. */
  objects(): Flushed[] {
    const out: Flushed[] = new Array(this.n);
    const c = this.c;
    for (let i = 0; i < this.n; i++) {
      const name = this.names[i] as string;
      const tags = this.tags[i] as string;
      const at = this.offs[i] as number;
      switch (this.kinds[i]) {
        case COUNTER:
          out[i] = new CounterFlushed(name, tags, c, at);
          break;
        case GAUGE:
          out[i] = new GaugeFlushed(name, tags, c, at);
          break;
        case SET:
          out[i] = new SetFlushed(name, tags, c, at);
          break;
        default:
          out[i] = new DistributionFlushed(name, tags, c, at);
      }
    }
    return out;
  }
}

/** A closed window as the aggregator returns it: `series` made from its columns on first read. */
class ColsWindow implements FlushResult {
  #series: Flushed[] | undefined;
  // private, read through a getter: a copy made by spread (`{ ...w, series: some }`) has no columns, and
  // is written from its series
  #cols: WindowCols | undefined;

  constructor(
    readonly start: number,
    readonly end: number,
    cols: WindowCols,
  ) {
    this.#cols = cols;
  }

  get cols(): WindowCols | undefined {
    return this.#cols;
  }

  get series(): Flushed[] {
    this.#series ??= (this.#cols as WindowCols).objects();
    return this.#series;
  }

  /** series set by hand replace the columns */
  set series(s: Flushed[]) {
    this.#series = s;
    this.#cols = undefined;
  }

  /** the objects made so far, if any */
  get made(): Flushed[] | undefined {
    return this.#series;
  }

  /**
   * The agent is done with the window: its buffers, unless objects were made that read them, go back
   * to the aggregator for a later window (the window then reads as empty).
   */
  retire(): Cols | undefined {
    const cols = this.#cols;
    this.#cols = undefined;
    // objects made from the buffers keep them (they stay valid); else the window reads as empty
    if (this.#series !== undefined) return undefined;
    this.#series = [];
    return cols?.c;
  }
}

/**
 * A copy of a window that stays valid after the aggregator reuses the window's buffers (`retire`): a
 * store that holds a window it could not write keeps one. Other windows are returned as they are.
 */
export function keepable(w: FlushResult): FlushResult {
  return w instanceof ColsWindow && w.cols ? new ColsWindow(w.start, w.end, w.cols.copy()) : w;
}

const FIELDS = ['rate', 'total', 'totalSum', 'count', 'sum', 'min', 'max', 'sketch', 'carried', 'interval'] as const;

/**
 * A plain copy of a window's series, every field an own property: for a sink that keeps or changes
 * what it was given (a window's objects read their numbers from the window and define them as
 * getters, which a spread does not copy). Quantiles are left out: they are computed from the sketch.
 */
export function copyOf(f: Flushed): Flushed {
  const c: Flushed = { name: f.name, tags: f.tags, kind: f.kind, value: f.value };
  const to = c as unknown as Record<string, unknown>;
  for (const k of FIELDS) if (f[k] !== undefined) to[k] = f[k];
  return c;
}

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
 *
 * Series state is held column by column, indexed by a series id (a slot, reused once its series
 * expires): typed arrays for the numbers, plain arrays for the few references (name, tags, the
 * window's sketch or set). A series costs its name once, its tags string shared with the others
 * that carry it, ~14 bytes of hash table (`IdHash`: no key string, no `Map` entry) and ~70 bytes of
 * columns, not an object with a dozen boxed fields.
 */
export class Aggregator {
  /** (kind, name, tags) → series id */
  private readonly ids = new IdHash();
  /** tags strings, shared by every series that carries them (most of an app's series share one), with their use counts */
  private readonly tagRefs = new Map<string, { tags: string; n: number }>();
  private cap = 0;
  /** ids in use are below `hi` */
  private hi = 0;
  /** expired ids, reused first */
  private free: number[] = [];
  private live = 0;
  /** numbers the live series take in a window's buffer: a window needs at most this many */
  private liveSlots = 0;
  private kind = new Uint8Array(0);
  private names: string[] = [];
  private tagsOf: string[] = [];
  /** the window (flush epoch) the accumulators belong to */
  private epochs = new Uint32Array(0);
  /** touched in the window */
  private active = new Uint8Array(0);
  /** windows without a sample: after `idleWindows` of them the series expires */
  private idle = new Uint32Array(0);
  /*
   * The numbers, by kind. A kind uses some of them only, so columns that no kind uses together are one
   * array under two or three names (`grow`): 4 columns of 8 bytes a series, not 8 (3.2 MB at 100k series).
   *   counter, gauge, setBytes · total, coverUntil · totalSum, lastArrival · interval
   * A write through one name is a write through the others: only for the series' own kind.
   */
  /** counter: the window's sum */
  private counter = new Float64Array(0);
  /** gauge: its level */
  private gauge = this.counter;
  /** set: bytes of its members (UTF-8), held against `maxSetBytes` */
  private setBytes = this.counter;
  /** counter: cumulative sum since the series appeared; distribution: cumulative count */
  private total = new Float64Array(0);
  /** gauge: the level holds, as an observation, until this time (its sample's arrival + its interval) */
  private coverUntil = this.total;
  /** distribution: cumulative sum */
  private totalSum = new Float64Array(0);
  /** counter, gauge: the arrival of the last interval sample, for the interval's length (see `intervalOf`) */
  private lastArrival = this.totalSum;
  /** counter, gauge: ms of the interval the last sample described (0: a moment) */
  private interval = new Float64Array(0);
  /**
   * distribution: its slot in the arena, whose columns hold distributions only (a slot of their own for
   * each of 100k series cost 49 bytes a series; half are distributions here)
   */
  private sketchSlot = this.interval;
  /** arena slots in use are below `slotsHi`; freed ones are reused first */
  private slotsHi = 0;
  private slotsCap = 0;
  private freeSlots: number[] = [];
  /** the distributions' sketches of the window being filled (and, during a flush, of the one it closes) */
  private readonly arena: SketchArena;
  /** sets' members this window, by id (a Map: most series are not sets, and an array held a slot for each) */
  private readonly sets = new Map<number, Set<string>>();
  /** counters whose samples describe an interval, taken by each window by overlap */
  private spreads = new Map<number, Spread[]>();
  /** interval samples merged into another for `MAX_SPREADS` */
  spreadsMerged = 0;
  /** sketch bytes the last window held: the next one's buffer starts at that size */
  private lastSketchBytes = 0;
  /** the previous window's accumulators of series a sample reached before the flush under way did */
  private stash = new Map<number, Stash>();
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
  /** buffers of windows the agent retired, for the next windows */
  private spare: Cols[] = [];
  /** series the last window held */
  private lastCount = 0;
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
    this.arena = new SketchArena(this.alpha);
  }

  get size(): number {
    return this.live;
  }

  /** Room for `n` series in every column. */
  private grow(n: number): void {
    const cap = Math.min(Math.max(n, this.cap * 2, 1024), Math.max(n, this.maxSeries));
    this.kind = grown(this.kind, cap);
    this.epochs = grown(this.epochs, cap);
    this.active = grown(this.active, cap);
    this.idle = grown(this.idle, cap);
    // one column for what no kind holds together (see the fields)
    this.counter = this.gauge = this.setBytes = grown(this.counter, cap);
    this.total = this.coverUntil = grown(this.total, cap);
    this.totalSum = this.lastArrival = grown(this.totalSum, cap);
    this.interval = this.sketchSlot = grown(this.interval, cap);
    this.ids.grow(cap);
    this.cap = cap;
  }

  /** A new series' id, or -1 past the cardinality cap. */
  private create(kind: number, h: number, name: string, tags: string): number {
    if (this.live >= this.maxSeries) return -1;
    let id = this.free.pop();
    if (id === undefined) {
      if (this.hi === this.cap) this.grow(this.hi + 1);
      id = this.hi++;
    }
    this.live++;
    this.liveSlots += SLOTS[kind] as number;
    // the parser's strings are slices of the packet: a series kept for minutes must not keep its
    // first packet (a 64 KiB TCP chunk, say) alive with it
    let t = tags;
    if (tags !== '') {
      let ref = this.tagRefs.get(tags);
      if (ref === undefined) {
        ref = { tags: own(tags), n: 0 };
        this.tagRefs.set(ref.tags, ref);
      }
      ref.n++;
      t = ref.tags;
    }
    this.names[id] = own(name);
    this.tagsOf[id] = t;
    this.kind[id] = kind;
    this.ids.add(id, h);
    this.epochs[id] = this.epoch;
    this.active[id] = 0;
    this.idle[id] = 0;
    // (also gauge, setBytes, coverUntil and lastArrival: the same columns)
    this.counter[id] = 0;
    this.total[id] = 0;
    this.totalSum[id] = 0;
    this.interval[id] = 0;
    if (kind === DISTRIBUTION) this.sketchSlot[id] = this.newSlot();
    this.sets.delete(id);
    return id;
  }

  /** A free slot in the arena, holding no sketch. */
  private newSlot(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) return free;
    if (this.slotsHi === this.slotsCap) {
      this.slotsCap = Math.min(Math.max(this.slotsCap * 2, 1024), Math.max(this.slotsHi + 1, this.maxSeries));
      this.arena.grow(this.slotsCap);
    }
    return this.slotsHi++;
  }

  /** The id of series (kind, name, tags) whose hash is `h`, or -1. */
  private find(kind: number, h: number, name: string, tags: string): number {
    const t = this.ids;
    for (let i = t.start(h); ; i = t.next(i)) {
      const id = t.id(i);
      if (id < 0 || (t.hashes[id] === h && this.kind[id] === kind && this.names[id] === name && this.tagsOf[id] === tags)) return id;
    }
  }

  /** The series expires: its id is free for the next new one. */
  private expire(id: number): void {
    const tags = this.tagsOf[id] as string;
    this.ids.delete(id);
    if (tags !== '') {
      const ref = this.tagRefs.get(tags);
      if (ref && --ref.n === 0) this.tagRefs.delete(tags);
    }
    this.liveSlots -= SLOTS[this.kind[id] as number] as number;
    this.names[id] = '';
    this.tagsOf[id] = '';
    if (this.kind[id] === DISTRIBUTION) {
      const slot = this.sketchSlot[id] as number;
      this.arena.done(slot);
      this.freeSlots.push(slot);
    }
    this.sets.delete(id);
    this.spreads.delete(id);
    this.kind[id] = FREE;
    this.free.push(id);
    this.live--;
  }

  /**
   * Adds one sample. `now` is its arrival (default: the clock, read only for samples that carry an
   * interval); a replay passes the recorded one.
   */
  add(s: Sample, now?: number): void {
    const kind = kindOf[s.type];
    // one series per name, tags and kind: a name sent as a counter and as a gauge keeps both
    const h = seriesHash(kind, s.name, s.tags);
    let id = this.find(kind, h, s.name, s.tags);
    if (id < 0) {
      id = this.create(kind, h, s.name, s.tags);
      if (id < 0) {
        this.droppedCardinality++;
        return;
      }
    } else if (this.epochs[id] !== this.epoch) {
      // a flush is under way and has not reached this series yet: its window is set aside
      this.stash.set(id, {
        counter: this.counter[id] as number,
        gauge: this.gauge[id] as number,
        sketch:
          kind === DISTRIBUTION && this.arena.has(this.sketchSlot[id] as number)
            ? this.arena.take(this.sketchSlot[id] as number)
            : undefined,
        set: kind === SET ? this.sets.get(id) : undefined,
        active: this.active[id] === 1,
      });
      // (a counter's sum and a set's bytes start again; a gauge keeps its level: one column)
      if (kind !== GAUGE) this.counter[id] = 0;
      this.sets.delete(id);
      this.epochs[id] = this.epoch;
    }
    this.active[id] = 1;
    this.idle[id] = 0;
    switch (kind) {
      case COUNTER: {
        if (s.ts !== undefined || s.interval !== undefined || this.intervals.size > 0) {
          const at = now ?? Date.now();
          const len = this.intervalFor(id, s, at);
          if (len > 0) {
            let sp = this.spreads.get(id);
            if (sp === undefined) {
              sp = [];
              this.spreads.set(id, sp);
            }
            const amount = s.value * s.weight;
            const last = sp.length >= MAX_SPREADS ? sp[sp.length - 1] : undefined;
            if (last !== undefined) {
              last.amount += amount;
              last.to = Math.max(last.to, at + len);
              this.spreadsMerged++;
            } else sp.push({ from: at, to: at + len, amount });
            break;
          }
        }
        this.counter[id] = (this.counter[id] as number) + s.value * s.weight;
        break;
      }
      case GAUGE:
        this.gauge[id] = s.delta ? (this.gauge[id] as number) + s.value : s.value;
        if (s.ts !== undefined || s.interval !== undefined || this.intervals.size > 0 || s.name.endsWith(INTERVAL_GAUGE)) {
          const at = now ?? Date.now();
          if (s.name === INTERVAL_GAUGE || s.name.endsWith(`.${INTERVAL_GAUGE}`)) {
            if (this.intervals.size < this.maxSeries && s.value > 0 && s.value <= MAX_INTERVAL_MS)
              this.intervals.set(this.tagsOf[id] as string, { ms: s.value, epoch: this.epoch });
          }
          this.coverUntil[id] = at + this.intervalFor(id, s, at);
        }
        break;
      case DISTRIBUTION:
        this.arena.add(this.sketchSlot[id] as number, s.value, s.weight);
        break;
      default: {
        let set = this.sets.get(id);
        if (set === undefined) {
          set = new Set();
          this.sets.set(id, set);
        }
        const m = s.member ?? '';
        if (set.has(m)) break;
        const size = Buffer.byteLength(m);
        if (set.size >= this.maxSetMembers || (this.setBytes[id] as number) + size > this.maxSetBytes) {
          this.droppedSetMembers++;
          break;
        }
        // a copy: the parser's member is a slice of the packet, and would keep all of it alive
        set.add(own(m));
        this.setBytes[id] = (this.setBytes[id] as number) + size;
        break;
      }
    }
  }

  /**
   * The interval (ms) a counter or gauge sample describes: the one it states (a push, a scrape), its
   * sender's announced window, or its `|T` stamp's.
   */
  private intervalFor(id: number, s: Sample, at: number): number {
    let len = 0;
    const i = this.intervals.get(this.tagsOf[id] as string);
    if (s.interval !== undefined && s.interval > 0 && s.interval <= MAX_INTERVAL_MS) len = s.interval;
    else if (i !== undefined) {
      i.epoch = this.epoch;
      len = i.ms;
    } else if (s.ts !== undefined) len = intervalOf(this.lastArrival[id] as number, s.ts, at);
    else {
      this.interval[id] = 0;
      return 0;
    }
    this.lastArrival[id] = at;
    this.interval[id] = len;
    return len;
  }

  /**
   * For the agent, once every sink has had window `w` (a sink keeps a sketch only for its `write` call:
   * sinks/sink.ts): sketches decoded for a sink are let go. The window keeps its sketches' bytes, where a
   * distribution's quantiles are read from if asked later, by /metrics say.
   */
  release(w: FlushResult): void {
    // a window whose objects no sink asked for has no decoded sketch to let go
    const made = w instanceof ColsWindow ? w.made : w.series;
    if (made) for (const f of made) if (f instanceof DistributionFlushed) f.release();
  }

  /**
   * For the agent, once it is done with window `w` (the window after it has been handed to every sink
   * and has replaced it as the last one): its buffers are reused by the next window, so a flush at 100k
   * series allocates no new 5–7 MB of them (dropped ones wait for a full collection, tens of MB of RSS).
   */
  retire(w: FlushResult): void {
    if (!(w instanceof ColsWindow)) return;
    const c = w.retire();
    if (c && this.spare.length < 2) this.spare.push(c);
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
   * The same, off the receive path: samples arriving during the flush go to the new window, and the
   * old one is drained in chunks with a turn of the event loop between them, so the sockets are read
   * while 100k series are summarised.
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

  /** Arena slot `id`'s sketch (or `k` set aside) into the window's sketch bytes: where they start and end. */
  private packSketch(w: Win, id: number, k: Sketch | undefined): [number, number] {
    const at = w.skn;
    let end = k ? k.encodeInto(w.c.sk, at) : this.arena.encodeInto(id, w.c.sk, at);
    while (end < 0) {
      const next = new Uint8Array(Math.ceil(w.c.sk.length * 1.5));
      next.set(w.c.sk.subarray(0, at));
      w.c.sk = next;
      end = k ? k.encodeInto(w.c.sk, at) : this.arena.encodeInto(id, w.c.sk, at);
    }
    w.skn = end;
    return [at, end];
  }

  /** Room for `n` numbers in the window's buffer: where they start. */
  private slots(w: Win, n: number): number {
    const at = w.n;
    if (at + n > w.c.f.length) {
      const next = new Float64Array(Math.max(at + n, w.c.f.length * 2));
      next.set(w.c.f);
      w.c.f = next;
    }
    w.n = at + n;
    return at;
  }

  /** `final`: the last window before the agent stops takes what is left of every spread interval */
  private beginFlush(now: number, final = false): { result: FlushResult; step(n: number): boolean } {
    // a flush that begins while another is under way finishes that one first
    if (this.job) while (!this.job.step(Number.POSITIVE_INFINITY));
    const start = this.windowStart;
    const seconds = Math.max(0.001, (now - start) / 1000);
    this.windowStart = now;
    // series are read in place and samples that arrive meanwhile go to the next window (see `add`)
    const epoch = ++this.epoch;
    // a sender silent for `idleWindows` windows is forgotten with its series
    for (const [tags, i] of this.intervals) if (epoch - i.epoch > this.idleWindows) this.intervals.delete(tags);
    // series made during the flush belong to the next window: the ids to visit are those in use now
    const end = this.hi;
    let id = 0;
    // a retired window's buffers, else new ones: numbers for every live series (series made during the
    // flush belong to the next window, so it never grows), sketch bytes as the last window's and a tenth.
    // A retired buffer far larger than needed (the first window's, grown step by step) is let go
    const spare = this.spare.pop();
    const need = Math.max(1024, this.liveSlots);
    const skNeed = Math.max(1024, Math.ceil(this.lastSketchBytes * 1.1));
    const fits = (have: number | undefined, n: number) => have !== undefined && have >= n && have <= n * 1.25 + 1024;
    const c: Cols = {
      f: spare && fits(spare.f.length, need) ? spare.f : new Float64Array(need),
      sk: spare && fits(spare.sk.length, this.lastSketchBytes) ? spare.sk : new Uint8Array(skNeed),
      alpha: this.alpha,
    };
    const out = new WindowCols(c, Math.max(1024, this.lastCount));
    const w: Win = { c, n: 0, skn: 0, out };
    // the window's sketches stay on their side of the arena until closed; the next window's fill the other
    this.arena.swap();
    const job = {
      result: new ColsWindow(start, now, out),
      step: (n: number) => {
        const stop = Math.min(end, id + n);
        for (; id < stop; id++) this.close(id, epoch, start, now, seconds, final, w);
        if (id < end) return false;
        this.lastSketchBytes = w.skn;
        this.lastCount = out.n;
        out.done(w.n, w.skn);
        this.arena.flushed();
        // most of the room unused (series expired): the window keeps only what it uses (some slack is
        // kept: the buffers are reused by later windows, which grow them by doubling)
        if (w.c.f.length > 1024 && w.n < w.c.f.length * 0.25) w.c.f = w.c.f.slice(0, w.n);
        if (w.c.sk.length > 1024 && w.skn < w.c.sk.length * 0.25) w.c.sk = w.c.sk.slice(0, w.skn);
        if (this.job === job) this.job = undefined;
        return true;
      },
    };
    this.job = job;
    return job;
  }

  /** Series `id`'s part of the window that ends at `now`, into `out`; an idle series expires. */
  private close(id: number, epoch: number, start: number, now: number, seconds: number, final: boolean, w: Win): void {
    const kind = this.kind[id] as number;
    if (kind === FREE) return;
    let counter: number;
    let gauge: number;
    let sketch: Sketch | undefined;
    let set: Set<string> | undefined;
    let active: boolean;
    // `mine`: the accumulators are the series' own, not a stash set aside for this window
    let mine = true;
    if (this.epochs[id] === epoch) {
      // new during this flush, or already set aside by a sample of the next window
      const st = this.stash.get(id);
      if (st === undefined) return;
      this.stash.delete(id);
      ({ counter, gauge, sketch, set, active } = st);
      mine = false;
    } else {
      counter = this.counter[id] as number;
      gauge = this.gauge[id] as number;
      sketch = undefined;
      set = kind === SET ? this.sets.get(id) : undefined;
      active = this.active[id] === 1;
      this.epochs[id] = epoch;
    }
    // most agents have no interval samples at all: no lookup per series then
    const spread = this.spreads.size > 0 ? this.spreads.get(id) : undefined;
    if (spread !== undefined) {
      // the part of each interval sample that falls in this window [start, now)
      let keep = 0;
      for (const p of spread) {
        const a = Math.max(p.from, start);
        const b = Math.min(p.to, now);
        // the last window takes all that is left, whenever it ends
        if (final || b > a) {
          const part = final || p.to <= p.from ? p.amount : (p.amount * (b - a)) / (p.to - p.from);
          counter += part;
          p.amount -= part;
          p.from = b;
          active = true;
        }
        if (!final && p.to > now) spread[keep++] = p;
      }
      spread.length = keep;
      if (keep === 0) this.spreads.delete(id);
      else this.idle[id] = 0;
    }
    let carried = false;
    if (!active) {
      // a gauge within its sample's interval is still an observation
      if (kind === GAUGE && mine && (this.coverUntil[id] as number) > start) this.idle[id] = 0;
      else {
        // a silent counter, timer or set has nothing to say; a silent gauge keeps its level; a
        // series idle for `idleWindows` expires (a counter's total lives until then)
        if (mine) {
          const idle = (this.idle[id] as number) + 1;
          this.idle[id] = idle;
          if (idle > this.idleWindows) {
            this.expire(id);
            return;
          }
        }
        if (kind !== GAUGE) return;
        carried = true;
      }
    }
    const name = this.names[id] as string;
    const tags = this.tagsOf[id] as string;
    const at = this.slots(w, SLOTS[kind] as number);
    const b = w.c.f;
    switch (kind) {
      case COUNTER: {
        const total = (this.total[id] as number) + counter;
        this.total[id] = total;
        b[at] = counter;
        b[at + 1] = counter / seconds;
        b[at + 2] = total;
        b[at + 3] = this.interval[id] as number;
        if (mine) this.counter[id] = 0;
        break;
      }
      case GAUGE:
        b[at] = gauge;
        b[at + 1] = carried ? 0 : (this.interval[id] as number);
        b[at + 2] = carried ? 1 : 0;
        break;
      case SET:
        b[at] = set?.size ?? 0;
        if (mine) {
          this.sets.delete(id);
          this.setBytes[id] = 0;
        }
        break;
      default: {
        // its own sketch (in the arena), or the one set aside for this window when the next one began
        const a = this.arena;
        const slot = this.sketchSlot[id] as number;
        if (mine) a.settle(slot);
        const count = mine ? (a.count[slot] as number) : (sketch as Sketch).count;
        const sum = mine ? (a.sum[slot] as number) : (sketch as Sketch).sum;
        const total = (this.total[id] as number) + count;
        const totalSum = (this.totalSum[id] as number) + sum;
        this.total[id] = total;
        this.totalSum[id] = totalSum;
        b[at] = count;
        b[at + 1] = sum;
        b[at + 2] = mine ? (a.min[slot] as number) : (sketch as Sketch).min;
        b[at + 3] = mine ? (a.max[slot] as number) : (sketch as Sketch).max;
        b[at + 4] = total;
        b[at + 5] = totalSum;
        const [from, to] = this.packSketch(w, slot, mine ? undefined : sketch);
        // (the window's buffer may have been replaced meanwhile: read it again)
        w.c.f[at + 6] = from;
        w.c.f[at + 7] = to;
        if (mine) a.done(slot);
        break;
      }
    }
    w.out.add(name, tags, kind, at);
    if (mine) this.active[id] = 0;
  }
}
