import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Aggregator, type FlushResult, GraphiteExporter, InfluxExporter } from 'ekg-agent';
import { type Engine, startVictoria } from './engines.js';
import { need } from './system.js';

/**
 * The Graphite (plaintext, tagged) and InfluxDB (line protocol over HTTP) exporters against the
 * real listeners of Debian's victoria-metrics, the data read back through its export API.
 */
const skip = need('victoria-metrics');
const dir = mkdtempSync(join(tmpdir(), 'ekg-exporters-vm-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const STEP = 10_000;
const last = Math.floor((Date.now() - 60_000) / STEP) * STEP;
const first = last - 29 * STEP;

/** 30 windows: a gauge with the window's number, a counter of 10, a timer of 1..20 ms, on one instance. */
function windows(): FlushResult[] {
  const agg = new Aggregator();
  agg.flush(first - STEP);
  const out: FlushResult[] = [];
  for (let i = 0; i < 30; i++) {
    const tags = 'host:web-1,pid:42,service:shop';
    agg.add({ name: 'seq', tags, type: 'g', value: i, weight: 1 });
    agg.add({ name: 'http.requests', tags, type: 'c', value: 10, weight: 1 });
    for (let k = 1; k <= 20; k++) agg.add({ name: 'http.duration', tags, type: 'ms', value: k, weight: 1 });
    out.push(agg.flush(first + i * STEP));
  }
  return out;
}

/** Every series matching `match` from VictoriaMetrics' export API: labels and (timestamp, value) pairs. */
async function exported(
  vm: Engine,
  match: string,
): Promise<Array<{ metric: Record<string, string>; values: number[]; timestamps: number[] }>> {
  await fetch(`${vm.url}/internal/force_flush`);
  const r = await fetch(`${vm.url}/api/v1/export?match[]=${encodeURIComponent(match)}&start=${first / 1000 - 60}&end=${last / 1000 + 60}`);
  const text = await r.text();
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

async function until<T>(fn: () => Promise<T | undefined>, what: string): Promise<T> {
  const end = Date.now() + 60_000;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

describe('exporters into victoria-metrics', { skip }, () => {
  let vm: Engine & { port: number; ports: number[] };
  let graphitePort: number;
  before(async () => {
    vm = await startVictoria(dir, ['-graphiteListenAddr=127.0.0.1:0']);
    graphitePort = vm.ports.find((p) => p !== vm.port) as number;
  });
  after(() => vm?.stop());

  test('graphite: tagged plaintext arrives as series with their tags, every window at its time', async () => {
    const e = new GraphiteExporter({ address: `127.0.0.1:${graphitePort}`, prefix: 'g.' });
    for (const w of windows()) e.write(w);
    await e.close();
    const seq = await until(async () => {
      const s = (await exported(vm, 'g.seq')).find((x) => x.values.length >= 30);
      return s;
    }, 'g.seq with 30 points');
    assert.deepEqual(seq.metric, { __name__: 'g.seq', host: 'web-1', pid: '42', service: 'shop' });
    assert.deepEqual(
      seq.values,
      Array.from({ length: 30 }, (_, i) => i),
    );
    assert.deepEqual(
      seq.timestamps,
      Array.from({ length: 30 }, (_, i) => first + i * STEP),
    );
    const p99 = (await exported(vm, 'g.http.duration.p99'))[0];
    assert.ok(
      p99?.values.every((v) => Math.abs(v - 20) <= 0.2),
      `p99 of 1..20 is 20: ${p99?.values}`,
    );
    const reqs = (await exported(vm, 'g.http.requests'))[0];
    assert.ok(reqs?.values.every((v) => v === 10));
    assert.equal(e.status.samples_sent, 30 * 11);
  });

  test('influx: line protocol over HTTP arrives with its tags and fields', async () => {
    const e = new InfluxExporter({ url: `${vm.url}/write` });
    for (const w of windows()) e.write(w);
    await e.close();
    assert.equal(e.status.batches_sent, 30, e.status.last_error);
    const seq = await until(async () => (await exported(vm, 'seq_value')).find((x) => x.values.length >= 30), 'seq_value');
    assert.deepEqual(seq.metric, { __name__: 'seq_value', host: 'web-1', pid: '42', service: 'shop' });
    assert.deepEqual(
      seq.values,
      Array.from({ length: 30 }, (_, i) => i),
    );
    assert.equal(seq.timestamps[0], first);
    const count = (await exported(vm, 'http.duration_count'))[0];
    assert.ok(
      count?.values.every((v) => v === 20),
      `${count?.values}`,
    );
    const max = (await exported(vm, 'http.duration_max'))[0];
    assert.ok(max?.values.every((v) => v === 20));
  });
});
