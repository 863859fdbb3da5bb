import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { Query, QueryResult, SeriesInfo } from './reader.js';
import { SCHEMA_VERSION } from './schema.js';
import { SqliteStore } from './sqlite.js';

// written by the store of schema 1 (a row per point), with the answers it gave: fixtures/make-v1.mjs.txt
const fixture = fileURLToPath(new URL('../../src/store/fixtures/store-v1.db', import.meta.url));
const expected = JSON.parse(readFileSync(fixture.replace(/\.db$/, '.json'), 'utf8')) as {
  retention: { raw: number; m1: number; h1: number };
  queries: Array<{ q: Query; r: QueryResult }>;
  series: SeriesInfo[];
};
const dir = mkdtempSync(join(tmpdir(), 'ekg-migrate-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function close(a: QueryResult, b: QueryResult, what: string): void {
  assert.deepEqual(a.t, b.t, what);
  assert.equal(a.resolution, b.resolution, what);
  assert.deepEqual(
    a.series.map((s) => s.tags),
    b.series.map((s) => s.tags),
    what,
  );
  for (const [i, s] of a.series.entries()) {
    const want = b.series[i]?.values ?? [];
    for (const [k, v] of s.values.entries()) {
      const w = want[k] ?? null;
      if (v === null || w === null) assert.equal(v, w, `${what} [${k}]`);
      else assert.ok(Math.abs(v - w) <= 1e-9 * Math.max(1, Math.abs(w)), `${what} [${k}]: ${v} vs ${w}`);
    }
  }
}

test('a version-1 file is upgraded in place at start and answers every query as before', async () => {
  const path = join(dir, 'ekg.db');
  copyFileSync(fixture, path);
  const store = new SqliteStore({ path, flushInterval: 10_000, retention: expected.retention });
  try {
    assert.equal(store.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    const tables = store.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[];
    assert.ok(!tables.includes('points_raw') && !tables.includes('points_1m') && !tables.includes('points_1h'), `${tables}`);
    // listed as of the fixture's last window: the series of instances gone since then leave the listing
    const at = Math.max(...expected.series.map((x) => x.last_seen ?? 0));
    assert.deepEqual(await store.series('', {}, 10_000, at), expected.series);
    for (const { q, r } of expected.queries) close(await store.query(q), r, `${q.name} ${q.agg} ${q.step}`);
    // the windows past the old minute watermark came back as head windows; folding them changes no answer
    assert.ok((store.db.prepare('SELECT count(*) FROM head').pluck().get() as number) > 0);
    await store.maintain();
    assert.equal(store.db.prepare('SELECT count(*) FROM head').pluck().get(), 0);
    for (const { q, r } of expected.queries) close(await store.query(q), r, `compacted: ${q.name} ${q.agg} ${q.step}`);
  } finally {
    await store.close();
  }
  // and it opens again as version 2, untouched
  const db = new Database(path, { readonly: true });
  assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  db.close();
});
