import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Flushed, FlushResult } from '../aggregate/aggregator.js';
import { Sketch } from '../aggregate/sketch.js';
import type { Core } from './core.js';
import type { Query } from './reader.js';
import { SqliteStore } from './sqlite.js';

const dir = mkdtempSync(join(tmpdir(), 'ekg-head-pool-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const m0 = Math.floor(1_795_000_000 / 60) * 60_000;

/** Window `w` (ending m0 + 10 s · (w + 1)): 200 gauges and 40 distributions, every value different from window to window. */
function window(w: number): FlushResult {
  const series: Flushed[] = [];
  for (let k = 0; k < 200; k++) series.push({ name: 'g', tags: `pid:${k}`, kind: 'gauge', value: w * 1000 + k });
  for (let k = 0; k < 40; k++) {
    const sketch = new Sketch();
    for (let i = 1; i <= 5; i++) sketch.add((w + 1) * (k + 1) * i);
    const f = { name: 'lat', tags: `pid:${k},service:${k % 2 ? 'api' : 'web'}`, kind: 'distribution' as const, value: sketch.count };
    series.push({ ...f, count: sketch.count, sum: sketch.sum, min: sketch.min, max: sketch.max, sketch });
  }
  const end = m0 + 10_000 * (w + 1);
  return { start: end - 10_000, end, series };
}

const queries = (to: number): Query[] =>
  (
    [
      ['g', 'sum', ['pid']],
      ['g', 'avg', []],
      ['lat', 'p99', ['service']],
      ['lat', 'p50', ['pid']],
      ['lat', 'max', undefined],
    ] as const
  ).map(([name, agg, by]): Query => ({ name, tags: {}, from: m0, to, step: 10_000, agg, by: by && [...by] }));

const core = (s: SqliteStore): Core => (s as unknown as { core: Core }).core;

test('head windows in reused slabs: a compaction pass and queries interleaved with writes answer as a store that reused none', async () => {
  // a cache of ~2 windows: each write lets the oldest go and the next one reuses its slab
  const pooled = new SqliteStore({ path: join(dir, 'pooled.db'), flushInterval: 10_000, headCacheBytes: 20_000, batch: 40 });
  const plain = new SqliteStore({ path: join(dir, 'plain.db'), flushInterval: 10_000 });
  after(() => Promise.all([pooled.close(), plain.close()]));
  // minutes 1 and 2 written, then folded while minutes 3 and 4 arrive: a window a turn of the event loop
  for (let w = 0; w < 12; w++) {
    pooled.write(window(w));
    plain.write(window(w));
  }
  const now = m0 + 120_000 + 15_001;
  const compacting = pooled.maintain(now);
  let done = false;
  void compacting.then(() => {
    done = true;
  });
  let w = 12;
  const seen: string[] = [];
  for (; w < 24 && !done; w++) {
    await new Promise((r) => setImmediate(r));
    pooled.write(window(w));
    // a query between two of the pass's transactions reads windows the pass holds
    seen.push(JSON.stringify(await pooled.query(queries(m0 + 10_000 * (w + 1))[0] as Query, now)));
  }
  await compacting;
  assert.ok(w > 14, `the pass took ${w - 12} turns: too few to interleave writes`);
  await plain.maintain(now);
  for (let v = 12; v < w; v++) plain.write(window(v));
  const to = m0 + 10_000 * w;
  assert.equal(pooled.points(), plain.points());
  for (const q of queries(to)) assert.deepEqual(await pooled.query(q, to), await plain.query(q, to), `${q.agg} of ${q.name}`);
  // the same for the queries asked during the pass, asked again of the reference store
  for (let v = 12; v < w; v++)
    assert.deepEqual(
      JSON.parse(seen[v - 12] as string),
      JSON.parse(JSON.stringify(await plain.query(queries(m0 + 10_000 * (v + 1))[0] as Query, now))),
    );
  const c = core(pooled);
  assert.ok(c.slabsMade < w / 2, `${c.slabsMade} slabs made for ${w} windows: not reused`);
});
