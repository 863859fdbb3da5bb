import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { uncompress as decompress } from 'snappyjs';
import { Aggregator, type FlushResult } from '../aggregate/aggregator.js';
import { Sketch } from '../aggregate/sketch.js';
import type { QueuedExporter } from './exporter.js';
import { GraphiteExporter } from './graphite.js';
import { HerokuExporter } from './heroku.js';
import { InfluxExporter } from './influx.js';
import { MackerelExporter } from './mackerel.js';
import { exponentialBuckets, OtlpExporter } from './otlp.js';
import { RemoteWriteExporter } from './remote-write.js';

const dir = mkdtempSync(join(tmpdir(), 'ekg-exporters-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const spool = () => join(dir, `spool-${n++}`);

/** Windows of 10 s, numbered by a gauge `seq` (so a receiver can tell which window a body carries). */
function windows(count: number, first = 1_795_000_000_000): FlushResult[] {
  const agg = new Aggregator();
  agg.flush(first - 10_000);
  const out: FlushResult[] = [];
  for (let i = 0; i < count; i++) {
    const tags = 'host:web-1,pid:42,service:shop';
    agg.add({ name: 'seq', tags, type: 'g', value: i, weight: 1 });
    agg.add({ name: 'runtime.gc.major.count', tags, type: 'c', value: 2, weight: 1 });
    agg.add({ name: 'runtime.gc.major.pause', tags, type: 'c', value: 1.5, weight: 1 });
    agg.add({ name: 'runtime.eventloop.utilization', tags, type: 'g', value: 0.25, weight: 1 });
    for (let k = 1; k <= 10; k++) agg.add({ name: 'http.duration', tags, type: 'ms', value: k, weight: 1 });
    out.push(agg.flush(first + i * 10_000));
  }
  return out;
}

interface Got {
  status?: number;
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** A local HTTP target whose answers are scripted: a status per request, 'hang' or 'reset'. */
async function target(script: Array<number | 'hang' | 'reset'> = []): Promise<{ url: string; got: Got[]; server: Server }> {
  const got: Got[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const a = script.shift() ?? 200;
      if (a === 'hang') return;
      if (a === 'reset') return req.socket.destroy();
      if (a < 300)
        got.push({ status: a, method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(a, { 'content-type': 'application/json' }).end(a >= 400 ? '{"error":{"message":"scripted"}}' : '{"success":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, got, server };
}

/**
 * A target that is down (each connection is reset before a byte is read, so nothing is taken and a
 * Graphite sender never sees a clean close) until `up()`, on a port it holds the whole time: closing
 * the port and listening on it again raced other processes for it (EADDRINUSE under parallel runs).
 */
async function outage(serve: (s: Socket) => void): Promise<{ port: number; up: () => void }> {
  let isUp = false;
  const server = createTcpServer((s) => (isUp ? serve(s) : s.resetAndDestroy()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  after(() => server.close());
  return {
    port: (server.address() as { port: number }).port,
    up: () => {
      isUp = true;
    },
  };
}

/** Waits until the exporter's queue is empty; fails loudly after `ms` (a bound on failure, not the wait). */
async function settle(e: QueuedExporter, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (e.status.queued > 0) {
    if (Date.now() > end) throw new Error(`still ${e.status.queued} batches queued after ${ms} ms: ${JSON.stringify(e.status)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const quiet = <T>(fn: () => Promise<T>): Promise<T> => {
  const w = process.stderr.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  return fn().finally(() => {
    process.stderr.write = w;
  });
};

describe('mackerel', () => {
  test('service metrics: path, X-Api-Key, [{name,time,value}] with names Mackerel takes; 429 backs off and retries', async () => {
    const t = await target([429, 200]);
    const e = new MackerelExporter({ apiKey: 'key-123', service: 'shop', url: t.url, backoff: 20, spoolDir: spool() });
    await quiet(async () => {
      e.write(windows(1)[0] as FlushResult);
      await settle(e);
    });
    assert.equal(t.got.length, 1, 'the 429 was retried once, then taken');
    const g = t.got[0] as Got;
    assert.equal(g.method, 'POST');
    assert.equal(g.path, '/api/v0/services/shop/tsdb');
    assert.equal(g.headers['x-api-key'], 'key-123');
    assert.equal(g.headers['content-type'], 'application/json');
    const body = JSON.parse(g.body.toString()) as Array<{ name: string; time: number; value: number }>;
    for (const p of body) {
      assert.deepEqual(Object.keys(p).sort(), ['name', 'time', 'value']);
      assert.match(p.name, /^[a-zA-Z0-9._-]+$/);
      assert.equal(p.time, 1_795_000_000);
    }
    const names = body.map((p) => p.name);
    assert.ok(names.includes('seq.web-1_42'));
    assert.ok(names.includes('http.duration.p99.web-1_42'));
    assert.equal(e.status.failures, 1);
    assert.equal(e.status.batches_sent, 1);
    await e.close();
  });

  test('host metrics: a graph definition once per group, then custom.* metrics with hostId', async () => {
    const t = await target();
    const e = new MackerelExporter({ apiKey: 'k', hostId: 'abcXYZ', url: t.url, spoolDir: spool() });
    for (const w of windows(2)) e.write(w);
    await settle(e);
    const paths = t.got.map((g) => g.path);
    assert.deepEqual(paths, ['/api/v0/graph-defs/create', '/api/v0/tsdb', '/api/v0/tsdb'], 'graph definitions once, before the metrics');
    const defs = JSON.parse((t.got[0] as Got).body.toString()) as Array<{ name: string; unit: string; metrics: Array<{ name: string }> }>;
    const lat = defs.find((d) => d.name === 'custom.http.duration.p99');
    assert.equal(lat?.unit, 'milliseconds');
    assert.equal(lat?.metrics[0]?.name, 'custom.http.duration.p99.*');
    const pts = JSON.parse((t.got[1] as Got).body.toString()) as Array<{ hostId: string; name: string }>;
    assert.ok(pts.every((p) => p.hostId === 'abcXYZ' && p.name.startsWith('custom.')));
    await e.close();
  });

  test('a hang (timeout), a reset and a 500 are each retried; the batch then arrives once', async () => {
    const t = await target(['hang', 'reset', 500, 200]);
    const e = new MackerelExporter({
      apiKey: 'k',
      service: 'shop',
      url: t.url,
      // long enough that a loaded machine answers a live request in time; the hang still costs one timeout
      timeout: 5000,
      backoff: 20,
      maxBackoff: 50,
      spoolDir: spool(),
    });
    await quiet(async () => {
      e.write(windows(1)[0] as FlushResult);
      await settle(e);
    });
    assert.equal(t.got.length, 1);
    assert.equal(e.status.failures, 3);
    assert.equal(e.status.batches_sent, 1);
    await e.close();
  });

  test('a refused batch (400) is set aside and counted; the queue moves on', async () => {
    const t = await target([400, 200]);
    const e = new MackerelExporter({ apiKey: 'k', service: 'shop', url: t.url, spoolDir: spool() });
    await quiet(async () => {
      for (const w of windows(2)) e.write(w);
      await settle(e);
    });
    assert.equal(e.status.batches_rejected, 1);
    assert.equal(e.status.batches_sent, 1);
    await e.close();
  });
});

describe('heroku', () => {
  test('the agentmon contract: every 20 s, counters and gauges with Heroku names, Measurements-Count and -Time', async () => {
    const t = await target();
    const e = new HerokuExporter({ url: `${t.url}/metrics?token=x`, spoolDir: spool() });
    for (const w of windows(4)) e.write(w);
    await settle(e);
    assert.equal(t.got.length, 2, 'four 10 s windows are two 20 s payloads');
    const g = t.got[0] as Got;
    assert.equal(g.path, '/metrics?token=x');
    assert.equal(g.headers['content-type'], 'application/json');
    const p = JSON.parse(g.body.toString()) as { counters: Record<string, number>; gauges: Record<string, number> };
    assert.equal(Number(g.headers['measurements-count']), Object.keys(p.counters).length + Object.keys(p.gauges).length);
    assert.equal(g.headers['measurements-time'], '2026-11-18T11:06:50Z', 'whole seconds, as agentmon');
    // two windows of 2 major collections and 1.5 ms of pause each: Heroku's names and units
    assert.equal(p.counters['node.gc.old.collections'], 4);
    assert.equal(p.counters['node.gc.old.pause.ns'], 3e6);
    assert.equal(p.gauges['node.eventloop.usage.percent'], 0.25, "a 0-1 fraction, as Heroku's collector sends it");
    assert.equal(p.gauges.seq, 1, 'a gauge keeps its last level');
    await e.close();
  });
});

describe('otlp', () => {
  test('resource attributes, delta sums, gauges, exponential histograms from the sketch; retries only 429/502/503/504', async () => {
    const t = await target([503, 200, 500]);
    const e = new OtlpExporter({ url: `${t.url}/v1/metrics`, backoff: 20, spoolDir: spool(), encoding: 'json', compression: 'none' });
    await quiet(async () => {
      for (const w of windows(2)) e.write(w);
      await settle(e);
    });
    assert.equal(e.status.failures, 1, '503 retried');
    assert.equal(e.status.batches_rejected, 1, '500 is not retried');
    const g = t.got[0] as Got;
    assert.equal(g.path, '/v1/metrics');
    assert.equal(g.headers['content-type'], 'application/json');
    const body = JSON.parse(g.body.toString()) as {
      resourceMetrics: Array<{
        resource: { attributes: Array<{ key: string; value: Record<string, unknown> }> };
        scopeMetrics: Array<{ metrics: Array<Record<string, any>> }>;
      }>;
    };
    const rm = body.resourceMetrics[0];
    assert.ok(rm);
    assert.deepEqual(Object.fromEntries(rm.resource.attributes.map((a) => [a.key, a.value])), {
      'host.name': { stringValue: 'web-1' },
      'process.pid': { intValue: '42' },
      'service.name': { stringValue: 'shop' },
    });
    const metrics = rm.scopeMetrics[0]?.metrics ?? [];
    const byName = Object.fromEntries(metrics.map((m) => [m.name, m]));
    assert.equal(byName['nodejs.eventloop.utilization']?.gauge?.dataPoints[0]?.asDouble, 0.25, 'OpenTelemetry name from the catalogue');
    const gc = byName['runtime.gc.major.count'];
    assert.equal(gc?.sum?.aggregationTemporality, 1);
    assert.equal(gc?.sum?.isMonotonic, true);
    const h = byName['http.duration']?.exponentialHistogram;
    assert.equal(h?.aggregationTemporality, 1);
    const dp = h?.dataPoints[0];
    assert.equal(dp.count, '10');
    assert.equal(dp.sum, 55);
    assert.equal(dp.min, 1);
    assert.equal(dp.max, 10);
    const counted = (dp.positive.bucketCounts as string[]).reduce((a, c) => a + Number(c), 0) + Number(dp.zeroCount);
    assert.equal(counted, 10, 'bucket counts add up to the count');
    assert.equal(BigInt(dp.timeUnixNano) - BigInt(dp.startTimeUnixNano), 10_000_000_000n);
    await e.close();
  });

  test('each value lands in the base-2 bucket that holds it, at a scale that keeps 160 buckets at most', () => {
    const sk = new Sketch();
    for (const v of [0.5, 1, 3, 100, 1e6]) sk.add(v);
    sk.add(0, 2);
    const b = exponentialBuckets(sk);
    assert.ok(b.positive.bucketCounts.length <= 160);
    assert.equal(b.zeroCount, 2);
    const base = 2 ** (2 ** -b.scale);
    for (const v of [0.5, 1, 3, 100, 1e6]) {
      const i = Math.ceil(Math.log(v) / Math.log(base)) - 1;
      const k = i - b.positive.offset;
      assert.ok(
        Number(b.positive.bucketCounts[k]) >= 1 ||
          Number(b.positive.bucketCounts[k + 1]) >= 1 ||
          Number(b.positive.bucketCounts[k - 1]) >= 1,
        `${v}`,
      );
    }
  });
});

/** Just enough of a remote-write WriteRequest: each series' labels and first sample value. */
function timeSeries(buf: Uint8Array): Array<{ labels: Record<string, string>; value: number }> {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const varint = (at: { i: number }) => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = buf[at.i++] as number;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  const fields = (from: number, to: number, fn: (field: number, wire: number, at: { i: number }) => void) => {
    const at = { i: from };
    while (at.i < to) {
      const key = varint(at);
      fn(key >> 3, key & 7, at);
    }
  };
  const out: Array<{ labels: Record<string, string>; value: number }> = [];
  fields(0, buf.length, (_f, _w, at) => {
    const len = varint(at);
    const end = at.i + len;
    const ts = { labels: {} as Record<string, string>, value: Number.NaN };
    fields(at.i, end, (f, _w2, at2) => {
      const l = varint(at2);
      const e2 = at2.i + l;
      if (f === 1) {
        const kv: string[] = [];
        fields(at2.i, e2, (_f3, _w3, at3) => {
          const l3 = varint(at3);
          kv.push(Buffer.from(buf.subarray(at3.i, at3.i + l3)).toString());
          at3.i += l3;
        });
        ts.labels[kv[0] as string] = kv[1] as string;
      } else if (f === 2 && Number.isNaN(ts.value)) ts.value = view.getFloat64(at2.i + 1, true);
      at2.i = e2;
    });
    out.push(ts);
    at.i = end;
  });
  return out;
}

/** The sequence numbers of the windows a body carries, for each wire format. */
const seqs: Record<string, (g: Got) => number[]> = {
  mackerel: (g) =>
    (JSON.parse(g.body.toString()) as Array<{ name: string; value: number }>).filter((p) => p.name.startsWith('seq.')).map((p) => p.value),
  heroku: (g) => [(JSON.parse(g.body.toString()) as { gauges: { seq: number } }).gauges.seq],
  otlp: (g) =>
    (
      JSON.parse(g.body.toString()) as {
        resourceMetrics: Array<{
          scopeMetrics: Array<{ metrics: Array<{ name: string; gauge?: { dataPoints: Array<{ asDouble: number }> } }> }>;
        }>;
      }
    ).resourceMetrics.flatMap((r) =>
      r.scopeMetrics.flatMap((s) => s.metrics.filter((m) => m.name === 'seq').map((m) => m.gauge?.dataPoints[0]?.asDouble as number)),
    ),
  influx: (g) => [...g.body.toString().matchAll(/^seq,\S+ value=(\d+) /gm)].map((m) => Number(m[1])),
  remote_write: (g) =>
    timeSeries(decompress(g.body))
      .filter((t) => t.labels.__name__ === 'seq')
      .map((t) => t.value),
};

const makers: Record<string, (url: string, spoolDir: string) => QueuedExporter> = {
  mackerel: (url, s) => new MackerelExporter({ apiKey: 'k', service: 'shop', url, spoolDir: s, backoff: 20, maxBackoff: 100 }),
  heroku: (url, s) => new HerokuExporter({ url, period: 10_000, spoolDir: s, backoff: 20, maxBackoff: 100 }),
  otlp: (url, s) =>
    new OtlpExporter({ url: `${url}/v1/metrics`, spoolDir: s, backoff: 20, maxBackoff: 100, encoding: 'json', compression: 'none' }),
  influx: (url, s) => new InfluxExporter({ url: `${url}/write`, spoolDir: s, backoff: 20, maxBackoff: 100 }),
  remote_write: (url, s) => new RemoteWriteExporter({ url: `${url}/api/v1/write`, spoolDir: s, backoff: 20, maxBackoff: 100 }),
};

describe('outages: every point arrives once and in order, across a restart of the agent', () => {
  for (const [kind, make] of Object.entries(makers)) {
    test(kind, { timeout: 120_000 }, async () => {
      // the target is down: every connection is reset
      const got: Got[] = [];
      const back = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          got.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
          res.writeHead(200).end('{}');
        });
      });
      after(() => back.closeAllConnections());
      const down = await outage((s) => back.emit('connection', s));
      const url = `http://127.0.0.1:${down.port}`;
      const dirOf = spool();
      const ws = windows(60);
      let e = make(url, dirOf);
      const heapBefore = process.memoryUsage().heapUsed;
      await quiet(async () => {
        for (const w of ws.slice(0, 30)) e.write(w);
        await new Promise((r) => setTimeout(r, 150));
        assert.equal(e.status.queued > 0, true);
        // the agent restarts in the middle of the outage: the spool carries the batches over
        await e.close();
        e = make(url, dirOf);
        for (const w of ws.slice(30)) e.write(w);
        assert.ok(e.status.queued >= 60, `queued ${e.status.queued}`);
        assert.ok(e.status.failures > 0 || e.status.queued > 0);
      });
      assert.ok(process.memoryUsage().heapUsed - heapBefore < 30 << 20, 'batches wait on disk, not in memory');
      // the target comes back on the same port
      down.up();
      await quiet(() => settle(e));
      assert.equal(e.status.queued, 0);
      const seen = got.flatMap((g) => seqs[kind]?.(g) ?? []);
      assert.deepEqual(
        seen,
        ws.map((_, i) => i),
        'each window once, in order',
      );
      assert.equal(e.status.batches_dropped, 0);
      await e.close();
    });
  }

  test('graphite: down, restart, up over TCP', { timeout: 120_000 }, async () => {
    let text = '';
    const down = await outage((s) => s.on('data', (d) => (text += d)));
    const port = down.port;
    const dirOf = spool();
    const ws = windows(20);
    let e = new GraphiteExporter({ address: `127.0.0.1:${port}`, spoolDir: dirOf, backoff: 20, maxBackoff: 100 });
    await quiet(async () => {
      for (const w of ws.slice(0, 10)) e.write(w);
      await new Promise((r) => setTimeout(r, 100));
      await e.close();
      e = new GraphiteExporter({ address: `127.0.0.1:${port}`, spoolDir: dirOf, backoff: 20, maxBackoff: 100 });
      for (const w of ws.slice(10)) e.write(w);
    });
    down.up();
    await quiet(() => settle(e));
    // sent is not yet read: wait for every line to arrive
    const line = /^seq;host=web-1;pid=42;service=shop (\d+) (\d+)$/gm;
    for (const end = Date.now() + 60_000; [...text.matchAll(line)].length < ws.length && Date.now() < end; )
      await new Promise((r) => setTimeout(r, 20));
    const seen = [...text.matchAll(/^seq;host=web-1;pid=42;service=shop (\d+) (\d+)$/gm)].map((m) => Number(m[1]));
    assert.deepEqual(
      seen,
      ws.map((_, i) => i),
    );
    await e.close();
  });

  test('a full spool drops the oldest batches and counts them', async () => {
    const down = await outage(() => undefined);
    const e = new InfluxExporter({ url: `http://127.0.0.1:${down.port}/write`, spoolDir: spool(), maxBatches: 5, backoff: 1000 });
    await quiet(async () => {
      for (const w of windows(12)) e.write(w);
    });
    assert.equal(e.status.queued, 5);
    assert.equal(e.status.batches_dropped, 7);
    await quiet(() => e.close());
  });
});

test('several exporters from the YAML file at once, in a running agent; its self-metrics show each', { timeout: 120_000 }, async () => {
  const { Agent } = await import('../agent.js');
  const { loadConfig } = await import('../config.js');
  const { writeFileSync } = await import('node:fs');
  const otlp = await target();
  const heroku = await target();
  const data = join(dir, 'agent-data');
  const yaml = join(dir, 'agent.yaml');
  writeFileSync(
    yaml,
    `exporters:\n  - type: otlp\n    url: ${otlp.url}/v1/metrics\n  - type: heroku\n    url: ${heroku.url}/ingest\n    period: 1s\n`,
  );
  const c = loadConfig(
    ['--config', yaml, '--statsd', 'off', '--http', '127.0.0.1:0', '--data', data, '--console', 'off', '--store', 'off'],
    {},
  );
  assert.ok(c !== 'help');
  const agent = new Agent(c, []);
  await agent.start({ timer: false });
  after(() => agent.stop());
  agent.ingest('checkout.total:3|c|#service:shop,pid:7\nqueue.depth:5|g|#service:shop,pid:7');
  // a window past the Heroku period of 1 s
  await new Promise((r) => setTimeout(r, 1100));
  agent.flush();
  const end = Date.now() + 60_000;
  while ((otlp.got.length === 0 || heroku.got.length === 0) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  assert.equal(otlp.got.length, 1);
  assert.equal(heroku.got.length, 1);
  assert.deepEqual(JSON.parse((heroku.got[0] as Got).body.toString()), { counters: { 'checkout.total': 3 }, gauges: { 'queue.depth': 5 } });
  const self = (await (await fetch(`http://127.0.0.1:${agent.addresses().http}/api/v1/self`)).json()) as {
    exporters: Record<string, { batches_sent: number; queued: number }>;
  };
  assert.deepEqual(
    Object.keys(self.exporters).sort(),
    [`heroku 127.0.0.1:${new URL(heroku.url).port}`, `otlp 127.0.0.1:${new URL(otlp.url).port}`].sort(),
  );
  for (const st of Object.values(self.exporters)) assert.equal(st.batches_sent, 1);
  const metrics = await (await fetch(`http://127.0.0.1:${agent.addresses().http}/metrics`)).text();
  assert.match(metrics, /ekg_agent_exporter_batches_sent_total\{exporter="otlp 127\.0\.0\.1:\d+"\} 1/);
});
