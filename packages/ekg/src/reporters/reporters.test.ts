import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createEkg, type Ekg } from '../ekg.js';
import { herokuInterval, readEnv } from '../env.js';
import { HerokuPeriod, herokuPayload } from '../formats/heroku.js';
import { measurements } from '../formats/measurements.js';
import { pack, statsdLines } from '../formats/statsd.js';
import { setLogSink } from '../log.js';
import { sleep } from '../testing/http.js';
import type { Snapshot } from '../window/snapshot.js';
import { HerokuTransport, rfc3339 } from './heroku.js';
import { StreamTransport } from './statsd-stream.js';
import { UdpTransport } from './statsd-udp.js';
import type { WindowPayload } from './transport.js';

/** A full collection, with or without --expose-gc: heap measured after it is what is kept, not garbage not yet collected. */
const gc: () => void =
  global.gc ??
  (() => {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  })();

const logged: string[] = [];
setLogSink((l) => logged.push(l));

let ekg: Ekg;
let snap: Snapshot;
const keep = setInterval(() => {}, 1000); // ekg's sockets and timers are unref'd; the test keeps the loop up
before(async () => {
  ekg = createEkg({ signals: false, vitals: [{ name: 'queue', stats: () => ({ depth: 7, neg: -3, ok: true, note: 'x' }) }] });
  snap = await ekg.flush();
});
after(async () => {
  clearInterval(keep);
  await ekg.close();
});

const payload = (s: Snapshot = snap): WindowPayload => {
  let m: ReturnType<typeof measurements> | undefined;
  return { snapshot: s, measurements: () => (m ??= measurements(ekg.statsObject(s).stats)) };
};

async function until(fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(10);
  }
}

describe('formats', () => {
  test('measurements: window deltas are counters, levels gauges, info and strings left out', () => {
    const ms = measurements(ekg.statsObject(snap).stats);
    const byName = new Map(ms.map((m) => [m.name, m]));
    assert.equal(byName.get('runtime.gc.count')?.type, 'counter');
    assert.equal(byName.get('runtime.cpu.user')?.type, 'counter');
    assert.equal(byName.get('http.requests.2xx')?.type, 'counter');
    assert.equal(byName.get('runtime.memory.rss')?.type, 'gauge');
    assert.equal(byName.get('runtime.eventloop.delay.p99')?.type, 'gauge');
    assert.equal(byName.get('runtime.cpu.utilization')?.type, 'gauge');
    // statistics of the window are gauges: StatsD must not sum percentiles
    for (const g of [
      'http.duration.p99',
      'http.duration.mean',
      'http.requests.rate',
      'runtime.gc.maxPause',
      'runtime.eventloop.utilization',
    ]) {
      assert.equal(byName.get(g)?.type, 'gauge', g);
    }
    assert.equal(byName.get('runtime.gc.pause')?.type, 'counter');
    assert.equal(byName.get('queue.depth')?.value, 7);
    assert.equal(byName.get('queue.ok')?.value, 1);
    assert.equal(byName.has('queue.note'), false);
    assert.equal(byName.has('runtime.info.pid'), false);
    assert.equal(
      [...byName.keys()].some((k) => k.startsWith('ekg.')),
      false,
    );
  });

  test('statsd lines: prefix, tags, and a negative gauge reset first', () => {
    const lines = statsdLines(
      [
        { name: 'a.b', value: 3, type: 'counter' },
        { name: 'g', value: -2.5, type: 'gauge' },
      ],
      { prefix: 'app', tags: { service: 'api', pid: '42' } },
    );
    assert.deepEqual(lines, ['app.a.b:3|c|#service:api,pid:42', 'app.g:0|g|#service:api,pid:42', 'app.g:-2.5|g|#service:api,pid:42']);
  });

  test('packets never exceed the limit and never split a line', () => {
    const lines = Array.from({ length: 500 }, (_, i) => `runtime.some.metric.name${i}:${i}|g`);
    for (const max of [100, 512, 1432]) {
      const packets = pack(lines, max);
      for (const p of packets) assert.ok(p.length <= max, `${p.length} > ${max}`);
      assert.deepEqual(
        packets.flatMap((p) => p.toString().split('\n')),
        lines,
      );
    }
    // a line longer than the limit travels alone, whole
    assert.deepEqual(
      pack(['x'.repeat(50), 'y'], 10).map((b) => b.toString()),
      ['x'.repeat(50), 'y'],
    );
  });

  test("heroku payload uses Heroku's Node names exactly", () => {
    const p = herokuPayload(payload().measurements());
    assert.deepEqual(Object.keys(p.counters ?? {}), [
      'node.gc.collections',
      'node.gc.old.collections',
      'node.gc.old.pause.ns',
      'node.gc.pause.ns',
      'node.gc.young.collections',
      'node.gc.young.pause.ns',
    ]);
    assert.deepEqual(Object.keys(p.gauges ?? {}), [
      'node.eventloop.delay.ms.max',
      'node.eventloop.delay.ms.median',
      'node.eventloop.delay.ms.p95',
      'node.eventloop.delay.ms.p99',
      'node.eventloop.usage.percent',
    ]);
    for (const v of [...Object.values(p.counters ?? {}), ...Object.values(p.gauges ?? {})]) assert.ok(Number.isFinite(v));
    assert.match(rfc3339(new Date(Date.UTC(2026, 10, 22, 1, 2, 3, 456))), /^2026-11-22T01:02:03Z$/);
  });
});

