import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SeriesIndex, type SeriesMeta } from './core.js';

const meta = (id: number, name: string, tags: string): SeriesMeta => ({
  id,
  name,
  tags,
  kind: 'gauge',
  inst: undefined,
  seen: 0,
  scopes: undefined,
});

test('the series index finds each series by name and tags, one tag set or many, through adds and deletes', () => {
  const ix = new SeriesIndex();
  const a = meta(1, 'rss', '');
  const b = meta(2, 'rss', 'host:a');
  const c = meta(3, 'rss', 'host:b');
  ix.set(a);
  assert.equal(ix.get('rss', ''), a);
  assert.equal(ix.get('rss', 'host:a'), undefined);
  assert.deepEqual([...ix.of('rss')], [a]);
  ix.set(b);
  ix.set(c);
  assert.deepEqual(
    [...ix.of('rss')].map((m) => m.id),
    [1, 2, 3],
  );
  assert.equal(ix.get('rss', 'host:b'), c);
  ix.delete('rss', '');
  ix.delete('rss', 'host:b');
  assert.deepEqual([...ix.of('rss')], [b]);
  assert.equal(ix.get('rss', 'host:a'), b);
  const b2 = meta(4, 'rss', 'host:a');
  ix.set(b2);
  assert.deepEqual([...ix.of('rss')], [b2], 'the same name and tags replaced');
  ix.delete('rss', 'host:a');
  assert.deepEqual([...ix.of('rss')], []);
  assert.deepEqual([...ix.of('unknown')], []);
  ix.delete('unknown', '');
});
