import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Aggregator, type FlushResult, PromStore, QueryError, RemoteWriteExporter, SqliteStore, type StoreReader } from 'ekg-agent';
import { metricName } from 'ekg-vitals';
import { type Engine, startPrometheus, startVictoria } from './engines.js';
import { need } from './system.js';

/**
 * One suite, three stores: the embedded SQLite file, and the Prometheus-compatible read path over
 * the real VictoriaMetrics and the real Prometheus, fed by the agent's remote-write exporter. The
 * same windows go to all three; the same questions must get the same answers.
 */
const dir = mkdtempSync(join(tmpdir(), 'ekg-store-suite-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const STEP = 10_000;
const WINDOWS = 60;
// window ends at :05, :15, …, so no sample sits on a step boundary (engines differ on those)
// NOW is the clock the data is placed against; maintain() and the sqlite queries are given it, not a later reading
const NOW = Date.now();
const lastEnd = Math.floor((NOW - 30_000) / STEP) * STEP + 5000;
const firstEnd = lastEnd - (WINDOWS - 1) * STEP;
const PIDS = ['101', '102', '103'];

/** Three instances of `api`, 60 windows of 10 s: a gauge, a counter (1/s) and a timer. */
function windows(): FlushResult[] {
  const agg = new Aggregator();
  agg.flush(firstEnd - STEP);
  const out: FlushResult[] = [];
  for (let i = 0; i < WINDOWS; i++) {
    for (const [n, pid] of PIDS.entries()) {
      const tags = `host:h1,pid:${pid},service:api`;
      agg.add({ name: 'runtime.memory.rss', tags, type: 'g', value: 1e6 * (n + 1) + i * 1000, weight: 1 });
      agg.add({ name: 'http.requests', tags, type: 'c', value: 10, weight: 1 });
      for (let k = 1; k <= 20; k++) agg.add({ name: 'http.duration', tags, type: 'ms', value: k * (n + 1) + i, weight: 1 });
    }
    out.push(agg.flush(firstEnd + i * STEP));
  }
  return out;
}

const skipVm = need('victoria-metrics');
const skipProm = need('prometheus');

interface Subject {
  name: string;
  skip: string | false;
  reader?: StoreReader;
  engine?: Engine;
}
const subjects: Subject[] = [
  { name: 'sqlite', skip: false },
  // the same file after the compactor folded its complete minutes into chunks and rolled them up:
  // the answers come from chunks, the newest minute from the head
  { name: 'sqlite-compacted', skip: false },
  { name: 'victoria-metrics', skip: skipVm },
  { name: 'prometheus', skip: skipProm },
];

const cleanup: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanup) await c();
});

before(async () => {
  const ws = windows();
  const sqlite = new SqliteStore({ path: join(dir, 'ekg.db'), flushInterval: STEP });
  for (const w of ws) sqlite.write(w);
  cleanup.push(() => sqlite.close());
  (subjects[0] as Subject).reader = sqlite;
  const compacted = new SqliteStore({ path: join(dir, 'compacted.db'), flushInterval: STEP });
  for (const w of ws) compacted.write(w);
  await compacted.maintain(NOW);
  cleanup.push(() => compacted.close());
  (subjects[1] as Subject).reader = compacted;
  for (const s of subjects.slice(2)) {
    if (s.skip) continue;
    const engine = s.name === 'prometheus' ? await startPrometheus(dir) : await startVictoria(dir);
    cleanup.push(() => engine.stop());
    const rw = new RemoteWriteExporter({ url: engine.writeUrl });
    for (const w of ws) rw.write(w);
    await rw.close();
    assert.equal(rw.status.batches_sent, WINDOWS, `${s.name}: ${rw.status.last_error} ${engine.log().slice(-1000)}`);
    s.engine = engine;
    s.reader = new PromStore({ url: engine.url, flushInterval: STEP });
    // wait until the last window is queryable
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await s.reader.query({
        name: 'http.requests',
        tags: {},
        from: lastEnd - 60_000,
        to: lastEnd + 1000,
        step: STEP,
        agg: 'rate',
        by: [],
      });
      if (r.series[0]?.values.at(-1) != null || Date.now() > deadline) break;
      await new Promise((res) => setTimeout(res, 250));
    }
  }
});

const range = { from: firstEnd - 5000 + 60_000, to: lastEnd + 5000 };
const spell = (s: Subject, name: string) => (s.name.startsWith('sqlite') ? name : metricName(name));

