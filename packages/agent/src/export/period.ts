/**
 * An exporter's period over several of the agent's windows (docs/time-model.md): counters summed,
 * sketches merged (so count, sum, min, max and percentiles cover the whole period), gauges' last
 * observed value within the period, sets' largest window (members are not kept past their window).
 * A level carried past its sample's interval counts only when the period has nothing newer.
 */
import { copyOf, type Flushed, type FlushResult } from '../aggregate/aggregator.js';
import { Sketch } from '../aggregate/sketch.js';
import { QUANTILES, quantilesOf } from '../model/series.js';

const QS = QUANTILES.map((q) => q.q);

export class Period {
  private acc = new Map<string, Flushed>();
  private start: number | undefined;
  private end = 0;
  /** ms of windows in the period so far */
  private elapsed = 0;

  /** `length`: ms the period spans (a post once the windows cover it, half a second early rather than a window late) */
  constructor(readonly length: number) {}

  /** Adds a window; returns the merged period once the windows cover it. */
  add(w: FlushResult): FlushResult | undefined {
    this.start ??= w.start;
    this.end = w.end;
    this.elapsed += Math.max(0, w.end - w.start);
    for (const f of w.series) this.merge(f);
    if (this.elapsed < this.length - 500) return undefined;
    return this.take();
  }

  /** The period so far (a partial one when the agent stops), undefined when it holds no window. */
  take(): FlushResult | undefined {
    if (this.start === undefined) return undefined;
    const seconds = Math.max(0.001, this.elapsed / 1000);
    const series = [...this.acc.values()];
    for (const f of series) {
      if (f.kind === 'counter') f.rate = f.value / seconds;
      else if (f.kind === 'distribution' && f.sketch) {
        const k = f.sketch;
        f.value = k.count;
        f.count = k.count;
        f.sum = k.sum;
        f.min = k.min;
        f.max = k.max;
        const q = k.quantiles(QS);
        f.quantiles = quantilesOf(q);
      }
    }
    const out = { start: this.end - this.elapsed, end: this.end, series };
    this.acc = new Map();
    this.start = undefined;
    this.elapsed = 0;
    return out;
  }

  private merge(f: Flushed): void {
    const key = `${f.kind}\n${f.name}\n${f.tags}`;
    const have = this.acc.get(key);
    if (!have) {
      // a copy: the window's objects belong to every sink, and the agent drops their sketches after the hand-off
      const copy = copyOf(f);
      if (f.sketch) {
        const k = new Sketch(f.sketch.alpha);
        k.merge(f.sketch);
        copy.sketch = k;
      }
      this.acc.set(key, copy);
      return;
    }
    switch (f.kind) {
      case 'counter':
        have.value += f.value;
        have.total = f.total;
        break;
      case 'gauge':
        // an observed level replaces a carried one; a carried one never replaces an observed one
        if (!f.carried || have.carried) {
          have.value = f.value;
          if (f.carried) have.carried = true;
          else delete have.carried;
        }
        break;
      case 'set':
        have.value = Math.max(have.value, f.value);
        break;
      case 'distribution':
        if (f.sketch && have.sketch) have.sketch.merge(f.sketch);
        else if (f.sketch) {
          const k = new Sketch(f.sketch.alpha);
          k.merge(f.sketch);
          have.sketch = k;
        }
        have.total = f.total;
        have.totalSum = f.totalSum;
        break;
    }
  }
}
