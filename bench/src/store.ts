/**
 * The agent's SQLite store: points written per second (one transaction per window), query latency
 * for 24 h of one series at its 10 s resolution and for a p99 merged across 100 instances over
 * 24 h, and database bytes per series per day at each resolution. Prints JSON for run.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Flushed, type FlushResult, Sketch, SqliteStore } from 'ekg-agent';

const dir = mkdtempSync(join(tmpdir(), 'ekg-store-bench-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const DAY = 86_400_000;
const STEP = 10_000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

function sketchOf(seed: number, n = 50): Sketch {
  const s = new Sketch();
  for (let i = 0; i < n; i++) s.add(1 + ((seed * 31 + i * 17) % 400) / 4);
  return s;
}

/** One window of `series` series: 70 % gauges and counters, 30 % timers with a 50-sample sketch. */
function window(end: number, series: number, sketches: Sketch[]): FlushResult {
  const out: Flushed[] = [];
  for (let i = 0; i < series; i++) {
    const tags = `pid:${i % 100},service:bench`;
    const k = i % 10;
    if (k < 4) out.push({ name: `g.${i}`, tags, kind: 'gauge', value: (end / 1000 + i) % 1000 });
    else if (k < 7) out.push({ name: `c.${i}`, tags, kind: 'counter', value: 5, rate: 0.5, total: 5 });
    else {
      const sk = sketches[i % sketches.length] as Sketch;
      out.push({
        name: `t.${i}`,
        tags,
        kind: 'distribution',
        value: sk.count,
        count: sk.count,
        sum: sk.sum,
        min: sk.min,
        max: sk.max,
        sketch: sk,
      });
    }
  }
  return { start: end - STEP, end, series: out };
}

function writeRate(): { pointsPerSecond: number; msPerWindow: number; series: number } {
  const store = new SqliteStore({ path: join(dir, 'write.db'), flushInterval: STEP });
  const sketches = Array.from({ length: 64 }, (_, i) => sketchOf(i));
  const series = 100_000;
  const t0 = Date.now() - DAY;
  store.write(window(t0, series, sketches)); // creates the series rows
  const times: number[] = [];
  for (let w = 1; w <= 10; w++) {
    const win = window(t0 + w * STEP, series, sketches);
    const a = performance.now();
    store.write(win);
    times.push(performance.now() - a);
  }
  void store.close();
  const ms = median(times);
  return { pointsPerSecond: series / (ms / 1000), msPerWindow: ms, series };
}

async function queries(): Promise<{
  singleMs: number;
  singlePoints: number;
  fleetPoints: number;
  fleetResolution: number;
  fleetMs: number;
  fleetInstances: number;
  rollupRowsPerSecond: number;
}> {
  const store = new SqliteStore({ path: join(dir, 'query.db'), flushInterval: STEP });
  const now = Date.now();
  const first = Math.floor((now - DAY) / STEP) * STEP + STEP;
  const windows = DAY / STEP;
  const sk = Array.from({ length: 100 }, (_, i) => sketchOf(i, 20));
  // one gauge, and a timer on each of 100 instances, every 10 s for 24 h
  for (let w = 0; w < windows; w++) {
    const end = first + w * STEP;
    const series: Flushed[] = [{ name: 'runtime.eventloop.delay.p99', tags: 'pid:1,service:api', kind: 'gauge', value: 3 + (w % 7) }];
    for (let p = 0; p < 100; p++) {
      const s = sk[p] as Sketch;
      series.push({
        name: 'http.duration',
        tags: `pid:${p},service:api`,
        kind: 'distribution',
        value: s.count,
        count: s.count,
        sum: s.sum,
        min: s.min,
        max: s.max,
        sketch: s,
      });
    }
    store.write({ start: end - STEP, end, series });
  }
  const r0 = performance.now();
  await store.maintain(now);
  const rollupMs = performance.now() - r0;
  const single: number[] = [];
  let singlePoints = 0;
  for (let i = 0; i < 20; i++) {
    // the real clock: the store reads the level that still covers `from` at query time
    const to = Date.now();
    const a = performance.now();
    const r = await store.query({
      name: 'runtime.eventloop.delay.p99',
      tags: { pid: '1' },
      from: to - DAY + STEP,
      to,
      step: STEP,
      agg: 'avg',
      by: undefined,
    });
    single.push(performance.now() - a);
    singlePoints = r.series[0]?.values.filter((v) => v !== null).length ?? 0;
  }
  const fleet: number[] = [];
  let fleetPoints = 0;
  let fleetResolution = 0;
  for (let i = 0; i < 5; i++) {
    const to = Date.now();
    const a = performance.now();
    const r = await store.query({
      name: 'http.duration',
      tags: { service: 'api' },
      from: to - DAY,
      to,
      step: undefined,
      agg: 'p99',
      by: ['service'],
    });
    fleet.push(performance.now() - a);
    fleetPoints = r.series[0]?.values.filter((v) => v !== null).length ?? 0;
    fleetResolution = r.resolution;
  }
  await store.close();
  return {
    singleMs: median(single),
    singlePoints,
    fleetPoints,
    fleetResolution,
    fleetMs: median(fleet),
    fleetInstances: 100,
    rollupRowsPerSecond: (windows * 101) / (rollupMs / 1000),
  };
}

const write = writeRate();
const q = await queries();
const bytes = await bytesPerDay();
console.log(JSON.stringify({ write, query: q, bytes }));

/** Bytes per series per day at each resolution, from SQLite's own page accounting (dbstat). */
async function bytesPerDay(): Promise<Record<'gauge' | 'distribution', Record<'raw' | '1m' | '1h', number>>> {
  const out = { gauge: { raw: 0, '1m': 0, '1h': 0 }, distribution: { raw: 0, '1m': 0, '1h': 0 } };
  for (const kind of ['gauge', 'distribution'] as const) {
    const store = new SqliteStore({ path: join(dir, `bytes-${kind}.db`), flushInterval: STEP });
    const series = 50;
    const sk = Array.from({ length: series }, (_, i) => sketchOf(i, 20));
    const now = Date.now();
    const first = Math.floor((now - DAY) / STEP) * STEP + STEP;
    for (let w = 0; w < DAY / STEP; w++) {
      const end = first + w * STEP;
      const list: Flushed[] = [];
      for (let i = 0; i < series; i++) {
        const tags = `pid:${i},service:api`;
        if (kind === 'gauge') list.push({ name: 'runtime.memory.rss', tags, kind: 'gauge', value: 5e7 + ((w * 7919 + i) % 100_000) });
        else {
          const s = sk[i] as Sketch;
          list.push({
            name: 'http.duration',
            tags,
            kind: 'distribution',
            value: s.count,
            count: s.count,
            sum: s.sum,
            min: s.min,
            max: s.max,
            sketch: s,
          });
        }
      }
      store.write({ start: end - STEP, end, series: list });
    }
    await store.maintain(now + 3_600_000);
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    for (const [res, table] of [
      ['raw', 'points_raw'],
      ['1m', 'points_1m'],
      ['1h', 'points_1h'],
    ] as const) {
      const b = (store.db.prepare('SELECT sum(pgsize) AS b FROM dbstat WHERE name = ?').get(table) as { b: number }).b;
      const rows = (store.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
      const perDay = res === 'raw' ? DAY / STEP : res === '1m' ? 1440 : 24;
      // bytes per row (pages included) times the rows one series has in a day at that resolution
      out[kind][res] = (b / Math.max(1, rows)) * perDay;
    }
    await store.close();
  }
  return out;
}