describe("Heroku's meanings", () => {
  const gcWindow = (minor: number, major: number, incremental: number, weakcb: number, util: number, p99: number, max: number) => {
    const m = (name: string, value: number, type: 'counter' | 'gauge' = 'gauge') => ({ name, value, type });
    return [
      m('runtime.gc.minor.count', minor, 'counter'),
      m('runtime.gc.minor.pause', minor * 0.5, 'counter'),
      m('runtime.gc.major.count', major, 'counter'),
      m('runtime.gc.major.pause', major * 2, 'counter'),
      m('runtime.gc.incremental.count', incremental, 'counter'),
      m('runtime.gc.incremental.pause', incremental * 0.25, 'counter'),
      m('runtime.gc.weakcb.count', weakcb, 'counter'),
      m('runtime.gc.weakcb.pause', weakcb * 0.125, 'counter'),
      m('runtime.gc.count', minor + major + incremental + weakcb, 'counter'),
      m('runtime.gc.pause', minor * 0.5 + major * 2 + incremental * 0.25 + weakcb * 0.125, 'counter'),
      m('runtime.eventloop.utilization', util),
      m('runtime.eventloop.resolution', 10),
      m('runtime.eventloop.delay.p50', 0.05),
      m('runtime.eventloop.delay.p95', 1.5),
      m('runtime.eventloop.delay.p99', p99),
      m('runtime.eventloop.delay.max', max),
      m('runtime.eventloop.delay.p90', 99),
    ];
  };

  test('old = every collection that is not minor, so old + young = collections; pause in ns', () => {
    const p = herokuPayload(gcWindow(5, 1, 3, 2, 0.5, 3, 20));
    assert.deepEqual(p.counters, {
      'node.gc.collections': 11,
      'node.gc.old.collections': 6,
      'node.gc.old.pause.ns': 2_000_000 + 750_000 + 250_000,
      'node.gc.pause.ns': 5_500_000,
      'node.gc.young.collections': 5,
      'node.gc.young.pause.ns': 2_500_000,
    });
  });

  test('usage is the 0-1 fraction; delay percentiles include the 10 ms timer resolution, as Heroku measures them', () => {
    const p = herokuPayload(gcWindow(0, 0, 0, 0, 0.877, 3, 20));
    assert.deepEqual(p.gauges, {
      'node.eventloop.delay.ms.max': 30,
      'node.eventloop.delay.ms.median': 10.05,
      'node.eventloop.delay.ms.p95': 11.5,
      'node.eventloop.delay.ms.p99': 13,
      'node.eventloop.usage.percent': 0.877,
    });
  });

  test('a post covering two windows: counters add up, usage and percentiles by time, the max is the max', () => {
    const period = new HerokuPeriod();
    period.add(gcWindow(2, 1, 0, 0, 0.2, 2, 15), 10_000);
    period.add(gcWindow(4, 0, 1, 0, 0.6, 4, 40), 10_000);
    assert.equal(period.elapsed, 20_000);
    const p = period.take();
    assert.equal(p.counters?.['node.gc.collections'], 8);
    assert.equal(p.counters?.['node.gc.old.collections'], 2);
    assert.equal(p.counters?.['node.gc.young.collections'], 6);
    assert.equal(p.gauges?.['node.eventloop.usage.percent'], 0.4);
    assert.equal(p.gauges?.['node.eventloop.delay.ms.p99'], 13);
    assert.equal(p.gauges?.['node.eventloop.delay.ms.max'], 50);
    assert.equal(period.elapsed, 0);
    assert.deepEqual(period.take(), {}, 'an empty post has neither section');
  });

  test('METRICS_INTERVAL_OVERRIDE as Heroku reads it: ms, parseInt, a 10 s floor, 20 s by default', () => {
    assert.equal(herokuInterval({}).ms, 20_000);
    assert.equal(herokuInterval({ METRICS_INTERVAL_OVERRIDE: '30000' }).ms, 30_000);
    assert.equal(herokuInterval({ METRICS_INTERVAL_OVERRIDE: '15000ms' }).ms, 15_000);
    assert.equal(herokuInterval({ METRICS_INTERVAL_OVERRIDE: '5000' }).ms, 10_000);
    assert.ok(herokuInterval({ METRICS_INTERVAL_OVERRIDE: '5000' }).problem);
    assert.equal(herokuInterval({ METRICS_INTERVAL_OVERRIDE: 'soon' }).ms, 20_000);
    // on Heroku, each window is one post
    assert.equal(readEnv({ HEROKU_METRICS_URL: 'http://127.0.0.1:1/x' }).interval, 20_000);
    assert.equal(readEnv({ HEROKU_METRICS_URL: 'http://127.0.0.1:1/x', METRICS_INTERVAL_OVERRIDE: '12000' }).interval, 12_000);
    assert.equal(readEnv({ HEROKU_METRICS_URL: 'http://127.0.0.1:1/x', EKG_INTERVAL: '5s' }).interval, 5000, 'EKG_INTERVAL wins');
    assert.equal(readEnv({ EKG_PUSH_URL: 'http://127.0.0.1:1/x' }).interval, undefined);
  });
});

