/**
 * The agent's SQLite store against its own schema-1 layout (one row per point, `store-v1.ts`), on
 * the same windows in the same run: bytes per point on disk for gauges of realistic shape and for
 * distributions, points written per second at 100k series per window, 24 h of one series, and a
 * p99 merged across 100 instances over 24 h. Prints JSON for sections.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Flushed, type FlushResult, Sketch, SqliteStore } from 'ekg-agent';
import { SqliteStoreV1 } from './store-v1.js';

const { encodeWriteRequest } = await import('../../packages/agent/dist/export/protobuf.js');

import { compress } from 'snappyjs';

type TimeSeries = Parameters<typeof encodeWriteRequest>[0][number];
const VM = '/usr/bin/victoria-metrics';

const dir = mkdtempSync(join(tmpdir(), 'ekg-store-bench-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const DAY = 86_400_000;
const STEP = 10_000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

type Layout = 'v2' | 'v1';
type AnyStore = SqliteStore | SqliteStoreV1;
function open(layout: Layout, name: string): AnyStore {
  const o = { path: join(dir, `${layout}-${name}.db`), flushInterval: STEP };
  return layout === 'v2' ? new SqliteStore(o) : new SqliteStoreV1(o);
}

/** A seeded generator: the same data every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Log-normal latencies around 20 ms with two decimals, as a StatsD timer sends them. */
function latencies(r: () => number, n: number): Sketch {
  const s = new Sketch();
  for (let i = 0; i < n; i++) {
    const u = Math.max(1e-12, r());
    s.add(Math.round(20 * Math.exp(0.6 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r())) * 100) / 100);
  }
  return s;
}

function dist(name: string, tags: string, s: Sketch): Flushed {
  return { name, tags, kind: 'distribution', value: s.count, count: s.count, sum: s.sum, min: s.min, max: s.max, sketch: s };
}

/**
 * One window of `series` series: 70 % gauges and counters, 30 % timers with a 50-sample sketch. The
 * names and tags are the same strings every window, as the aggregator's own are.
 */
function window(end: number, names: string[], tags: string[], sketches: Sketch[]): FlushResult {
  const out: Flushed[] = [];
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    const t = tags[i % tags.length] as string;
    const k = i % 10;
    if (k < 4) out.push({ name, tags: t, kind: 'gauge', value: (end / 1000 + i) % 1000 });
    else if (k < 7) out.push({ name, tags: t, kind: 'counter', value: 5, rate: 0.5, total: 5 });
    else out.push(dist(name, t, sketches[i % sketches.length] as Sketch));
  }
  return { start: end - STEP, end, series: out };
}

async function writeRate(layout: Layout): Promise<{ pointsPerSecond: number; msPerWindow: number; series: number }> {
  const store = open(layout, 'write');
  const r = rng(1);
  const sketches = Array.from({ length: 64 }, () => latencies(r, 50));
  const series = 100_000;
  const names = Array.from({ length: series }, (_, i) => `${i % 10 < 4 ? 'g' : i % 10 < 7 ? 'c' : 't'}.${i}`);
  const tags = Array.from({ length: 100 }, (_, p) => `pid:${p},service:bench`);
  const t0 = Date.now() - DAY;
  store.write(window(t0, names, tags, sketches)); // creates the series rows
  // built beforehand: the aggregator's work (and its garbage) is not the store's
  const wins = Array.from({ length: 10 }, (_, w) => window(t0 + (w + 1) * STEP, names, tags, sketches));
  const times: number[] = [];
  for (const win of wins) {
    const a = performance.now();
    store.write(win);
    times.push(performance.now() - a);
  }
  await store.close();
  const ms = median(times);
  return { pointsPerSecond: series / (ms / 1000), msPerWindow: ms, series };
}

