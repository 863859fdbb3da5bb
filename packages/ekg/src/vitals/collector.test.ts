import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Sampler, type Window } from '../sampler.js';
import type { Snapshot } from '../window/snapshot.js';
import { Collector } from './collector.js';

/** A collector on the process sampler whose custom vitals count how often they are asked. */
function collector(closed = () => false) {
  const sampler = Sampler.acquire(3_600_000);
  let asked = 0;
  const published: number[] = [];
  const ticks: number[] = [];
  const build = (w: Window, vitals: Snapshot['vitals']) => ({ window: w.info, vitals }) as unknown as Snapshot;
  const c = new Collector(
    sampler,
    async () => {
      asked++;
      return [{ name: 'q', stats: { asked } }];
    },
    build,
    (s) => published.push(s.window.seq),
    closed,
    (w) => ticks.push(w.info.seq),
  );
  return {
    c,
    sampler,
    asked: () => asked,
    published,
    ticks,
    done: () => {
      c.stop();
      sampler.release();
    },
  };
}

test('before the first window closes, readers share one provisional snapshot that is not published', async () => {
  const t = collector();
  try {
    const [a, b] = await Promise.all([t.c.snapshot(), t.c.snapshot()]);
    assert.equal(a, b);
    assert.equal(a.window.seq, 0);
    assert.equal(t.asked(), 1, 'custom vitals asked once');
    assert.equal(await t.c.snapshot(), a, 'reused until the first close');
    assert.equal(t.c.peek(), a);
    assert.deepEqual(t.published, []);
  } finally {
    t.done();
  }
});

test('each closed window is built, published, then given to listeners; a listener that throws is alone', async () => {
  const t = collector();
  const seen: number[] = [];
  t.c.onWindow(() => {
    throw new Error('listener fault');
  });
  const off = t.c.onWindow((s) => seen.push(s.window.seq));
  try {
    const s1 = await t.c.flush();
    assert.ok(s1.window.seq > 0);
    assert.equal(t.c.peek(), s1);
    assert.equal(await t.c.snapshot(), s1);
    assert.deepEqual(t.ticks, [s1.window.seq]);
    assert.deepEqual(t.published, [s1.window.seq]);
    assert.deepEqual(seen, [s1.window.seq]);
    off();
    const s2 = await t.c.flush();
    assert.equal(s2.window.seq, s1.window.seq + 1);
    assert.deepEqual(seen, [s1.window.seq], 'unsubscribed');
    assert.deepEqual(t.published, [s1.window.seq, s2.window.seq]);
  } finally {
    t.done();
  }
});

test('once closed, windows are neither collected nor published; stop() leaves the sampler', async () => {
  let closed = false;
  const t = collector(() => closed);
  try {
    await t.c.flush();
    const asked = t.asked();
    closed = true;
    t.sampler.tick();
    assert.equal(t.asked(), asked);
    assert.equal(t.published.length, 1);
    closed = false;
    t.c.stop();
    t.sampler.tick();
    assert.equal(t.asked(), asked, 'no longer listening');
  } finally {
    t.done();
  }
});
