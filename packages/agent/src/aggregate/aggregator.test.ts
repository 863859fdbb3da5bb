import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePacket } from '../ingest/statsd-parse.js';
import { Aggregator, copyOf, keepable, MAX_SPREADS } from './aggregator.js';

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

test('a counter stamped with its interval (|T<start>) is spread over it: 10 s app windows read 20/s in every 5 s agent window', () => {
  const agg = new Aggregator();
  const t0 = 1_800_000_000_000;
  agg.flush(t0);
  const rates: number[] = [];
  for (let i = 1; i <= 12; i++) {
    const now = t0 + i * 5000;
    // the app's window closes 3 s after every other agent window: 200 requests over its 10 s
    if (i % 2 === 1) {
      const end = now - 2000;
      parsePacket(`req:200|c|T${Math.floor((end - 10_000) / 1000)}\nrss:${i}|g|T${Math.floor((end - 10_000) / 1000)}`, {
        sample: (s) => agg.add(s, end),
        bad: () => assert.fail('bad line'),
      });
    }
    const w = agg.flush(now);
    rates.push(w.series.find((s) => s.name === 'req')?.rate ?? Number.NaN);
    // the gauge is an observation for its whole interval, not carried
    const rss = w.series.find((s) => s.name === 'rss');
    assert.equal(rss?.carried, undefined, `window ${i}`);
  }
  // the first window holds 2 s of the first interval; from then on, every window 100 requests in 5 s
  assert.deepEqual(
    rates.slice(1).map((r) => Math.round(r * 10) / 10),
    new Array(11).fill(20),
  );
  // the last interval's remainder goes into the final window when the agent stops
  const last = agg.flush(t0 + 62_000, { final: true });
  // (140 of the last 200 went into the windows to 55 and 60 s)
  assert.equal(last.series.find((s) => s.name === 'req')?.value, 60);
});

test('a counter pushed as 10,000 one-hour interval samples holds at most MAX_SPREADS of them, and its total stays exact', () => {
  const agg = new Aggregator();
  const t0 = 1_800_000_000_000;
  agg.flush(t0);
  let total = 0;
  for (let i = 0; i < 10_000; i++) {
    const at = t0 + 1 + i;
    // a push stating a 1 h interval (as `X-Ekg-Interval-Ms: 3600000` gives)
    agg.add({ name: 'hits', tags: '', type: 'c', value: 1, weight: 1, interval: 3_600_000 }, at);
  }
  assert.equal(agg.spreadsMerged, 10_000 - MAX_SPREADS);
  for (let i = 1; i <= 6; i++) total += agg.flush(t0 + i * 600_000).series.find((s) => s.name === 'hits')?.value ?? 0;
  total += agg.flush(t0 + 3_700_000, { final: true }).series.find((s) => s.name === 'hits')?.value ?? 0;
  assert.ok(Math.abs(total - 10_000) < 1e-6, `${total}`);
});

test('a gauge stops within one interval of its last sample; carried levels are marked as such', () => {
  const agg = new Aggregator();
  const t0 = 1_800_000_000_000;
  agg.flush(t0);
  agg.add({ name: 'rss', tags: '', type: 'g', value: 5, weight: 1, ts: (t0 - 7000) / 1000 }, t0 + 3000);
  const kinds = [5, 10, 15, 20].map((s) => agg.flush(t0 + s * 1000).series.find((f) => f.name === 'rss')?.carried ?? false);
  // observed at 3 s for 10 s: the windows to 5, 10 and 15 s hold it; the one to 20 s only carries it
  assert.deepEqual(kinds, [false, false, false, true]);
});

test('a released window keeps its quantiles while its sketches are reused by the next windows', () => {
  const agg = new Aggregator();
  const twin = new Aggregator();
  const window1 = 't:10|ms\nt:20|ms\nt:30|ms\nu:1000|ms';
  feed(agg, window1);
  feed(twin, window1);
  const first = agg.flush();
  agg.release(first);
  assert.deepEqual(
    first.series.map((f) => f.sketch?.toJSON()),
    twin.flush().series.map((f) => f.sketch?.toJSON()),
    'a released window still gives its sketches, read from its bytes',
  );
  feed(twin, window1);
  // the next window fills the same sketches with other values; the first window's quantiles are read only now
  const window2 = 't:5000|ms\nu:1|ms\nu:2|ms';
  feed(agg, window2);
  const second = agg.flush();
  assert.deepEqual(
    first.series.map((f) => f.quantiles),
    twin.flush().series.map((f) => f.quantiles),
  );
  const t = second.series.find((f) => f.name === 't');
  assert.equal(t?.count, 1);
  agg.release(second);
  assert.equal(t?.quantiles?.p50, 5000);
  feed(twin, window2);
  assert.deepEqual(
    second.series.map((f) => f.quantiles),
    twin.flush().series.map((f) => f.quantiles),
  );
});

test('a retired window lends its buffers to a later one; a keepable copy of it stays whole', () => {
  const agg = new Aggregator();
  const feed = (v: number) => {
    for (let s = 0; s < 50; s++) {
      agg.add({ name: `g${s}`, tags: '', type: 'g', value: v + s, weight: 1 });
      agg.add({ name: `t${s}`, tags: 'service:api', type: 'ms', value: v * s + 1, weight: 1 });
    }
  };
  feed(1);
  const w1 = agg.flush(10_000);
  const kept = keepable(w1);
  const want = kept.series.map((f) => ({ ...copyOf(f), sketch: undefined, p99: f.quantiles?.p99 }));
  feed(2);
  const w2 = agg.flush(20_000);
  const buf1 = w1.cols?.c.f;
  agg.retire(w1);
  assert.equal(w1.series.length, 0, 'a retired window reads as empty');
  feed(3);
  const w3 = agg.flush(30_000);
  // w3 is written into w1's buffers: the copy kept before is unchanged, w2 and w3 read their own values
  assert.equal(w3.cols?.c.f, buf1);
  assert.deepEqual(
    kept.series.map((f) => ({ ...copyOf(f), sketch: undefined, p99: f.quantiles?.p99 })),
    want,
  );
  assert.equal(w2.series.find((f) => f.name === 'g7')?.value, 9);
  assert.equal(w3.series.find((f) => f.name === 'g7')?.value, 10);
  assert.equal(want.find((f) => f.name === 'g7')?.value, 8);
});

test('expired series give their ids and sketch slots to new ones, which start clean', () => {
  const agg = new Aggregator({ idleWindows: 1 });
  for (let i = 0; i < 300; i++) feed(agg, `old${i}:${i}|ms\nold${i}:${i + 1000}|ms\ng${i}:${i}|g`);
  agg.flush();
  agg.flush();
  assert.equal(agg.flush().series.length, 0, 'all expired');
  assert.equal(agg.size, 0);
  // new distributions take the freed slots; gauges take ids that were distributions, and back
  for (let i = 0; i < 300; i++) feed(agg, `new${i}:7|h\nh${i}:${i}|g`);
  feed(agg, 'old5:3|ms');
  const w = agg.flush().series;
  assert.equal(w.length, 601);
  for (const s of w) {
    if (s.kind === 'distribution') {
      assert.equal(s.count, 1, s.name);
      assert.equal(s.max, s.name === 'old5' ? 3 : 7, s.name);
      assert.equal(s.total, 1, `${s.name}: a new series' total`);
      assert.ok(Math.abs((s.quantiles?.p50 ?? 0) - (s.max as number)) <= (s.max as number) * 0.02, s.name);
    } else assert.equal(s.interval, undefined, s.name);
  }
});
