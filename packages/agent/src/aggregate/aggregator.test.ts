import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePacket } from '../ingest/statsd-parse.js';
import { Aggregator } from './aggregator.js';

function feed(agg: Aggregator, text: string) {
  parsePacket(text, { sample: (s) => agg.add(s), bad: () => {} });
}

test('counter sum and rate, gauge last and deltas, distribution summary, set distinct count', () => {
  const agg = new Aggregator();
  feed(agg, 'c:1|c\nc:2|c\nc:1|c|@0.5\ng:5|g\ng:+2|g\ng:-1|g\nt:10|ms\nt:20|ms\nt:30|ms\ns:a|s\ns:b|s\ns:a|s');
  const start = Date.now();
  const w = agg.flush(start + 2000);
  const by = Object.fromEntries(w.series.map((s) => [s.name, s]));
  assert.equal(by.c?.value, 5);
  assert.ok(Math.abs((by.c?.rate ?? 0) - 2.5) < 0.1);
  assert.equal(by.g?.value, 6);
  assert.equal(by.t?.count, 3);
  assert.equal(by.t?.sum, 60);
  assert.equal(by.t?.min, 10);
  assert.equal(by.t?.max, 30);
  assert.ok(Math.abs((by.t?.quantiles?.p50 ?? 0) - 20) < 0.3);
  assert.equal(by.s?.value, 2);
});

test('tags make separate series; a silent gauge is carried, a silent counter is not', () => {
  const agg = new Aggregator({ idleWindows: 1 });
  feed(agg, 'r:1|c|#a:1\nr:1|c|#a:2\nlvl:3|g');
  assert.equal(agg.flush().series.length, 3);
  const second = agg.flush();
  assert.deepEqual(
    second.series.map((s) => [s.name, s.value]),
    [['lvl', 3]],
  );
  assert.equal(agg.flush().series.length, 0, 'expired after idleWindows');
  assert.equal(agg.size, 0);
});

test('the cardinality cap keeps memory bounded and counts what it drops', () => {
  const agg = new Aggregator({ maxSeries: 100 });
  for (let i = 0; i < 1000; i++) feed(agg, `m${i}:1|c`);
  assert.equal(agg.size, 100);
  assert.equal(agg.droppedCardinality, 900);
});

test('a name may carry several kinds at once: a counter and a gauge of one name are both kept', () => {
  const agg = new Aggregator();
  feed(agg, 'GC.count:7|c\nGC.count:1200|g\nGC.count:3|c');
  const w = agg.flush();
  assert.deepEqual(w.series.map((s) => [s.name, s.kind, s.value]).sort(), [
    ['GC.count', 'counter', 10],
    ['GC.count', 'gauge', 1200],
  ]);
  assert.equal(agg.droppedTypeClash, 0);
});

test('an async flush leaves the socket path free: samples arriving during it go to the next window', async () => {
  const agg = new Aggregator();
  for (let i = 0; i < 10_000; i++) feed(agg, `s${i}:1|c\ng${i}:${i}|g`);
  const pending = agg.flushAsync(Date.now(), 500);
  // the event loop turns between chunks: these land while the flush is under way
  await new Promise((r) => setImmediate(r));
  feed(agg, 's1:5|c\nlate:1|c');
  const w = await pending;
  assert.equal(w.series.length, 20_000);
  assert.equal(w.series.find((s) => s.name === 's1')?.value, 1);
  assert.equal(
    w.series.some((s) => s.name === 'late'),
    false,
  );
  const next = agg.flush();
  assert.equal(next.series.find((s) => s.name === 's1')?.value, 5);
  assert.equal(next.series.find((s) => s.name === 'late')?.value, 1);
  assert.equal(next.series.filter((s) => s.kind === 'gauge').length, 10_000, 'gauges carried over');
});

test('a counter keeps its running total across silent windows until it expires', () => {
  const agg = new Aggregator({ idleWindows: 2 });
  feed(agg, 'hits:3|c');
  assert.equal(agg.flush().series[0]?.total, 3);
  assert.equal(agg.flush().series.length, 0, 'silent: nothing to say');
  feed(agg, 'hits:4|c');
  const w = agg.flush().series[0];
  assert.equal(w?.value, 4);
  assert.equal(w?.total, 7, 'not reset by one silent window');
});

test('samples of every kind arriving mid-flush keep their windows apart; a sync flush finishes an async one first', async () => {
  const agg = new Aggregator();
  for (let i = 0; i < 5000; i++) feed(agg, `c${i}:1|c\nt${i}:10|ms\ng${i}:10|g\nu${i}:a|s`);
  const pending = agg.flushAsync(Date.now(), 100);
  await new Promise((r) => setImmediate(r));
  // c4999 etc. are near the end of the map: the flush has not reached them yet
  feed(agg, 'c4999:5|c\nt4999:99|ms\ng4999:+5|g\nu4999:b|s\nu4999:c|s');
  const during = agg.flush(); // finishes `pending` first, then closes the window that began with it
  const first = await pending;
  const one = (w: typeof first, name: string) => w.series.find((s) => s.name === name);
  assert.equal(first.series.length, 20_000);
  assert.equal(one(first, 'c4999')?.value, 1);
  assert.equal(one(first, 't4999')?.max, 10);
  assert.equal(one(first, 'g4999')?.value, 10);
  assert.equal(one(first, 'u4999')?.value, 1);
  assert.equal(one(during, 'c4999')?.value, 5);
  assert.equal(one(during, 'c4999')?.total, 6);
  assert.equal(one(during, 't4999')?.max, 99);
  assert.equal(one(during, 't4999')?.count, 1);
  assert.equal(one(during, 'g4999')?.value, 15, 'a delta applies to the carried level');
  assert.equal(one(during, 'u4999')?.value, 2);
  assert.equal(during.series.filter((s) => s.kind === 'counter').length, 1);
});
