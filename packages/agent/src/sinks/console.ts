import type { FlushResult } from '../aggregate/aggregator.js';
import type { Sink } from './sink.js';

/**
 * Says what the windows hold without filling a log: one summary line when the mix of series changes (and the first
 * window), one line when input stops, nothing while it stays the same or stays idle. `verbose` prints every series of
 * every window.
 */
export class ConsoleSink implements Sink {
  readonly name = 'console';
  private last: string | undefined;
  constructor(
    private readonly verbose = false,
    private readonly out: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
  ) {}

  write(w: FlushResult): void {
    const by = { counter: 0, gauge: 0, distribution: 0, set: 0 };
    // the summary counts the aggregator's columns: no object per series made for one line
    const c = w.cols;
    if (c) for (let i = 0; i < c.n; i++) by[c.kindName(i)]++;
    else for (const s of w.series) by[s.kind]++;
    const n = c ? c.n : w.series.length;
    const mix =
      n === 0
        ? 'idle: no input in this window'
        : `${n} series (${by.counter} counters, ${by.gauge} gauges, ${by.distribution} distributions, ${by.set} sets)`;
    if (this.verbose || mix !== this.last) {
      if (!(this.last === undefined && n === 0)) this.out(`${new Date(w.end).toISOString()} ${n ? 'flushed ' : ''}${mix}`);
      this.last = mix;
    }
    if (!this.verbose) return;
    for (const s of w.series) {
      const q = s.quantiles ? ` p50=${round(s.quantiles.p50)} p99=${round(s.quantiles.p99)} max=${round(s.max ?? 0)}` : '';
      this.out(
        `  ${s.name}${s.tags ? `{${s.tags}}` : ''} ${s.kind} ${round(s.value)}${s.rate !== undefined ? ` (${round(s.rate)}/s)` : ''}${q}`,
      );
    }
  }
}

const round = (n: number) => Math.round(n * 1000) / 1000;
