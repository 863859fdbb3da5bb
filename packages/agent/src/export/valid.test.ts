import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { after, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { uncompress as decompress } from 'snappyjs';
import type { FlushResult } from '../aggregate/aggregator.js';
import { statsdWindows } from '../testing/windows.js';
import { INVALID_TRIES, parseRetryAfter, RETRY_AFTER_CAP, retryDelay, USER_AGENT } from './exporter.js';
import { mappingOf, OtlpExporter, otlpJson, otlpModel, SCOPE, ZERO_THRESHOLD } from './otlp.js';
import { encodeWriteRequest } from './protobuf.js';
import { type Dropped, RemoteWriteExporter, toTimeSeries } from './remote-write.js';

const statsd = statsdWindows;
const one = (text: string) => statsd(text)[0] as FlushResult;

const labelsOf = (w: FlushResult, d?: Dropped) => toTimeSeries(w, d).map((t) => Object.fromEntries(t.labels));

/** Every key of a decoded JSON body, for "no null" and "integers are strings" checks. */
function walk(v: unknown, fn: (key: string, v: unknown) => void, key = ''): void {
  fn(key, v);
  if (Array.isArray(v)) for (const x of v) walk(x, fn, key);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, fn, k);
}

type Json = Record<string, any>;
const metricsOf = (body: Json): Json[] => body.resourceMetrics.flatMap((r: Json) => r.scopeMetrics.flatMap((s: Json) => s.metrics));

