import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Agent } from '../agent.js';
import { loadConfig } from '../config.js';
import { startBin, until } from '../testing/bin.js';

/**
 * The StatsD listeners' budgets, each attacked over real sockets: set members that would pin their
 * datagrams, over-long TCP lines, connections held open or left silent, the file descriptors HTTP
 * needs. docs/limits.md lists each with its default and its counter.
 */
const dir = mkdtempSync(join(tmpdir(), 'ekg-budgets-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function agentWith(...flags: string[]): Promise<Agent> {
  const c = loadConfig(
    ['--statsd', '127.0.0.1:0', '--http', '127.0.0.1:0', '--store', 'off', '--console', 'off', '--data', dir, ...flags],
    {},
  );
  assert.ok(c !== 'help');
  const a = new Agent(c, []);
  await a.start({ timer: false });
  return a;
}

function tcpPort(a: Agent): number {
  return a.addresses().tcp as number;
}

test('set members are copied out of their datagrams: 60 KB datagrams with one member each do not stay in memory', {
  timeout: 60_000,
}, async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const a = await agentWith();
  const sock = dgram.createSocket('udp4');
  try {
    const port = a.addresses().udp as number;
    const pad = `pad${'x'.repeat(60_000)}\n`;
    gc();
    const before = process.memoryUsage().heapUsed;
    let sent = 0;
    const N = 1000;
    while (sent < N) {
      // 16 datagrams (1 MB) at a time, then wait for the agent to have read them: loopback UDP does not
      // drop what the receive buffer can hold
      for (let i = 0; i < 16 && sent < N; i++, sent++) {
        const member = `member-${String(sent).padStart(16, '0')}`;
        await new Promise<void>((r) => sock.send(`${pad}budget.set:${member}|s`, port, '127.0.0.1', () => r()));
      }
      const want = sent;
      await until(() => a.self.packets_received >= want, `${want} datagrams read`, 5000).catch(() => {});
    }
    const got = a.self.packets_received;
    assert.ok(got > N / 2, `the agent read ${got} of ${N} datagrams`);
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    // 1000 × 60 KB = 60 MB if each member kept its datagram; copied members cost a few hundred KB
    assert.ok(grown < 15 * 2 ** 20, `the heap grew by ${(grown / 2 ** 20).toFixed(1)} MB for ${got} members`);
    const w = a.flush();
    assert.equal(w.series.find((s) => s.name === 'budget.set')?.value, got);
  } finally {
    sock.close();
    await a.stop();
  }
});

test('a set keeps at most --set-max-members members and --set-max-bytes bytes per window; the rest are counted drops', {
  timeout: 30_000,
}, async () => {
  const a = await agentWith('--set-max-members', '100', '--set-max-bytes', '4k');
  try {
    // 1000 distinct short members: 100 kept
    a.ingest(Array.from({ length: 1000 }, (_, i) => `few.set:u${i}|s`).join('\n'));
    // 20 distinct 1000-byte members: 4 fit in 4 KiB
    a.ingest(Array.from({ length: 20 }, (_, i) => `big.set:${String(i).padStart(1000, 'm')}|s`).join('\n'));
    const w = a.flush();
    assert.equal(w.series.find((s) => s.name === 'few.set')?.value, 100);
    assert.equal(w.series.find((s) => s.name === 'big.set')?.value, 4);
    assert.equal(a.self.dropped_set_members, 900 + 16);
    // per window: the next one starts empty
    a.ingest('few.set:again|s');
    assert.equal(a.flush().series.find((s) => s.name === 'few.set')?.value, 1);
    const http = a.addresses().http as number;
    const self = (await (await fetch(`http://127.0.0.1:${http}/api/v1/self`)).json()) as Record<string, number>;
    assert.equal(self.dropped_set_members, 916);
    const metrics = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
    assert.match(metrics, /^ekg_agent_dropped_total\{reason="set_members"\} 916$/m);
  } finally {
    await a.stop();
  }
});

test('TCP: an over-long line is dropped up to its newline and counted once; its rest is not read as new lines', {
  timeout: 30_000,
}, async () => {
  const a = await agentWith();
  try {
    const c = net.connect(tcpPort(a), '127.0.0.1');
    await new Promise((r) => c.once('connect', r));
    // 70,000 bytes without a newline, then the end of that same line, then a good line
    c.write('z'.repeat(70_000));
    // a second connection's line, read after the first write: the first has been read by then
    const sync = net.connect(tcpPort(a), '127.0.0.1');
    sync.end('sync:1|c\n');
    await until(() => a.self.metrics_received >= 1, 'the sync line');
    c.end('.bogus:1|c\ngood:1|c\n');
    await until(() => a.self.metrics_received >= 2, 'the good line');
    const names = a
      .flush()
      .series.map((s) => (s.name.length > 40 ? `${s.name.slice(0, 20)}…(${s.name.length})` : s.name))
      .sort();
    assert.deepEqual(names, ['good', 'sync']);
    assert.equal(a.self.bad_lines_by_reason.too_long, 1);
    const http = a.addresses().http as number;
    assert.match(await (await fetch(`http://127.0.0.1:${http}/metrics`)).text(), /^ekg_agent_bad_lines_total\{reason="too_long"\} 1$/m);
  } finally {
    await a.stop();
  }
});

