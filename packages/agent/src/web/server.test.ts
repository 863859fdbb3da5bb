import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Agent } from '../agent.js';
import { loadConfig } from '../config.js';
import type { StoreReader } from '../store/reader.js';
import { startBin, until } from '../testing/bin.js';

const dir = mkdtempSync(join(tmpdir(), 'ekg-web-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

async function agentWith(flags: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<{ agent: Agent; base: string; port: number }> {
  const c = loadConfig(
    ['--statsd', 'off', '--http', '127.0.0.1:0', '--flush-interval', '1s', '--data', join(dir, String(n++)), '--console', 'off', ...flags],
    env,
  );
  assert.ok(c !== 'help');
  const agent = new Agent(c, []);
  await agent.start({ timer: false });
  after(() => agent.stop());
  const port = agent.addresses().http as number;
  return { agent, base: `http://127.0.0.1:${port}`, port };
}

/** One raw request over a socket (fetch cannot send `//x:99999` as it is); the answer's status line. */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => {
      got += d;
    });
    s.on('error', reject);
    s.on('close', () => resolve(got.split('\r\n')[0] ?? ''));
    s.write(text);
  });
}

test('a request target that is no URL is answered (400 or 404), never the end of the agent', async () => {
  const { port, base } = await agentWith();
  for (const target of ['//x:99999', '//[', '//a%20b', '/\\x', 'x', '*', 'http://[']) {
    const line = await raw(port, `GET ${target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
    assert.match(line, /^HTTP\/1\.1 (400|404) /, target);
  }
  // a request line, header or method that does not parse: a 400 (431) before the connection closes
  assert.match(await raw(port, 'GET /\x01 HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400 /);
  assert.match(await raw(port, 'BREW / HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400 /);
  assert.match(await raw(port, 'CONNECT agent:80 HTTP/1.1\r\nhost: agent\r\n\r\n'), /^HTTP\/1\.1 405 /);
  assert.match(await raw(port, `GET / HTTP/1.1\r\nx: ${'a'.repeat(20_000)}\r\n\r\n`), /^HTTP\/1\.1 431 /);
  assert.equal(await (await fetch(`${base}/heartbeat`)).text(), 'heartbeat:ok');
  const self = (await (await fetch(`${base}/api/v1/self`)).json()) as Record<string, number>;
  assert.ok((self.http_bad_requests as number) >= 5, `${self.http_bad_requests}`);
});

test('an error raised while serving one request is a 500, logged once and counted; the agent keeps serving', async (t) => {
  const { agent, base } = await agentWith();
  const lines: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((s: string) => lines.push(String(s)) > 0) as typeof process.stderr.write;
  t.after(() => {
    process.stderr.write = write;
  });
  const real = agent.reader as StoreReader;
  // a reader whose answer cannot be serialised (a bug, as a store's would be): the rejection is
  // raised after the handler returned
  agent.reader = { ...real, kind: 'broken', instances: async () => [{ big: 1n }] as never } as StoreReader;
  for (let i = 0; i < 3; i++) assert.equal((await fetch(`${base}/api/v1/instances`)).status, 500);
  // and one thrown while the handler runs
  Object.defineProperty(agent, 'reader', {
    configurable: true,
    get() {
      throw new Error('boom');
    },
  });
  const r = await fetch(`${base}/api/v1/series`);
  assert.equal(r.status, 500);
  assert.match(((await r.json()) as { error: string }).error, /log/);
  Object.defineProperty(agent, 'reader', { configurable: true, value: real, writable: true });
  assert.equal(await (await fetch(`${base}/heartbeat`)).text(), 'heartbeat:ok');
  const self = (await (await fetch(`${base}/api/v1/self`)).json()) as Record<string, number>;
  process.stderr.write = write;
  assert.equal(self.http_errors, 4);
  const logged = lines.filter((l) => l.includes('ekg-agent: http: a request failed'));
  assert.equal(logged.length, 2, 'one line per kind of error, not one per request');
  assert.match(await (await fetch(`${base}/metrics`)).text(), /^ekg_agent_http_errors_total 4$/m);
});

test('/heartbeat says degraded without the store error; the details are behind the token at /api/v1/self', async () => {
  const token = 'sekret-token-42';
  const { agent, base } = await agentWith(['--store-max-size', '64k'], { EKG_AGENT_TOKEN: token });
  // fill the store past its cap: the writes fail with SQLITE_FULL
  for (let w = 0; w < 50 && agent.store?.status.ok !== false; w++) {
    agent.ingest(Array.from({ length: 500 }, (_, i) => `fill.${w}.${i}:1|c`).join('\n'));
    agent.flush();
  }
  assert.equal(agent.store?.status.ok, false);
  const hb = await fetch(`${base}/heartbeat`);
  assert.equal(hb.status, 200);
  assert.equal(await hb.text(), 'heartbeat:degraded');
  assert.equal((await fetch(`${base}/api/v1/self`)).status, 401);
  // the scheme in any case (RFC 7235)
  for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
    const self = await fetch(`${base}/api/v1/self`, { headers: { authorization: `${scheme} ${token}` } });
    assert.equal(self.status, 200, scheme);
    const body = (await self.json()) as { store: { ok: boolean; error: string } };
    assert.match(body.store.error, /SQLITE_FULL/);
  }
  for (const wrong of [`Bearer ${token}x`, `Bearer ${token.slice(0, -1)}`, `Basic ${token}`, token, 'Bearer', ''])
    assert.equal((await fetch(`${base}/api/v1/self`, { headers: { authorization: wrong } })).status, 401, wrong);
});

test('push identity headers are one tag each: a comma (a tag of the sender choosing) is a 400 naming the header', async () => {
  const { agent, base } = await agentWith();
  const push = (headers: Record<string, string>, query = '') =>
    fetch(`${base}/v1/push${query}`, { method: 'POST', headers, body: '{"gauges":{"pushed":1}}' });
  const bad = await push({ 'x-ekg-service': 'shop', 'x-ekg-host': 'h,evil:1' });
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: string }).error, /^X-Ekg-Host: /);
  const badQuery = await push({}, '?service=shop&pid=1,evil:1');
  assert.equal(badQuery.status, 400);
  assert.match(((await badQuery.json()) as { error: string }).error, /pid/);
  assert.equal((await push({ 'x-ekg-host': 'h'.repeat(201) })).status, 400);
  // a value the tag rule sanitises is taken as it would be in a StatsD tag
  assert.equal((await push({ 'x-ekg-service': 'shop', 'x-ekg-host': 'web 1', 'x-ekg-pid': '7' })).status, 202);
  agent.flush();
  const series = (await (await fetch(`${base}/api/v1/series?match=pushed`)).json()) as { series: Array<{ tags: unknown }> };
  assert.deepEqual(
    series.series.map((s) => s.tags),
    [{ service: 'shop', host: 'web_1', pid: '7' }],
  );
  assert.equal(agent.self.pushes_rejected, 3);
});

test('a batch lets the agent serve other requests between its queries (the store reads synchronously)', async () => {
  const { agent, base } = await agentWith();
  agent.ingest('b:1|g');
  agent.flush();
  const real = agent.reader as StoreReader;
  let queries = 0;
  let heartbeat: Promise<void> | undefined;
  let answeredAfter = -1;
  // the first query of the batch sends a probe; it must be answered while the batch still runs
  agent.reader = new Proxy(real, {
    get(target, key) {
      if (key === 'query')
        return (q: Parameters<StoreReader['query']>[0]) => {
          queries++;
          heartbeat ??= fetch(`${base}/heartbeat`)
            .then((r) => r.text())
            .then(() => {
              answeredAfter = queries;
            });
          return target.query(q);
        };
      const v = Reflect.get(target, key);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const q = `q=${encodeURIComponent('name=b&agg=max&from=now-1m')}`;
  const r = await fetch(`${base}/api/v1/batch?${Array.from({ length: 200 }, () => q).join('&')}`);
  assert.equal(r.status, 200);
  assert.equal(((await r.json()) as { results: unknown[] }).results.length, 200);
  await heartbeat;
  assert.ok(answeredAfter > 0 && answeredAfter < 200, `the probe was answered after ${answeredAfter} of 200 queries`);
});

test('HTTP connections are capped at a quarter of the open-file limit: idle and half-sent ones are evicted oldest first, so a probe still gets in', {
  timeout: 60_000,
  skip: process.platform === 'win32' ? 'no ulimit on Windows' : false,
}, async () => {
  const a = await startBin(
    ([s, h]) => ['--statsd', String(s), '--http', String(h), '--store', 'off', '--console', 'off', '--data', join(dir, String(n++))],
    () => ({}),
    { shell: 'ulimit -n 400 &&' },
  );
  const clients: net.Socket[] = [];
  try {
    assert.equal(a.code, null, a.out());
    const h = a.ports[1] as number;
    let closed = 0;
    // 500 connections that ask nothing, or send half a request and stop: the cap is 100
    for (let i = 0; i < 500; i++) {
      const c = net.connect(h, '127.0.0.1');
      c.on('error', () => {});
      c.on('close', () => closed++);
      if (i % 2) c.on('connect', () => c.write('GET /api/v1/self HTTP/1.1\r\nhost: x\r\n'));
      clients.push(c);
    }
    await until(() => closed === 400, `400 connections evicted by the agent (${closed})`, 30_000);
    const self = (await (await fetch(`http://127.0.0.1:${h}/api/v1/self`, { signal: AbortSignal.timeout(20_000) })).json()) as Record<
      string,
      number
    >;
    // the probe's own connection evicted one more
    assert.equal(self.http_connections_evicted, 401);
    assert.equal(self.http_connections_refused, 0);
    for (const c of clients) c.destroy();
    clients.length = 0;
    // 100 requests in progress (a push whose body never comes; its 100 Continue says the agent has read
    // its headers): nothing to evict, so a new connection is closed unanswered
    let busy = 0;
    for (let i = 0; i < 100; i++) {
      const c = net.connect(h, '127.0.0.1');
      c.on('error', () => {});
      c.once('data', () => busy++);
      c.on('connect', () => c.write('POST /v1/push HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\nexpect: 100-continue\r\n\r\n'));
      clients.push(c);
    }
    await until(() => busy === 100, `100 pushes in progress (${busy})`, 30_000);
    const probe = await new Promise<string>((resolve) => {
      const c = net.connect(h, '127.0.0.1');
      let got = '';
      c.on('data', (d) => (got += d));
      c.on('error', () => {});
      c.on('close', () => resolve(got));
      c.write('GET /heartbeat HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    });
    for (const c of clients) c.destroy();
    clients.length = 0;
    // the agent sees the 100 closes in its own time: until then a request may still find every slot busy
    let later: Record<string, number> = {};
    await until(
      async () => {
        later = (await fetch(`http://127.0.0.1:${h}/api/v1/self`, { signal: AbortSignal.timeout(20_000) }).then(
          (r) => r.json(),
          () => ({}),
        )) as Record<string, number>;
        return later.http_connections_refused !== undefined;
      },
      'an answer once the pushes are gone',
      30_000,
    );
    assert.equal(probe, '', 'a request over the cap with every connection busy is closed unanswered');
    assert.ok((later.http_connections_refused ?? 0) >= 1, JSON.stringify(later));
    const metrics = await (await fetch(`http://127.0.0.1:${h}/metrics`)).text();
    assert.match(metrics, /^ekg_agent_http_connections_evicted_total 40\d$/m);
  } finally {
    for (const c of clients) c.destroy();
    await a.stop();
  }
});

test('--http-max-connections 20 sets the cap: 30 silent connections leave 20 held, 10 evicted and counted', {
  timeout: 60_000,
}, async () => {
  const a = await startBin(([s, h]) => [
    '--statsd',
    String(s),
    '--http',
    String(h),
    '--store',
    'off',
    '--console',
    'off',
    '--data',
    join(dir, String(n++)),
    '--http-max-connections',
    '20',
  ]);
  const clients: net.Socket[] = [];
  try {
    assert.equal(a.code, null, a.out());
    const h = a.ports[1] as number;
    let closed = 0;
    for (let i = 0; i < 30; i++) {
      const c = net.connect(h, '127.0.0.1');
      c.on('error', () => {});
      c.on('close', () => closed++);
      clients.push(c);
    }
    await until(() => closed === 10, `10 connections evicted by the agent (${closed})`, 30_000);
    const self = (await (await fetch(`http://127.0.0.1:${h}/api/v1/self`, { signal: AbortSignal.timeout(20_000) })).json()) as Record<
      string,
      number
    >;
    // the probe's own connection evicted one more: 11 of 31
    assert.equal(self.http_connections_evicted, 11);
    assert.equal(self.http_connections_refused, 0);
  } finally {
    for (const c of clients) c.destroy();
    await a.stop();
  }
});
