import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IdHash, seriesHash } from './id-hash.js';

test('IdHash finds what a Map finds, through adds and deletes that grow, shrink and wrap the table', () => {
  const t = new IdHash();
  const model = new Map<string, number>();
  const keys: string[] = [];
  t.grow(5000);
  let a = 7;
  const rand = (n: number) => {
    a = (Math.imul(a, 1103515245) + 12345) >>> 0;
    return a % n;
  };
  // few distinct hashes: long probes that cross the table's end, and deletes that shift entries back over it
  const hashOf = (k: string) => (k.length < 3 ? 0xfffffff0 + (seriesHash(0, k, '') & 7) : seriesHash(0, k, ''));
  const find = (k: string) => {
    const h = hashOf(k);
    for (let i = t.start(h); ; i = t.next(i)) {
      const id = t.id(i);
      if (id < 0 || (t.hashes[id] === h && keys[id] === k)) return id;
    }
  };
  const free: number[] = [];
  for (let step = 0; step < 40_000; step++) {
    // a bias that fills the table, then one that empties it
    const k = String(rand(step < 20_000 ? 4000 : 6000));
    const id = find(k);
    assert.equal(id, model.has(k) ? model.get(k) : -1, `step ${step}: ${k}`);
    if (id < 0 && (step < 20_000 || rand(4) === 0)) {
      const n = free.pop() ?? keys.length;
      keys[n] = k;
      t.add(n, hashOf(k));
      model.set(k, n);
    } else if (id >= 0 && (step >= 20_000 || rand(3) === 0)) {
      t.delete(id);
      model.delete(k);
      keys[id] = '';
      free.push(id);
    }
    assert.equal(t.size, model.size);
  }
  for (const [k, id] of model) assert.equal(find(k), id);
});

test('seriesHash tells the kind, and where the name ends and the tags begin', () => {
  assert.notEqual(seriesHash(0, 'a', ''), seriesHash(1, 'a', ''));
  assert.notEqual(seriesHash(0, 'ab', 'c'), seriesHash(0, 'a', 'bc'));
  assert.equal(seriesHash(2, 'x.y', 'k:v'), seriesHash(2, 'x.y', 'k:v'));
});