describe('remote write: valid by construction', () => {
  test('two tags that give one label name: one label, the tag already spelled that way wins, counted', () => {
    const d: Dropped = { labels: 0, values: 0 };
    const [ts] = labelsOf(one('x:1|c|#a.b:1,a_b:2'), d);
    assert.deepEqual(ts, { __name__: 'x_total', a_b: '2' });
    assert.equal(d.labels, 1);
    const [ts2] = labelsOf(one('x:1|c|#a.b:1,a-b:2'));
    assert.deepEqual(ts2, { __name__: 'x_total', a_b: '2' }, 'neither spelled that way: the key that sorts first (a-b < a.b)');
  });

  test('a user tag quantile on a timer becomes exported_quantile; labels sorted and unique', () => {
    const d: Dropped = { labels: 0, values: 0 };
    const ts = toTimeSeries(one('t:5|ms|#quantile:x'), d);
    for (const s of ts) {
      const names = s.labels.map(([k]) => k);
      assert.deepEqual(names, [...new Set(names)].sort(), 'sorted, unique');
    }
    const q = ts.find((s) => s.labels.some(([k, v]) => k === 'quantile' && v === '0.5'));
    assert.deepEqual(Object.fromEntries(q?.labels ?? []), { __name__: 't', exported_quantile: 'x', quantile: '0.5' });
    assert.equal(d.labels, 1);
  });

  test('one series per name and labels: z|#flag and z give one z_total, the exact one, and the other is counted', () => {
    const d: Dropped = { labels: 0, values: 0 };
    const ts = toTimeSeries(one('z:1|c|#flag\nz:2|c'), d);
    assert.equal(ts.length, 1);
    assert.equal(ts[0]?.samples[0]?.[0], 2, 'the series whose tags mapped exactly');
    assert.equal(d.values, 1);
  });

  test('non-finite values are left out and counted, never sent', () => {
    const d: Dropped = { labels: 0, values: 0 };
    const ts = toTimeSeries(one('x:1e308|c\nx:1e308|c\ny:1.7e308|ms\ny:1.7e308|ms'), d);
    for (const s of ts) assert.ok(Number.isFinite(s.samples[0]?.[0]), s.labels.join());
    assert.ok(d.values >= 2, 'x_total (Infinity) and y_sum (Infinity) counted');
    assert.ok(ts.some((s) => s.labels.some(([, v]) => v === 'y_count')));
  });

  test('_total only on counters, never twice', () => {
    const w = one('x_total:1|c\nruntime.active.total:3|g\nq.total:4|ms');
    const names = toTimeSeries(w).map((s) => s.labels.find(([k]) => k === '__name__')?.[1]);
    assert.ok(names.includes('x_total'));
    assert.ok(!names.includes('x_total_total'));
    assert.ok(names.includes('runtime_active'), 'a gauge does not end in _total');
    assert.ok(names.includes('q_count') && names.includes('q_sum'));
    assert.ok(!names.some((n) => n?.startsWith('q_total')));
  });

  test('a series absent from the next window gets the staleness marker 0x7ff0000000000002; a carried gauge is not resent', async () => {
    const bodies: Buffer[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push(Buffer.from(decompress(Buffer.concat(chunks))));
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    after(() => server.close());
    const e = new RemoteWriteExporter({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}/api/v1/write` });
    const [w1, w2] = statsd('gone:1|g\nstays:1|c', 'stays:1|c');
    e.write(w1 as FlushResult);
    e.write(w2 as FlushResult);
    await e.close();
    assert.equal(bodies.length, 2);
    const stale = Buffer.from([0x09, 0x02, 0, 0, 0, 0, 0, 0xf0, 0x7f]);
    assert.equal(bodies[0]?.indexOf(stale), -1);
    assert.ok((bodies[1]?.indexOf(stale) ?? -1) > 0, 'the marker is in the second request');
    assert.ok(bodies[1]?.includes('gone'), 'for the gauge that stopped');
  });

  test('the encoder writes sorted labels and the marker bytes exactly', () => {
    const b = Buffer.from(encodeWriteRequest([{ labels: [['__name__', 'a']], samples: [[0, 1, 'stale']] }]));
    assert.ok(b.includes(Buffer.from([0x02, 0, 0, 0, 0, 0, 0xf0, 0x7f])));
  });
});

describe('exporters: headers, User-Agent, rejected batches, Retry-After', () => {
  async function scripted(answers: Array<{ status: number; body?: string; retryAfter?: string }>) {
    const got: Array<{ headers: IncomingHttpHeaders; body: Buffer; at: number }> = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        got.push({ headers: req.headers, body: Buffer.concat(chunks), at: performance.now() });
        const a = answers.shift() ?? { status: 200 };
        res.writeHead(a.status, a.retryAfter ? { 'retry-after': a.retryAfter } : {}).end(a.body ?? '');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    after(() => {
      server.closeAllConnections();
      server.close();
    });
    return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, got };
  }
  const quiet = async <T>(fn: () => Promise<T>): Promise<T> => {
    const w = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      return await fn();
    } finally {
      process.stderr.write = w;
    }
  };
  const until = async (cond: () => boolean) => {
    while (!cond()) await new Promise((r) => setTimeout(r, 10));
  };

  test('user headers cannot override the protocol headers; User-Agent has name and version', async () => {
    const t = await scripted([]);
    const rw = new RemoteWriteExporter({
      url: `${t.url}/w`,
      headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip', 'X-Scope-OrgID': 'team' },
    });
    rw.write(one('a:1|c'));
    await rw.close();
    const h = t.got[0]?.headers ?? {};
    assert.equal(h['content-type'], 'application/x-protobuf');
    assert.equal(h['content-encoding'], 'snappy');
    assert.equal(h['x-scope-orgid'], 'team');
    assert.match(h['user-agent'] ?? '', /^ekg-agent\/\d+\.\d+\.\d+/);
    assert.equal(h['user-agent'], USER_AGENT);
    const otlp = new OtlpExporter({
      url: `${t.url}/v1/metrics`,
      compression: 'none',
      headers: { 'content-type': 'text/plain', 'CONTENT-ENCODING': 'gzip' },
    });
    otlp.write(one('a:1|c'));
    await otlp.close();
    const h2 = t.got[1]?.headers ?? {};
    assert.equal(h2['content-type'], 'application/x-protobuf');
    assert.equal(h2['content-encoding'], undefined, 'no claimed gzip on a plain body');
  });

  test('a 5xx that calls the data invalid is set aside after a bounded number of tries; later batches go through', async () => {
    const bad = { status: 500, body: 'label name "a_b" is not unique: invalid sample' };
    const t = await scripted(Array.from({ length: INVALID_TRIES }, () => bad));
    const e = new RemoteWriteExporter({ url: `${t.url}/w`, backoff: 1, maxBackoff: 2 });
    await quiet(async () => {
      e.write(one('p:1|c'));
      e.write(one('q:1|c'));
      await until(() => e.status.batches_sent === 1);
    });
    assert.equal(t.got.length, INVALID_TRIES + 1);
    assert.equal(e.status.batches_rejected, 1);
    assert.equal(e.status.queued, 0);
    await e.close();
  });

  test('a plain 5xx is retried until it is taken (the receiver is down, not the data bad)', async () => {
    const t = await scripted(Array.from({ length: INVALID_TRIES + 2 }, () => ({ status: 503, body: 'unavailable' })));
    const e = new RemoteWriteExporter({ url: `${t.url}/w`, backoff: 1, maxBackoff: 2 });
    await quiet(async () => {
      e.write(one('p:1|c'));
      await until(() => e.status.batches_sent === 1);
    });
    assert.equal(e.status.batches_rejected, 0);
    assert.equal(t.got.length, INVALID_TRIES + 3);
    await e.close();
  });

  test('Retry-After is honoured on both paths (never retried sooner), capped', async () => {
    for (const make of [
      (url: string) => new RemoteWriteExporter({ url, backoff: 1, maxBackoff: 2 }),
      (url: string) => new OtlpExporter({ url, backoff: 1, maxBackoff: 2 }),
    ]) {
      const t = await scripted([{ status: 503, retryAfter: '1' }]);
      const e = make(`${t.url}/x`);
      await quiet(async () => {
        e.write(one('p:1|c'));
        await until(() => e.status.batches_sent === 1);
      });
      const gap = (t.got[1]?.at ?? 0) - (t.got[0]?.at ?? 0);
      assert.ok(gap >= 990, `retried after ${gap} ms, not before the 1 s asked`);
      await e.close();
    }
    assert.equal(parseRetryAfter('120'), 120_000);
    assert.equal(parseRetryAfter(new Date(Date.now() + 60_000).toUTCString(), Date.now()) !== undefined, true);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(retryDelay(0, 10 * RETRY_AFTER_CAP), RETRY_AFTER_CAP);
    assert.ok(retryDelay(0, 5000, { backoff: 1 }) >= 5000);
  });
});

describe('otlp: valid by construction', () => {
  const point = (body: Json, name: string) => {
    const m = metricsOf(body).find((x) => x.name === name);
    return (m?.sum ?? m?.gauge ?? m?.exponentialHistogram)?.dataPoints as Json[];
  };

  test('a sampled timer: integer count equal to zeroCount + buckets; zeroCount a string; zeroThreshold the sketch zero band', () => {
    const body = otlpJson(otlpModel(one('x:10|ms|@0.7\ny:0|ms|@0.3\ny:5|ms')));
    const [x] = point(body, 'x');
    assert.equal(x?.count, '1');
    assert.equal(typeof x?.zeroCount, 'string');
    const [y] = point(body, 'y');
    const total = Number(y?.zeroCount) + ((y as Json).positive.bucketCounts as string[]).reduce((a, c) => a + Number(c), 0);
    assert.equal(Number(y?.count), total);
    assert.equal(y?.zeroCount, '3');
    assert.equal(y?.zeroThreshold, ZERO_THRESHOLD);
    walk(body, (k, v) => {
      assert.notEqual(v, null, `${k} is null`);
      if (['count', 'zeroCount', 'startTimeUnixNano', 'timeUnixNano'].includes(k)) assert.match(String(v), /^\d+$/);
      if (k === 'bucketCounts') for (const c of v as unknown[]) assert.match(c as string, /^\d+$/);
    });
  });

  test('overflowing values: no null, no throw; the non-finite ones are left out and counted', () => {
    const d: Dropped = { labels: 0, values: 0 };
    const body = otlpJson(otlpModel(one('x:1e308|c\nx:1e308|c\ny:1.7e308|ms\nz:1e308|ms\nz:1e308|ms'), d));
    const text = JSON.stringify(body);
    assert.ok(!text.includes('null'), text.slice(0, 300));
    assert.equal(point(body, 'x'), undefined, 'x (Infinity) left out');
    assert.equal(d.values, 1);
    const [y] = point(body, 'y');
    assert.equal(y?.count, '1');
    assert.equal(y?.max, 1.7e308);
    const [z] = point(body, 'z');
    assert.equal(z?.sum, undefined, 'an infinite sum is left out (the field is optional)');
    assert.equal(z?.count, '2');
  });

  test('resource: service.name always present (unknown_service), conventional spelling wins; scope has name and version', () => {
    const d: Dropped = { labels: 0, values: 0 };
    const body = otlpJson(otlpModel(one('a:1|c\nb:1|c|#service:x,service.name:y'), d));
    const names = (body.resourceMetrics as Json[]).map(
      (r) => r.resource.attributes.find((a: Json) => a.key === 'service.name')?.value.stringValue,
    );
    assert.deepEqual(names.sort(), ['unknown_service', 'y']);
    assert.equal(d.labels, 1);
    assert.deepEqual((body.resourceMetrics[0] as Json).scopeMetrics[0].scope, SCOPE);
    assert.match(SCOPE.version, /^\d+\.\d+\.\d+/);
  });

  test('a name sent as counter and as gauge keeps one type, across requests too', () => {
    const kinds = new Map();
    const d: Dropped = { labels: 0, values: 0 };
    const [w1, w2] = statsd('k:1|g|#a:1\nk:1|c|#a:2', 'k:1|g|#a:1');
    const b1 = otlpJson(otlpModel(w1 as FlushResult, d, kinds));
    const m1 = metricsOf(b1).filter((m) => m.name === 'k');
    assert.equal(m1.length, 1);
    assert.ok(m1[0]?.sum, 'the counter wins in one window');
    assert.equal(d.values, 1, 'the gauge point counted');
    const b2 = otlpJson(otlpModel(w2 as FlushResult, d, kinds));
    assert.equal(metricsOf(b2).length, 0, 'the next request does not flip k to a gauge');
    const [, w4] = statsd('g:1|g\nh:1|g', 'h:2|g');
    assert.deepEqual(
      metricsOf(otlpJson(otlpModel(w4 as FlushResult))).map((m) => m.name),
      ['h'],
      'a gauge not set in the window is not sent at its carried level',
    );
  });

  test('semantic conventions: seconds, up-down counters, required attributes, {request}', () => {
    const w = one(
      [
        'runtime.eventloop.delay.p99:12.5|g',
        'runtime.memory.rss:1000|g',
        'runtime.memory.spaces.old_space.size:10|g',
        'runtime.memory.spaces.new_space.size:20|g',
        'runtime.memory.spaces.old_space.available:30|g',
        'runtime.cpu.user:250|c',
        'runtime.cpu.utilization:0.5|g',
        'http.inFlight:3|g',
        'runtime.info.uptime:7|g',
        'runtime.memory.heap.used:99|g',
      ].join('\n'),
    );
    const body = otlpJson(otlpModel(w));
    const byName = Object.fromEntries(metricsOf(body).map((m) => [m.name, m]));
    assert.equal(byName['nodejs.eventloop.delay.p99']?.unit, 's');
    assert.equal(byName['nodejs.eventloop.delay.p99']?.gauge.dataPoints[0].asDouble, 0.0125);
    assert.equal(byName['process.memory.usage']?.sum.isMonotonic, false);
    assert.equal(byName['process.memory.usage']?.sum.aggregationTemporality, 2);
    const phys = byName['v8js.memory.heap.space.physical_size']?.sum.dataPoints as Json[];
    assert.deepEqual(
      phys.map((p) => p.attributes.find((a: Json) => a.key === 'v8js.heap.space.name')?.value.stringValue).sort(),
      ['new_space', 'old_space'],
      'one stream per space',
    );
    assert.equal(byName['process.cpu.time']?.unit, 's');
    assert.equal(byName['process.cpu.time']?.sum.dataPoints[0].asDouble, 0.25);
    assert.deepEqual(byName['process.cpu.time']?.sum.dataPoints[0].attributes, [{ key: 'cpu.mode', value: { stringValue: 'user' } }]);
    assert.equal(byName['process.cpu.utilization'], undefined, 'no cpu.mode for the total: it keeps the ekg name');
    assert.ok(byName['runtime.cpu.utilization']);
    assert.equal(byName['http.server.active_requests']?.unit, '{request}');
    assert.equal(byName['http.server.active_requests']?.sum.isMonotonic, false);
    assert.equal(byName['process.uptime']?.gauge.dataPoints[0].asDouble, 7);
    assert.ok(byName['runtime.memory.heap.used'], 'a sum over spaces is not v8js.memory.heap.used (which needs the space)');
    assert.equal(mappingOf({ name: 'runtime.gc.major.count', kind: 'counter' }).name, 'runtime.gc.major.count');
  });

  test('protobuf (default) and gzip (default), with the scope version in the body', async () => {
    const got: Array<{ headers: IncomingHttpHeaders; body: Buffer }> = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        got.push({ headers: req.headers, body: Buffer.concat(chunks) });
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    after(() => server.close());
    const e = new OtlpExporter({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/metrics` });
    e.write(one('a:1|c'));
    await e.close();
    assert.equal(got[0]?.headers['content-type'], 'application/x-protobuf');
    assert.equal(got[0]?.headers['content-encoding'], 'gzip');
    const raw = gunzipSync(got[0]?.body as Buffer);
    assert.equal(raw[0], 0x0a, 'field 1 (resource_metrics), length-delimited');
    assert.ok(raw.includes(SCOPE.version));
  });
});