describe('statsd over UDP', () => {
  test('a window arrives at a real UDP socket, in packets of at most 1432 bytes', async () => {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const got: Buffer[] = [];
    sock.on('message', (m) => got.push(m));
    const t = new UdpTransport({ host: 'localhost', port: sock.address().port, tags: { pid: '1' } });
    try {
      t.send(payload());
      const expected = statsdLines(payload().measurements(), { tags: { pid: '1' } }, payload().snapshot.window);
      await until(() => got.flatMap((b) => b.toString().split('\n')).length >= expected.length);
      assert.ok(got.every((b) => b.length <= 1432));
      assert.deepEqual(got.flatMap((b) => b.toString().split('\n')).sort(), [...expected].sort());
      await until(() => t.stats.sent === 1);
      assert.equal(t.stats.errors, 0);
    } finally {
      await t.close();
      sock.close();
    }
  });

  test('nothing listening for many windows: no error thrown, memory flat', async () => {
    const port = await freeUdpPort();
    const t = new UdpTransport({ host: '127.0.0.1', port });
    try {
      for (let i = 0; i < 50; i++) t.send(payload());
      await until(() => t.stats.sent + t.stats.dropped >= 50);
      gc();
      const before = process.memoryUsage().heapUsed;
      for (let i = 0; i < 500; i++) {
        t.send(payload());
        if (i % 50 === 0) await sleep(5);
      }
      await until(() => t.stats.sent + t.stats.dropped >= 550);
      gc();
      const grown = process.memoryUsage().heapUsed - before;
      assert.ok(grown < 8 * 1024 * 1024, `heap grew ${grown} bytes over 500 windows`);
    } finally {
      await t.close();
    }
  });

  test('EMSGSIZE is counted, not thrown, and the next window goes', async () => {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    let received = 0;
    sock.on('message', () => received++);
    const huge = new UdpTransport({ host: '127.0.0.1', port: sock.address().port, maxPacket: 200_000 });
    const big: WindowPayload = {
      snapshot: snap,
      measurements: () => Array.from({ length: 4000 }, (_, i) => ({ name: `big.metric.number${i}`, value: i, type: 'gauge' as const })),
    };
    try {
      huge.send(big);
      await until(() => huge.stats.errors === 1);
      assert.match(huge.stats.lastError ?? '', /EMSGSIZE|too long/i);
      assert.equal(huge.stats.dropped, 1);
      huge.send(payload());
      await until(() => huge.stats.sent === 1);
      await until(() => received >= 1);
    } finally {
      await huge.close();
      sock.close();
    }
  });

  test('a name that does not resolve: counted, one stderr line per outage', async () => {
    const t = new UdpTransport({ host: 'no-such-host.invalid', port: 8125 });
    const before = logged.length;
    try {
      for (let i = 0; i < 5; i++) {
        t.send(payload());
        await until(() => t.stats.dropped === i + 1);
      }
      assert.equal(t.stats.errors, 5);
      const lines = logged.slice(before).filter((l) => l.includes('no-such-host.invalid'));
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0] ?? '', /^ekg: EKG_ERR_REPORTER: statsd udp:\/\/no-such-host\.invalid:8125: cannot resolve/);
    } finally {
      await t.close();
    }
  });
});

