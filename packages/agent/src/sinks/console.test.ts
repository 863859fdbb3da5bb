import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FlushResult } from '../aggregate/aggregator.js';
import { ConsoleSink } from './console.js';

const win = (end: number, kinds: Array<'counter' | 'gauge'>): FlushResult =>
  ({ end, series: kinds.map((kind, i) => ({ name: `m${i}`, kind, value: 1 })) }) as unknown as FlushResult;

test('the console is quiet when idle and when nothing changes: one line per change of the series mix', () => {
  const lines: string[] = [];
  const sink = new ConsoleSink(false, (l) => lines.push(l));
  sink.write(win(1000, [])); // an agent that has heard nothing yet says nothing
  sink.write(win(2000, ['counter', 'gauge']));
  sink.write(win(3000, ['counter', 'gauge']));
  sink.write(win(4000, ['counter', 'gauge', 'gauge']));
  sink.write(win(5000, []));
  sink.write(win(6000, []));
  assert.deepEqual(
    lines.map((l) => l.replace(/^\S+ /, '')),
    [
      'flushed 2 series (1 counters, 1 gauges, 0 distributions, 0 sets)',
      'flushed 3 series (1 counters, 2 gauges, 0 distributions, 0 sets)',
      'idle: no input in this window',
    ],
  );
});