async function queries(layout: Layout): Promise<{
  singleMs: number;
  singlePoints: number;
  fleetPoints: number;
  fleetResolution: number;
  fleetMs: number;
  fleetCpuMs: number;
  fleetInstances: number;
  compactPointsPerSecond: number;
  compactCpuPointsPerSecond: number;
}> {
  const store = open(layout, 'query');
  const now = Date.now();
  const first = Math.floor((now - DAY) / STEP) * STEP + STEP;
  const windows = DAY / STEP;
  const r = rng(2);
  const sk = Array.from({ length: 100 }, () => latencies(r, 20));
  // one gauge, and a timer on each of 100 instances, every 10 s for 24 h
  let level = 3;
  for (let w = 0; w < windows; w++) {
    const end = first + w * STEP;
    level = Math.max(0, Math.round((level + r() - 0.5) * 100) / 100);
    const series: Flushed[] = [{ name: 'runtime.eventloop.delay.p99', tags: 'pid:1,service:api', kind: 'gauge', value: level }];
    for (let p = 0; p < 100; p++) series.push(dist('http.duration', `pid:${p},service:api`, sk[(p + w) % 100] as Sketch));
    store.write({ start: end - STEP, end, series });
  }
  const r0 = performance.now();
  const c0 = process.cpuUsage();
  await store.maintain(now);
  const compactMs = performance.now() - r0;
  // CPU time beside the wall clock: on a shared 2-core machine the wall clock measures the neighbours too
  const cpu = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;
  const compactCpuMs = cpu(process.cpuUsage(c0));
  const single: number[] = [];
  let singlePoints = 0;
  for (let i = 0; i < 20; i++) {
    // the real clock: the store reads the level that still covers `from` at query time
    const to = Date.now();
    const a = performance.now();
    const q = await store.query({
      name: 'runtime.eventloop.delay.p99',
      tags: { pid: '1' },
      from: to - DAY + STEP,
      to,
      step: STEP,
      agg: 'avg',
      by: undefined,
    });
    single.push(performance.now() - a);
    singlePoints = q.series[0]?.values.filter((v) => v !== null).length ?? 0;
  }
  const fleet: number[] = [];
  const fleetCpu: number[] = [];
  let fleetPoints = 0;
  let fleetResolution = 0;
  for (let i = 0; i < 5; i++) {
    const to = Date.now();
    const a = performance.now();
    const ca = process.cpuUsage();
    const q = await store.query({
      name: 'http.duration',
      tags: { service: 'api' },
      from: to - DAY,
      to,
      step: undefined,
      agg: 'p99',
      by: ['service'],
    });
    fleet.push(performance.now() - a);
    fleetCpu.push(cpu(process.cpuUsage(ca)));
    fleetPoints = q.series[0]?.values.filter((v) => v !== null).length ?? 0;
    fleetResolution = q.resolution;
  }
  await store.close();
  return {
    singleMs: median(single),
    singlePoints,
    fleetPoints,
    fleetResolution,
    fleetMs: median(fleet),
    fleetCpuMs: median(fleetCpu),
    fleetInstances: 100,
    compactPointsPerSecond: (windows * 101) / (compactMs / 1000),
    compactCpuPointsPerSecond: (windows * 101) / (compactCpuMs / 1000),
  };
}

export type Shape = 'walk' | 'counter' | 'constant' | 'distribution';
const SHAPES: Shape[] = ['walk', 'counter', 'constant', 'distribution'];
const BYTES_SERIES = 200;
const BYTES_HOURS = 6;

/**
 * Bytes on disk per raw point: 200 series of one shape, 6 h at 10 s, compacted and rolled up, the
 * file checkpointed; the growth of its live pages (all of it but the free list: chunks, rollups,
 * indexes, the series table; not the empty tables' first pages) over the raw points. `raw`: the raw
 * resolution alone (time-first: the raw chunks' bytes; row per point: its points table's pages).
 */
async function bytesPerPoint(layout: Layout, shape: Shape): Promise<{ file: number; raw: number }> {
  const store = open(layout, `bytes-${shape}`);
  const r = rng(3);
  const windows = (BYTES_HOURS * 3600_000) / STEP;
  const now = Date.now();
  const first = Math.floor((now - windows * STEP) / STEP) * STEP;
  const walk = Array.from({ length: BYTES_SERIES }, () => Math.round(r() * 100_000) / 100);
  const live = () => {
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    const page = store.db.pragma('page_size', { simple: true }) as number;
    return (
      page * ((store.db.pragma('page_count', { simple: true }) as number) - (store.db.pragma('freelist_count', { simple: true }) as number))
    );
  };
  const empty = live();
  for (let w = 0; w < windows; w++) {
    const end = first + w * STEP;
    const list: Flushed[] = [];
    for (let i = 0; i < BYTES_SERIES; i++) {
      const tags = `pid:${i},service:api`;
      if (shape === 'walk') {
        // a level moving by up to ±0.50 a window, two decimals (a temperature, a queue's mean wait)
        walk[i] = Math.round(((walk[i] as number) + r() - 0.5) * 100) / 100;
        list.push({ name: 'queue.wait', tags, kind: 'gauge', value: walk[i] as number });
      } else if (shape === 'counter') {
        // requests a window: around 50, varying
        const v = Math.round(50 + (r() - 0.5) * 30);
        list.push({ name: 'http.requests', tags, kind: 'counter', value: v, rate: v / 10, total: v });
      } else if (shape === 'constant') list.push({ name: 'runtime.cpus', tags, kind: 'gauge', value: 8 });
      else list.push(dist('http.duration', tags, latencies(r, 20)));
    }
    store.write({ start: end - STEP, end, series: list });
    if (layout === 'v2' && shape !== 'distribution') {
      // the same points for VictoriaMetrics, over remote write (vmBytesPerPoint)
      peer[shape] ??= list.map((f) => ({ labels: labelsOf(f), samples: [] }));
      const ts = peer[shape];
      for (let i = 0; i < list.length; i++) (ts[i] as TimeSeries).samples.push([(list[i] as Flushed).value, end]);
    }
  }
  await store.maintain(now + 3_600_000);
  const points = windows * BYTES_SERIES;
  const file = (live() - empty) / points;
  const raw =
    layout === 'v2'
      ? (store.db.prepare('SELECT sum(length(data)) FROM chunks WHERE res = 0 AND series > 0').pluck().get() as number)
      : (store.db.prepare("SELECT sum(pgsize) FROM dbstat WHERE name = 'points_raw'").pluck().get() as number);
  await store.close();
  return { file, raw: raw / points };
}

