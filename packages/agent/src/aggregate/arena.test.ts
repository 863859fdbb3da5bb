import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SketchArena } from './arena.js';
import { Sketch } from './sketch.js';

/** A small deterministic generator (mulberry32), so a failure replays. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bytesOf(a: SketchArena, id: number): Uint8Array {
  let buf = new Uint8Array(16);
  let end = a.encodeInto(id, buf, 3);
  while (end < 0) {
    buf = new Uint8Array(buf.length * 2);
    end = a.encodeInto(id, buf, 3);
  }
  return buf.slice(3, end);
}

test('the arena holds what a Sketch holds: the same bytes, count, sum, min and max, window after window', () => {
  const r = rng(19);
  const arena = new SketchArena(0.01);
  const N = 300;
  arena.grow(N);
  for (let win = 0; win < 4; win++) {
    const want = new Map<number, Sketch>();
    for (let i = 0; i < 20_000; i++) {
      const id = Math.floor(r() * N);
      // each series its own shape: few buckets, many (past the arena's 64: a Sketch then), negatives, zeros,
      // fractional weights (float64 counts), values that are not numbers
      const shape = id % 6;
      const v =
        shape === 0
          ? Math.floor(r() * 5)
          : shape === 1
            ? r() * 1e6
            : shape === 2
              ? (r() - 0.5) * 1000
              : shape === 3
                ? 0
                : shape === 4
                  ? [Number.NaN, Number.POSITIVE_INFINITY, 3][Math.floor(r() * 3)]
                  : Math.floor(r() * 100) - 50;
      const n = shape === 5 && r() < 0.3 ? 1 / 0.3 : 1;
      arena.add(id, v as number, n);
      let k = want.get(id);
      if (!k) {
        k = new Sketch(0.01);
        want.set(id, k);
      }
      k.add(v as number, n);
    }
    arena.swap();
    for (const [id, k] of want) {
      assert.ok(arena.has(id));
      arena.settle(id);
      assert.deepEqual([arena.count[id], arena.sum[id], arena.min[id], arena.max[id]], [k.count, k.sum, k.min, k.max], `series ${id}`);
      assert.deepEqual(bytesOf(arena, id), k.encode(), `series ${id}'s bytes`);
      if (id % 2 === 0) assert.deepEqual(arena.take(id).toJSON(), k.toJSON(), `series ${id} as a Sketch`);
      else arena.done(id);
      assert.equal(arena.has(id), false);
    }
    arena.flushed();
  }
});
