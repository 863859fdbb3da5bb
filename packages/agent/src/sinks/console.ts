import type { FlushResult } from '../aggregate/aggregator.js';
import type { Sink } from './sink.js';

/** Prints one summary line per window, or every series with `verbose`. */
export class ConsoleSink implements Sink {
  readonly name = 'console';
  constructor(
    private readonly verbose = false,
    private readonly out: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
  ) {}

  write(w: FlushResult): void {
    const by = { counter: 0, gauge: 0, distribution: 0, set: 0 };
    for (const s of w.series) by[s.kind]++;
    this.out(
      `${new Date(w.end).toISOString()} flushed ${w.series.length} series (${by.counter} counters, ${by.gauge} gauges, ${by.distribution} distributions, ${by.set} sets)`,
    );
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