const peer: Partial<Record<Shape, TimeSeries[]>> = {};
const labelsOf = (f: Flushed): Array<[string, string]> =>
  [['__name__', f.name.replace(/\./g, '_')] as [string, string]]
    .concat(f.tags.split(',').map((kv) => kv.split(':') as [string, string]))
    .sort((a, b) => (a[0] < b[0] ? -1 : 1));
const du = (d: string) => Number(spawnSync('du', ['-sb', d], { encoding: 'utf8' }).stdout.split('\t')[0]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * VictoriaMetrics single-node (/usr/bin/victoria-metrics, pinned to the last core) fed the same
 * series over remote write: the growth of its -storageDataPath (data and index) per point once
 * flushed, force-merged and no longer changing. null when it is not installed.
 */
async function vmBytesPerPoint(series: TimeSeries[]): Promise<number | null> {
  if (!existsSync(VM)) return null;
  const data = mkdtempSync(join(dir, 'vm-'));
  const port = 18_000 + Math.floor(Math.random() * 20_000);
  const core = String(Math.max(0, cpus().length - 1));
  const vm = spawn('taskset', ['-c', core, VM, `-storageDataPath=${data}`, `-httpListenAddr=127.0.0.1:${port}`, '-retentionPeriod=100y'], {
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    for (;;) {
      const ok = await fetch(`${url}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      await sleep(100);
    }
    const empty = du(data);
    let points = 0;
    for (let i = 0; i < series.length; i += 50) {
      const part = series.slice(i, i + 50);
      for (const s of part) points += s.samples.length;
      const r = await fetch(`${url}/api/v1/write`, {
        method: 'POST',
        headers: { 'content-encoding': 'snappy', 'content-type': 'application/x-protobuf', 'x-prometheus-remote-write-version': '0.1.0' },
        body: new Uint8Array(compress(encodeWriteRequest(part))),
      });
      if (!r.ok) throw new Error(`victoria-metrics: ${r.status} ${await r.text()}`);
    }
    await fetch(`${url}/internal/force_flush`);
    await fetch(`${url}/internal/force_merge`);
    // until its on-disk size stops changing (merges done) for 3 s running
    let last = -1;
    let still = 0;
    while (still < 3) {
      await sleep(1000);
      const now = du(data);
      still = now === last ? still + 1 : 0;
      last = now;
    }
    return (last - empty) / points;
  } finally {
    vm.kill();
    await new Promise((r) => vm.once('exit', r));
  }
}

const out: Record<Layout, unknown> = { v2: undefined, v1: undefined };
for (const layout of ['v2', 'v1'] as const) {
  const bytes = {} as Record<Shape, { file: number; raw: number }>;
  for (const s of SHAPES) bytes[s] = await bytesPerPoint(layout, s);
  out[layout] = { write: await writeRate(layout), query: await queries(layout), bytes };
}
const vmBytes: Partial<Record<Shape, number | null>> = {};
for (const shape of ['walk', 'counter', 'constant'] as const) vmBytes[shape] = await vmBytesPerPoint(peer[shape] as TimeSeries[]);
console.log(JSON.stringify({ ...out, vm: vmBytes, bytesSeries: BYTES_SERIES, bytesHours: BYTES_HOURS }));