test('YAML: encoding, compression and headers in their shortest form; a bad value is refused with its line', async () => {
  const { loadConfig } = await import('../config.js');
  const { makeExporter } = await import('./make.js');
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'ekg-yaml-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const got: Array<{ path: string; headers: IncomingHttpHeaders; body: Buffer }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  after(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const yaml = join(dir, 'a.yaml');
  const args = ['--config', yaml, '--statsd', 'off', '--http', '127.0.0.1:0', '--data', dir, '--console', 'off', '--store', 'off'];
  writeFileSync(
    yaml,
    `exporters:\n  - type: otlp\n    url: ${url}/v1/metrics\n    encoding: json\n    compression: none\n    headers:\n      x-team: a\n  - type: remote_write\n    url: ${url}/w\n    headers:\n      X-Scope-OrgID: t\n`,
  );
  const c = loadConfig(args, {});
  assert.ok(c !== 'help');
  for (const spec of c.exporters) {
    const e = makeExporter(spec, join(dir, 'spool'));
    e.write(one('a:1|c'));
    await e.close();
  }
  const otlp = got.find((g) => g.path === '/v1/metrics');
  assert.equal(otlp?.headers['content-type'], 'application/json');
  assert.equal(otlp?.headers['x-team'], 'a');
  assert.ok(JSON.parse(otlp?.body.toString() ?? '').resourceMetrics);
  assert.equal(got.find((g) => g.path === '/w')?.headers['x-scope-orgid'], 't');
  writeFileSync(yaml, `exporters:\n  - type: otlp\n    url: ${url}/v1/metrics\n    encoding: xml\n`);
  assert.throws(() => loadConfig(args, {}), /a\.yaml:4: field "exporters\[0\]\.encoding": "xml" must be one of protobuf, json/);
});

test('Graphite, InfluxDB: a non-finite value is left out (no "Infinity" on the wire); InfluxDB gets each tag key once', async () => {
  const { graphiteLines } = await import('./graphite.js');
  const { influxLines } = await import('./influx.js');
  const w = one('x:1e308|c\nx:1e308|c\nok:1|c|#a:1,a:2');
  for (const text of [graphiteLines(w), influxLines(w)]) {
    assert.ok(!/Infinity|NaN/.test(text), text);
    assert.match(text, /^ok/m);
  }
  assert.match(influxLines(w), /^ok,a=1 value=1 \d+$/m);
});
