import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Aggregator, encodeWriteRequest, type FlushResult, parsePacket, RemoteWriteExporter, snappyCompress } from 'ekg-agent';
import { type Engine, startPrometheus, startVictoria } from './engines.js';
import { need } from './system.js';

/**
 * Remote write into the real receivers (Debian's Prometheus 2.x and VictoriaMetrics) with the
 * StatsD input that used to produce batches they refuse (issue 18): colliding tags, a `quantile`
 * tag on a timer, a bare tag, overflowing values, `_total` names, a series that stops. Between the
 * windows go two poison batches (not snappy; a label name twice): each is set aside and delivery
 * carries on behind it.
 */
const dir = mkdtempSync(join(tmpdir(), 'ekg-rw-receivers-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const POISON = Symbol('poison');
type Poison = { [POISON]: Uint8Array };

/** The real exporter, with a way to slip a hand-made body into its queue. */
class Exporter extends RemoteWriteExporter {
  protected override encode(w: FlushResult): Array<{ body: Uint8Array; samples: number }> {
    const p = (w as unknown as Partial<Poison>)[POISON];
    return p ? [{ body: p, samples: 1 }] : super.encode(w);
  }
}

const STEP = 10_000;

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, what: string, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function run(start: (dir: string) => Promise<Engine>): Promise<void> {
  const engine = await start(dir);
  after(() => engine.stop());
  const t0 = Math.floor((Date.now() - 120_000) / STEP) * STEP;
  const agg = new Aggregator();
  agg.flush(t0);
  const window = (text: string, i: number) => {
    parsePacket(text, { sample: (s) => agg.add(s), bad: () => {} });
    return agg.flush(t0 + i * STEP);
  };
  const wA = window(
    [
      'x:1|c|#a.b:1,a_b:2',
      't:5|ms|#quantile:x',
      'z:1|c|#flag',
      'z:2|c',
      'big:1e308|c',
      'big:1e308|c',
      'y:1.7e308|ms',
      'c_total:4|c',
      'runtime.active.total:3|g',
      'gone:1|g',
      'seq:1|g',
    ].join('\n'),
    1,
  );
  const wB = window('seq:2|g\nz:1|c', 2);
  const wC = window('seq:3|g', 3);
  const tA = t0 + STEP;
  const tB = t0 + 2 * STEP;
  const tC = t0 + 3 * STEP;
  const notSnappy = Uint8Array.of(0xff, 0x00, 0x01, 0x02, 0x03);
  const twice = snappyCompress(
    encodeWriteRequest([
      {
        labels: [
          ['__name__', 'poison'],
          ['a', '1'],
          ['a', '2'],
        ],
        samples: [[1, tA]],
      },
    ]),
  );
  const poison = (body: Uint8Array) => ({ start: 0, end: 0, series: [], [POISON]: body }) as unknown as FlushResult;

  const e = new Exporter({ url: engine.writeUrl, backoff: 20, maxBackoff: 100 });
  const w = process.stderr.write;
  const logged: string[] = [];
  process.stderr.write = ((s: string) => logged.push(String(s)) > 0) as typeof process.stderr.write;
  try {
    for (const x of [wA, poison(notSnappy), poison(twice), wB, wC]) e.write(x);
    await until(
      () => (e.status.queued === 0 && e.status.batches_sent + e.status.batches_rejected === 5 ? true : undefined),
      'the queue drains',
    );
  } finally {
    process.stderr.write = w;
    await e.close();
  }
  assert.equal(e.status.batches_rejected, engine.name === 'prometheus' ? 2 : 1, `the poison is set aside (${logged.join('')})`);
  assert.ok(e.status.batches_sent >= 3, 'every window behind it is delivered');
  assert.ok(logged.filter((l) => l.includes('refused')).length <= 2, 'logged once per kind of refusal');

  if (engine.name === 'victoria-metrics') await fetch(`${engine.url}/internal/force_flush`);
  const query = async (q: string, at: number) => {
    const r = await fetch(`${engine.url}/api/v1/query?query=${encodeURIComponent(q)}&time=${at / 1000}`);
    const j = (await r.json()) as { status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
    assert.equal(j.status, 'success', q);
    return j.data.result;
  };
  const value = async (q: string, at: number) => {
    const r = await until(async () => {
      const res = await query(q, at);
      return res.length > 0 ? res : undefined;
    }, `${engine.name}: ${q}`);
    assert.equal(r.length, 1, `${q}: one series, got ${JSON.stringify(r)}`);
    return Number(r[0]?.value[1]);
  };
  assert.equal(await value('seq', tC), 3, 'the last window arrived, after the poison');
  assert.equal(await value('x_total{a_b="2"}', tA), 1, 'colliding tags: one a_b label');
  assert.equal(await value('t{exported_quantile="x",quantile="0.5"}', tA), 5, 'a user quantile tag kept apart');
  assert.equal(await value('z_total', tA), 2, 'z|#flag and z: one series, the exact one');
  assert.equal(await value('c_total', tA), 4, 'x_total stays x_total');
  assert.equal(await value('runtime_active', tA), 3, 'a gauge does not end in _total');
  assert.equal(await value('y_count', tA), 1);
  assert.deepEqual(await query('big_total', tA), [], 'an infinite counter is left out');
  assert.deepEqual(await query('c_total_total', tA), []);
  assert.deepEqual(await query('runtime_active_total', tA), []);
  // VictoriaMetrics takes a label named twice (the last value wins); Prometheus refuses the batch
  if (engine.name === 'prometheus') assert.deepEqual(await query('poison', tA), []);
  assert.equal(await value('gone', tA), 1);
  assert.deepEqual(await query('gone', tB + 1000), [], 'the series that stopped is stale at once, not for 5 minutes');
  assert.equal(await value('z_total', tB), 3, 'a counter continues cumulatively');
}

test('remote write into the real Prometheus: edge cases accepted, a poison batch set aside, staleness honoured', {
  skip: need('prometheus'),
  timeout: 90_000,
}, async () => {
  await run(startPrometheus);
});

test('remote write into the real VictoriaMetrics: the same', { skip: need('victoria-metrics'), timeout: 90_000 }, async () => {
  await run((d) => startVictoria(d));
});