test('TCP and the Unix socket share --statsd-max-connections: more are closed at once and counted; the held ones still work', {
  timeout: 30_000,
}, async () => {
  const sockPath = join(dir, 'statsd.sock');
  const a = await agentWith('--statsd-max-connections', '4', '--statsd-unix', sockPath);
  const clients: net.Socket[] = [];
  try {
    let closed = 0;
    const open = (o: net.NetConnectOpts) => {
      const c = net.connect(o);
      c.on('error', () => {});
      c.on('close', () => closed++);
      clients.push(c);
      return c;
    };
    for (let i = 0; i < 3; i++) open({ port: tcpPort(a), host: '127.0.0.1' });
    open({ path: sockPath });
    await until(() => a.self.statsd_connections_open === 4, 'four connections held');
    for (let i = 0; i < 3; i++) open({ port: tcpPort(a), host: '127.0.0.1' });
    open({ path: sockPath });
    await until(() => closed === 4, 'the four over the cap to be closed');
    assert.equal(a.self.statsd_connections_refused, 4);
    assert.equal(a.self.statsd_connections_open, 4);
    // the four held ones are served
    for (const c of clients.slice(0, 4)) c.write('held:1|c\n');
    await until(() => a.self.metrics_received === 4, 'a line from each held connection');
    const http = a.addresses().http as number;
    const metrics = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
    assert.match(metrics, /^ekg_agent_statsd_connections_refused_total 4$/m);
    assert.match(metrics, /^ekg_agent_statsd_connections_open 4$/m);
  } finally {
    for (const c of clients) c.destroy();
    await a.stop();
  }
});

test('a silent connection is closed after --statsd-idle-timeout and counted; stop() does not wait for held connections', {
  timeout: 30_000,
}, async () => {
  const a = await agentWith('--statsd-idle-timeout', '300ms');
  const held = await agentWith('--statsd-idle-timeout', '0');
  try {
    const c = net.connect(tcpPort(a), '127.0.0.1');
    c.on('error', () => {});
    c.write('before:1|c\n');
    await new Promise((r) => c.once('close', r));
    assert.equal(a.self.statsd_connections_idle_closed, 1);
    // a client that never closes its connection, with no idle timeout: the agent still stops
    const h = net.connect(tcpPort(held), '127.0.0.1');
    h.on('error', () => {});
    await until(() => held.self.statsd_connections_open === 1, 'the held connection');
    await held.stop();
    h.destroy();
  } finally {
    await a.stop();
    await held.stop();
  }
});

test('the default connection cap keeps file descriptors for HTTP: 500 held connections under `ulimit -n 400`, /heartbeat answers', {
  timeout: 60_000,
  skip: process.platform === 'win32' ? 'no ulimit on Windows' : false,
}, async () => {
  const a = await startBin(
    ([s, h]) => ['--statsd', String(s), '--http', String(h), '--store', 'off', '--console', 'off', '--data', dir],
    () => ({}),
    { shell: 'ulimit -n 400 &&' },
  );
  const clients: net.Socket[] = [];
  try {
    assert.equal(a.code, null, a.out());
    const [s, h] = a.ports as [number, number];
    let closed = 0;
    for (let i = 0; i < 500; i++) {
      const c = net.connect(s, '127.0.0.1');
      c.on('error', () => {});
      c.on('close', () => closed++);
      clients.push(c);
    }
    // the default is a quarter of the limit: 100 held, 400 closed by the agent
    await until(() => closed === 400, `400 connections closed by the agent (${closed})`, 30_000);
    const r = await fetch(`http://127.0.0.1:${h}/heartbeat`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(r.status, 200);
    const self = (await (await fetch(`http://127.0.0.1:${h}/api/v1/self`)).json()) as Record<string, number>;
    assert.equal(self.statsd_connections_open, 100);
    assert.equal(self.statsd_connections_refused, 400);
  } finally {
    for (const c of clients) c.destroy();
    await a.stop();
  }
});

test('a name over 1,024 characters, a tag set over 2,048 and a sample rate whose weight overflows are too_long / bad lines, never series', {
  timeout: 30_000,
}, async () => {
  const a = await agentWith();
  try {
    const lines = [
      `${'n'.repeat(1025)}:1|c`, // name over MAX_NAME, fast path
      `${'n'.repeat(1025)}:1|c|#a:b`, // … and the general path
      `tagged:1|c|#a:${'x'.repeat(2100)}`, // tag set over MAX_TAGS
      `tagged:1|c|#${Array.from({ length: 300 }, (_, i) => `k${i}:v${i}`).join(',')}`, // many short tags, over MAX_TAGS together
      'rate.tiny:1|c|@5e-324', // 1 / rate = Infinity
      'rate.tiny:1|c|@5e-324|#a:b',
      'huge:1e308|c|@0.5', // value × weight = Infinity
      'huge:1e308|ms|@0.1|#a:b',
      `${'o'.repeat(1024)}:1|c`, // at the budget: kept
      `kept:1|c|#a:${'x'.repeat(2000)}`,
      'huge.gauge:1e308|g|@0.5', // a gauge takes no weight: kept
      'sync:1|c',
    ];
    const c = net.connect(tcpPort(a), '127.0.0.1');
    c.on('error', () => {});
    await new Promise<void>((r) => c.end(`${lines.join('\n')}\n`, () => r()));
    await until(() => a.self.metrics_received >= 4, 'the kept lines');
    assert.deepEqual(a.self.bad_lines_by_reason, { too_long: 4, bad_sample_rate: 2, bad_value: 2 });
    const names = a
      .flush()
      .series.map((s) => (s.name.length > 20 ? `${s.name[0]}×${s.name.length}` : s.name))
      .sort();
    assert.deepEqual([...new Set(names)], ['huge.gauge', 'kept', 'o×1024', 'sync']);
  } finally {
    await a.stop();
  }
});