describe('statsd over TCP and unix sockets', () => {
  test('lines arrive newline-terminated over TCP; the transport reconnects after the agent restarts', async () => {
    let data = '';
    const sockets = new Set<net.Socket>();
    let server = net.createServer((s) => {
      sockets.add(s);
      s.on('data', (d) => (data += d));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const t = new StreamTransport({ host: '127.0.0.1', port });
    try {
      t.send(payload());
      const n = payload().measurements().length;
      await until(() => data.split('\n').filter(Boolean).length >= n);
      assert.ok(data.endsWith('\n'));
      // agent goes away...
      server.close();
      for (const s of sockets) s.destroy();
      await until(() => t.stats.errors > 0);
      await sleep(50);
      t.send(payload());
      t.send(payload()); // while down, only the newest window is kept
      // ...and comes back on the same port
      data = '';
      server = net.createServer((s) => s.on('data', (d) => (data += d)));
      // the port was ours a moment ago; another process may hold it briefly (an outgoing connection's local port):
      // wait until it is free again rather than fail on EADDRINUSE
      for (const end = Date.now() + 60_000; ; ) {
        const e = await new Promise<NodeJS.ErrnoException | undefined>((r) => {
          server.once('error', r);
          server.listen(port, '127.0.0.1', () => r(undefined));
        });
        if (!e) break;
        if (e.code !== 'EADDRINUSE' || Date.now() > end) throw e;
        await sleep(50);
      }
      t.send(payload());
      await until(() => data.split('\n').filter(Boolean).length >= n, 15_000);
      assert.ok(t.stats.dropped >= 1);
    } finally {
      await t.close();
      server.close();
    }
  });

  test('an agent that accepts then resets: counted, never thrown', async () => {
    const server = net.createServer((s) => s.resetAndDestroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const t = new StreamTransport({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
    try {
      for (let i = 0; i < 3; i++) {
        t.send(payload());
        await sleep(100);
      }
      await until(() => t.stats.errors >= 1);
      assert.match(t.stats.lastError ?? '', /ECONNRESET|EPIPE|connection lost|cannot connect/);
    } finally {
      await t.close();
      server.close();
    }
  });

  test('unix:///path delivers to a Unix stream socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ekg-unix-'));
    const path = join(dir, 'statsd.sock');
    let data = '';
    const server = net.createServer((s) => s.on('data', (d) => (data += d)));
    await new Promise<void>((r) => server.listen(path, () => r()));
    const t = new StreamTransport({ path });
    try {
      t.send(payload());
      await until(() => data.includes('runtime.memory.rss:'));
      await until(() => t.stats.sent === 1);
      assert.equal(t.name, `statsd unix://${path}`);
    } finally {
      await t.close();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Heroku-style JSON push', () => {
  interface Seen {
    headers: IncomingMessage['headers'];
    url: string;
    body: string;
  }
  async function sink(answer: (n: number, req: IncomingMessage) => number | 'hang' | 'garbage') {
    const seen: Seen[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        seen.push({ headers: req.headers, url: req.url ?? '', body });
        const a = answer(seen.length, req);
        if (a === 'hang') return;
        if (a === 'garbage') {
          req.socket.end('this is not HTTP\r\n\r\n');
          return;
        }
        res.writeHead(a, { 'content-type': 'text/plain' });
        res.end('a body the client must drain '.repeat(100));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/metrics/abc?token=s3cret&x=1`;
    return { seen, url, server };
  }

  test('body and headers match the Heroku contract byte for byte; the query string is kept', async () => {
    const s = await sink(() => 200);
    const t = new HerokuTransport({ interval: 0, url: s.url });
    try {
      t.send(payload());
      await until(() => t.stats.sent === 1);
      const r = s.seen[0] as Seen;
      assert.equal(r.url, '/metrics/abc?token=s3cret&x=1');
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.headers['measurements-count'], '11');
      assert.match(String(r.headers['measurements-time']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(r.body, JSON.stringify(herokuPayload(payload().measurements(), snap.runtime.windowMs)));
      assert.deepEqual(Object.keys(JSON.parse(r.body)), ['counters', 'gauges']);
      assert.ok(!t.name.includes('s3cret'), 'the token never shows in names or logs');
    } finally {
      await t.close();
      s.server.close();
    }
  });

  test('one post per Heroku interval: two 10 s windows make one 20 s post', async () => {
    const s = await sink(() => 200);
    const t = new HerokuTransport({ url: s.url, interval: 20_000 });
    const tenSeconds = (): WindowPayload => ({ ...payload(), snapshot: { ...snap, runtime: { ...snap.runtime, windowMs: 10_000 } } });
    try {
      t.send(tenSeconds());
      t.send(tenSeconds());
      t.send(tenSeconds());
      await until(() => t.stats.sent === 1);
      const one = herokuPayload(payload().measurements());
      const body = JSON.parse((s.seen[0] as Seen).body) as typeof one;
      assert.equal(body.counters?.['node.gc.collections'], 2 * (one.counters?.['node.gc.collections'] ?? 0));
      // the interval the post covers, for ekg-agent to spread its counters over (docs/time-model.md)
      assert.equal((s.seen[0] as Seen).headers['x-ekg-interval-ms'], '20000');
      t.send(tenSeconds());
      await until(() => t.stats.sent === 2);
      assert.equal(s.seen.length, 2);
    } finally {
      await t.close();
      s.server.close();
    }
  });

  test('5xx is retried up to 3 times; 404 is not retried and logged once', async () => {
    const s = await sink(() => 500);
    const t = new HerokuTransport({ interval: 0, url: s.url, backoff: 10 });
    try {
      t.send(payload());
      await until(() => t.stats.dropped === 1);
      assert.equal(s.seen.length, 4);
      assert.equal(t.stats.errors, 4);
    } finally {
      await t.close();
      s.server.close();
    }
    const nf = await sink(() => 404);
    const t2 = new HerokuTransport({ interval: 0, url: nf.url, backoff: 10 });
    const before = logged.length;
    try {
      t2.send(payload());
      await until(() => t2.stats.dropped === 1);
      t2.send(payload());
      await until(() => t2.stats.dropped === 2);
      assert.equal(nf.seen.length, 2, 'one attempt per window');
      assert.equal(logged.slice(before).filter((l) => l.includes('answered 404')).length, 1);
    } finally {
      await t2.close();
      nf.server.close();
    }
  });

  test('a sink that never answers times out and is retried; garbage is an error, not a crash', async () => {
    const s = await sink((n) => (n === 1 ? 'hang' : n === 2 ? 'garbage' : 200));
    const t = new HerokuTransport({ interval: 0, url: s.url, timeout: 200, backoff: 10 });
    try {
      t.send(payload());
      await until(() => t.stats.sent === 1);
      assert.equal(s.seen.length, 3);
      assert.equal(t.stats.errors, 2);
    } finally {
      await t.close();
      s.server.closeAllConnections();
      s.server.close();
    }
  });

  test('while a post is pending, only the newest window waits', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const s = await sink(() => 200);
    s.server.removeAllListeners('request');
    s.server.on('request', (req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', async () => {
        s.seen.push({ headers: req.headers, url: req.url ?? '', body });
        await gate;
        res.end();
      });
    });
    const t = new HerokuTransport({ interval: 0, url: s.url });
    try {
      for (let i = 0; i < 10; i++) t.send(payload());
      await until(() => s.seen.length === 1);
      release();
      await until(() => t.stats.sent === 2);
      assert.equal(t.stats.dropped, 8);
    } finally {
      await t.close();
      s.server.close();
    }
  });
});

for (const watchdog of [false, true])
  test(`ekg.report() ${watchdog ? "from the watchdog's thread" : 'on the main thread'}: every closed window goes out; counters show in /stats and /metrics`, async () => {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    let lines: string[] = [];
    sock.on('message', (m) => lines.push(...m.toString().split('\n')));
    const e = createEkg({
      signals: false,
      watchdog,
      labels: { service: 'api' },
      report: { statsd: `udp://127.0.0.1:${sock.address().port}`, prefix: 'app' },
    });
    try {
      await e.flush();
      await until(() => lines.some((l) => l.startsWith('app.runtime.memory.rss:')));
      assert.ok(
        lines.every((l) => /^app\.[\w.-]+:-?[\d.e+-]+\|[cg]\|#service:api,pid:\d+,host:[^,]+$/.test(l)),
        lines.find((l) => !/\|#/.test(l)),
      );
      // with the watchdog's thread sending, its counters come back by message: the next window has them once they arrive
      await until(() => e.watchdog === undefined || e.watchdog.reporters[0]?.stats.sent === 1);
      lines = [];
      const s2 = await e.flush();
      const stats = e.statsObject(s2).stats as { ekg: { reporters: Record<string, { sent: number; target: string; lastSentAt: string }> } };
      const name = `statsd udp://127.0.0.1:${sock.address().port}`;
      // /stats keys are identifiers, the address an info string, the time ISO text: flatteners make valid names of them
      assert.deepEqual(Object.keys(stats.ekg.reporters), ['statsd']);
      assert.equal(stats.ekg.reporters.statsd?.sent, 1);
      assert.equal(stats.ekg.reporters.statsd?.target, `udp://127.0.0.1:${sock.address().port}`);
      assert.match(stats.ekg.reporters.statsd?.lastSentAt ?? '', /^\d{4}-\d\d-\d\dT/);
      assert.match(
        e.metricsText(s2),
        new RegExp(`^ekg_reporter_windows_sent_total\\{service="api",transport="${name.replace(/[/.]/g, '\\$&')}"\\} 1$`, 'm'),
      );
    } finally {
      await e.close();
      sock.close();
    }
  });

test("with the watchdog's thread reporting and serving EKG_PORT, the main thread renders nothing per window: that thread builds /stats, /metrics and the reports from the raw window", async () => {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const lines: string[] = [];
  sock.on('message', (m) => lines.push(...m.toString().split('\n')));
  const e = createEkg({ signals: false, watchdog: true, interval: '1h', report: { statsd: `udp://127.0.0.1:${sock.address().port}` } });
  const rendered: string[] = [];
  for (const k of ['statsObject', 'statsText', 'metricsText'] as const) {
    const own = (e[k] as (...a: unknown[]) => unknown).bind(e);
    (e as unknown as Record<string, unknown>)[k] = (...a: unknown[]) => {
      rendered.push(k);
      return own(...a);
    };
  }
  try {
    await e.listen({ port: 0 });
    const port = e.watchdog?.sidePort as number;
    await e.flush();
    await e.flush();
    await until(() => lines.filter((l) => l.startsWith('runtime.memory.rss:')).length >= 2);
    const stats = await fetch(`http://127.0.0.1:${port}/stats`);
    const doc = (await stats.json()) as { runtime: object; ekg: { window: { seq: number }; reporters: object } };
    assert.ok(doc.runtime);
    assert.equal(doc.ekg.window.seq, e.peek()?.window.seq, 'the last closed window');
    assert.ok(doc.ekg.reporters, "ekg's own state came with the window");
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(metrics, /^nodejs_heap_size_used_bytes \d+/m);
    assert.match(metrics, /^nodejs_gc_duration_seconds_bucket\{kind="minor",le="\+Inf"\} \d+/m, 'histogram buckets survive the post');
    assert.deepEqual(rendered, [], 'nothing rendered on the main thread');
  } finally {
    await e.close();
    sock.close();
  }
});

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}
