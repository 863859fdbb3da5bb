import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { compress, uncompress } from 'snappyjs';
import { Aggregator } from '../aggregate/aggregator.js';
import { RemoteWriteExporter, toTimeSeries } from './remote-write.js';

test('snappy (snappyjs, raw block format) round-trips text, binary and long runs', () => {
  const inputs = [
    new Uint8Array(0),
    new TextEncoder().encode('a'),
    new TextEncoder().encode('runtime_eventloop_delay_p99{service="api"} '.repeat(3000)),
    Uint8Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 251),
    Uint8Array.from({ length: 70_000 }, () => 0),
  ];
  for (const x of inputs) assert.deepEqual(uncompress(compress(x)), x);
  const text = inputs[2] as Uint8Array;
  assert.ok(compress(text).length < text.length / 10, 'repetitive text compresses');
});

test('a window in the Prometheus spelling: sorted labels, cumulative counters, summaries with min and max', () => {
  const agg = new Aggregator();
  agg.add({ name: 'http.requests', tags: 'service:api,host:h', type: 'c', value: 3, weight: 1 });
  agg.add({ name: 'http.duration', tags: 'service:api', type: 'ms', value: 5, weight: 1 });
  agg.add({ name: 'http.duration', tags: 'service:api', type: 'ms', value: 7, weight: 1 });
  agg.flush();
  agg.add({ name: 'http.requests', tags: 'service:api,host:h', type: 'c', value: 2, weight: 1 });
  const ts = toTimeSeries(agg.flush());
  assert.deepEqual(ts[0]?.labels, [
    ['__name__', 'http_requests_total'],
    ['host', 'h'],
    ['service', 'api'],
  ]);
  assert.equal(ts[0]?.samples[0]?.[0], 5, 'cumulative across windows');
  const first = toTimeSeries({ start: 0, end: 1000, series: [] });
  assert.equal(first.length, 0);
});

test('5xx, 429 and a refused connection are retried in order; another 4xx sets the batch aside', { timeout: 120_000 }, async () => {
  const answers = [503, 429, 204, 400, 204];
  const got: Array<{ status: number; encoding?: string; type?: string; version?: string; bytes: number }> = [];
  const srv = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = answers.shift() ?? 204;
      got.push({
        status,
        encoding: req.headers['content-encoding'],
        type: req.headers['content-type'],
        version: req.headers['x-prometheus-remote-write-version'] as string,
        bytes: uncompress(Buffer.concat(chunks)).length,
      });
      res.writeHead(status).end(status === 400 ? 'out of order sample' : '');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  after(() => srv.close());
  const rw = new RemoteWriteExporter({
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/api/v1/write`,
    backoff: 20,
    maxBackoff: 100,
  });
  const agg = new Aggregator();
  const lines: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((l: string) => {
    lines.push(String(l));
    return true;
  }) as typeof process.stderr.write;
  try {
    for (let i = 0; i < 3; i++) {
      agg.add({ name: `w${i}`, tags: '', type: 'g', value: i, weight: 1 });
      rw.write(agg.flush());
    }
    for (const end = Date.now() + 60_000; rw.status.queued > 0; await new Promise((r) => setTimeout(r, 20)))
      if (Date.now() > end) throw new Error(`still ${rw.status.queued} batches queued after 60 s`);
  } finally {
    process.stderr.write = write;
  }
  assert.deepEqual(
    got.map((g) => g.status),
    [503, 429, 204, 400, 204],
  );
  for (const g of got) {
    assert.equal(g.encoding, 'snappy');
    assert.equal(g.type, 'application/x-protobuf');
    assert.equal(g.version, '0.1.0');
    assert.ok(g.bytes > 0);
  }
  assert.equal(rw.status.batches_sent, 2);
  assert.equal(rw.status.batches_rejected, 1);
  assert.equal(rw.status.failures, 2);
  assert.equal(lines.filter((l) => /refused/.test(l)).length, 1, 'the set-aside batch is logged once');
});