for (const s of subjects) {
  describe(`store suite on ${s.name}`, { skip: s.skip }, () => {
    test('instances: every app instance, with its identity and health', async () => {
      const list = await (s.reader as StoreReader).instances();
      const apps = list.filter((i) => i.service === 'api');
      assert.deepEqual(
        apps.map((i) => [i.pid, i.host]),
        PIDS.map((p) => [p, 'h1']),
      );
      for (const i of apps) {
        assert.ok(Math.abs(i.last_seen - lastEnd) <= 1000, `${i.key} last seen ${i.last_seen} vs ${lastEnd}`);
        assert.ok(['reporting', 'stale'].includes(i.health));
      }
    });

    test('series: names and tag filters', async () => {
      const found = await (s.reader as StoreReader).series('http.*', { pid: '102' });
      assert.deepEqual(
        found.map((f) => [f.name, f.kind, f.tags.pid]),
        [
          [spell(s, 'http.duration'), 'distribution', '102'],
          [spell(s, 'http.requests'), 'counter', '102'],
        ],
      );
    });

    test('query: a gauge per instance, averaged per minute', async () => {
      const r = await (s.reader as StoreReader).query({
        name: 'runtime.memory.rss',
        tags: { service: 'api' },
        ...range,
        step: 60_000,
        agg: 'avg',
        by: undefined,
      });
      assert.equal(r.step, 60);
      assert.equal(r.series.length, 3);
      const mine = r.series.find((x) => x.tags.pid === '102');
      assert.ok(mine);
      // the minute ending at t holds the windows ending at t-55 … t-5: i = (t - firstEnd)/10 - 5 … +0
      for (const [k, t] of r.t.entries()) {
        const v = mine.values[k];
        if (v == null) continue;
        const last = (t * 1000 - 5000 - firstEnd) / STEP;
        const ids = [0, 1, 2, 3, 4, 5].map((j) => last - j).filter((i) => i >= 0 && i < WINDOWS);
        const want = ids.reduce((a, i) => a + 2e6 + i * 1000, 0) / ids.length;
        assert.ok(Math.abs(v - want) < 1e-6 * want, `${s.name} t=${t}: ${v} vs ${want}`);
      }
      assert.ok(mine.values.filter((v) => v != null).length >= 8, 'most minutes have data');
    });

    test('query: a counter summed over the fleet as a rate', async () => {
      const r = await (s.reader as StoreReader).query({
        name: 'http.requests',
        tags: { service: 'api' },
        ...range,
        step: 60_000,
        agg: 'rate',
        by: ['service'],
      });
      assert.equal(r.series.length, 1);
      assert.deepEqual(r.series[0]?.tags, { service: 'api' });
      const vals = (r.series[0]?.values ?? []).filter((v): v is number => v != null);
      assert.ok(vals.length >= 8);
      // three instances at 10 per 10 s window: 3 per second (engines extrapolate rates: within 25 %)
      for (const v of vals) assert.ok(Math.abs(v - 3) <= (s.name.startsWith('sqlite') ? 1e-9 : 0.75), `${s.name}: ${v}`);
    });

    test('query: a timer p99 per instance, window by window', async () => {
      const r = await (s.reader as StoreReader).query({
        name: 'http.duration',
        tags: { pid: '103' },
        ...range,
        step: STEP,
        agg: 'p99',
        by: undefined,
      });
      assert.equal(r.series.length, 1);
      const vals = r.series[0]?.values ?? [];
      let compared = 0;
      for (const [k, t] of r.t.entries()) {
        const v = vals[k];
        if (v == null) continue;
        const i = (t * 1000 - 5000 - firstEnd) / STEP;
        // samples 3k + i for k = 1..20: the p99 is the largest, 60 + i, within the sketch's 1 %
        const want = 60 + i;
        assert.ok(Math.abs(v - want) <= 0.0101 * want, `${s.name} t=${t}: p99 ${v} vs ${want}`);
        compared++;
      }
      assert.ok(compared >= 40, `${compared} windows compared`);
    });

    test('query: a percentile of a gauge is refused, naming agg', async () => {
      await assert.rejects(
        (s.reader as StoreReader).query({ name: 'runtime.memory.rss', tags: {}, ...range, step: 60_000, agg: 'p99', by: undefined }),
        (e: unknown) => e instanceof QueryError && e.param === 'agg',
      );
    });
  });
}

test('sqlite: a fleet p99 merges sketches; the engines give the highest instance p99', async () => {
  const sqlite = (subjects[0] as Subject).reader as SqliteStore;
  const r = await sqlite.query(
    {
      name: 'http.duration',
      tags: { service: 'api' },
      from: lastEnd - 4000,
      to: lastEnd + 5000,
      step: STEP,
      agg: 'p99',
      by: [],
    },
    NOW,
  );
  // the last window: 20 samples per instance, k·(n+1) + 59; merged, the 59th of 60 values
  const all = PIDS.flatMap((_, n) => Array.from({ length: 20 }, (_x, k) => (k + 1) * (n + 1) + 59)).sort((a, b) => a - b);
  const want = all[Math.ceil(0.99 * all.length) - 1] as number;
  const got = r.series[0]?.values.at(-1) as number;
  assert.ok(Math.abs(got - want) <= 0.0101 * want, `fleet p99 ${got} vs ${want}`);
});

test('sqlite: a fleet p99 read from the sketches merged at compaction equals the merge of every instance’s', async () => {
  const compacted = (subjects[1] as Subject).reader as SqliteStore;
  assert.ok((compacted.db.prepare('SELECT count(*) FROM chunks WHERE series < 0').pluck().get() as number) > 0, 'fleet chunks kept');
  // window by window (raw) and per minute, for ranges ending at each of the last 8 windows: whatever the
  // clock's phase, one of them ends inside the newest compacted minute (its rollup point lies past `to`)
  for (let k = 0; k < 8; k++) {
    for (const step of [STEP, 60_000]) {
      const q = {
        name: 'http.duration',
        tags: { service: 'api' },
        from: range.from,
        to: range.to - k * STEP,
        step,
        agg: 'p99' as const,
        by: ['service'],
      };
      const each = await ((subjects[0] as Subject).reader as SqliteStore).query(q, NOW);
      const fleet = await compacted.query(q, NOW);
      assert.deepEqual(fleet.t, each.t);
      assert.deepEqual(fleet.series, each.series, `step ${step}, to lastEnd+5s-${k * 10}s`);
      assert.ok((fleet.series[0]?.values.filter((v) => v !== null).length ?? 0) >= 7);
      if (step === 60_000) assert.notEqual(fleet.series[0]?.values.at(-1), null, `the newest minute, to lastEnd+5s-${k * 10}s`);
    }
  }
});
