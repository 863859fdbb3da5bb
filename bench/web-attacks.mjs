#!/usr/bin/env node
// The agent-HTTP attacks of issue 14, each against a fresh ekg-agent: what was sent, the agent's RSS before and
// after, the answer, and how /heartbeat fared meanwhile. Run against any build of the agent, to compare:
//   node bench/web-attacks.mjs packages/agent/dist [attack…]
// attacks: url big wide idle batch edge redos params push heartbeat conns metrics-loop push-name push-encoded listing
// (default: all; big, idle, batch and metrics-loop plant 100,000 series in 1 s windows: idle shows what that alone
// costs /heartbeat)
import net from 'node:net';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { cleanup, rssOf, sleep, startAgent } from './attack-agent.mjs';

const dist = resolve(process.argv[2] ?? 'packages/agent/dist');
const only = process.argv.slice(3);
const rss = (pid) => {
  const b = rssOf(pid);
  return b === undefined ? 'gone' : `${Math.round(b / 2 ** 20)} MB`;
};
async function agent(extra = [], env = {}) {
  const a = await startAgent(join(dist, 'cli.js'), ['--flush-interval', '1s', ...extra], { env });
  if (a.p.exitCode !== null) throw new Error(`agent exited: ${a.stderr()}`);
  return a;
}
function raw(port, text, wait = 3000) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('error', (e) => resolve(`socket error ${e.code}`));
    s.on('close', () => resolve(got || '(closed, no answer)'));
    s.write(text);
    setTimeout(() => {
      s.destroy();
    }, wait);
  });
}
function tcpLines(port, lines) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.end(`${lines.join('\n')}\n`);
    });
    s.on('close', resolve);
    s.on('error', reject);
  });
}
async function waitFor(fn, ms = 120_000) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await fn().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}
const self = (a, h) => a.self(h);
async function timed(url, opts = {}, limit = 60_000) {
  const t0 = performance.now();
  try {
    const r = await fetch(url, { ...opts, signal: AbortSignal.timeout(limit) });
    const body = await r.text();
    return `${r.status} ${body.length > 300 ? `${body.slice(0, 200)}… (${body.length} bytes)` : body.trim()} in ${Math.round(performance.now() - t0)} ms`;
  } catch (e) {
    return `no answer (${e.name}: ${e.cause?.code ?? e.message}) after ${Math.round(performance.now() - t0)} ms`;
  }
}
async function probe(a, during) {
  // heartbeat latency while `during` runs
  const lat = [];
  let done = false;
  const loop = (async () => {
    while (!done) {
      const t0 = performance.now();
      const r = await fetch(`${a.base}/heartbeat`, { signal: AbortSignal.timeout(120_000) }).then(
        (r) => r.status,
        () => 'fail',
      );
      lat.push([r, Math.round(performance.now() - t0)]);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const res = await during();
  done = true;
  await loop;
  const max = Math.max(...lat.map((x) => x[1]));
  return `${res}; heartbeat probes: ${lat.length}, max ${max} ms, failed ${lat.filter((x) => x[0] !== 200).length}`;
}
/** An agent holding `n` one-point gauge series (q.big, one per pid), written to the store. */
async function bigAgent(n) {
  const a = await agent(['--max-series', '200000']);
  await tcpLines(
    a.statsd,
    Array.from({ length: n }, (_, i) => `q.big:1|g|#pid:${i}`),
  );
  await waitFor(async () => (await self(a)).store.points_written >= n);
  return a;
}

const attacks = {
  async url() {
    const out = [];
    for (const path of ['//x:99999', '//[', '//a%20b']) {
      const a = await agent();
      const before = rss(a.p.pid);
      const ans = await raw(a.http, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      await new Promise((r) => setTimeout(r, 300));
      const alive = a.p.exitCode === null;
      out.push(
        `GET ${path}: rss ${before} -> ${rss(a.p.pid)}; answer ${JSON.stringify(ans.split('\r\n')[0])}; agent ${
          alive
            ? 'alive'
            : `died: ${a
                .stderr()
                .split('\n')
                .find((l) => /Error/.test(l))}`
        }`,
      );
      a.p.kill('SIGKILL');
    }
    return out.join('\n');
  },
  async big() {
    const a = await agent(['--max-series', '200000']);
    const n = 100_000;
    const lines = Array.from({ length: n }, (_, i) => `q.big:1|g|#pid:${i}`);
    await tcpLines(a.statsd, lines);
    await waitFor(async () => (await self(a)).store.points_written >= n);
    const before = rss(a.p.pid);
    const r = await probe(a, () => timed(`${a.base}/api/v1/query?name=q.big&agg=sum&from=-10m`, {}, 300_000));
    await new Promise((r) => setTimeout(r, 300));
    const s = `GET /api/v1/query?name=q.big&agg=sum&from=-10m over ${n} series: rss ${before} -> ${rss(a.p.pid)}; ${r}; agent ${
      a.p.exitCode === null
        ? 'alive'
        : `died: ${a
            .stderr()
            .split('\n')
            .filter((l) => /heap|Error/.test(l))
            .slice(0, 2)
            .join(' | ')}`
    }`;
    a.p.kill('SIGKILL');
    return s;
  },
  async wide() {
    const a = await agent();
    const n = 10_000;
    const lines = Array.from({ length: n }, (_, i) => `q.wide:${i}|g|#pid:${i}`);
    await tcpLines(a.statsd, lines);
    await waitFor(async () => (await self(a)).store.points_written >= n);
    const before = rss(a.p.pid);
    const r = await probe(a, () => timed(`${a.base}/api/v1/query?name=q.wide&agg=max&from=-1h&step=1s`, {}, 300_000));
    const s = `GET /api/v1/query?name=q.wide&agg=max&from=-1h&step=1s over ${n} series: rss ${before} -> ${rss(a.p.pid)}; ${r}; agent ${a.p.exitCode === null ? 'alive' : 'died'}`;
    a.p.kill('SIGKILL');
    return s;
  },
  async batch() {
    const n = 100_000;
    const a = await bigAgent(n);
    const before = rss(a.p.pid);
    const q = `q=${encodeURIComponent('name=zzz.none&from=-10m')}`;
    const r = await probe(a, () => timed(`${a.base}/api/v1/batch?${Array.from({ length: 200 }, () => q).join('&')}`, {}, 300_000));
    const s = `GET /api/v1/batch with 200 × q=name=zzz.none (no agg: a kind lookup each) over ${n} series: rss ${before} -> ${rss(a.p.pid)}; ${r.replace(/\{"results".{0,300}/, (m) => m.slice(0, 300))}`;
    a.p.kill('SIGKILL');
    return s;
  },
  async idle() {
    const n = 100_000;
    const a = await bigAgent(n);
    const r = await probe(a, () => new Promise((res) => setTimeout(() => res('15 s of nothing'), 15000)));
    a.p.kill('SIGKILL');
    return `${n} series, 1 s windows, no query: ${r}`;
  },
  async edge() {
    const a = await agent();
    const n = 1650;
    await tcpLines(
      a.statsd,
      Array.from({ length: n }, (_, i) => `q.edge:${i}|g|#pid:${i}`),
    );
    await waitFor(async () => (await self(a)).store.points_written >= n);
    const before = rss(a.p.pid);
    const out = [];
    for (const q of ['agg=max', 'agg=sum&by=']) {
      const r = await probe(a, () => timed(`${a.base}/api/v1/query?name=q.edge&${q}&from=-10m&step=1s`, {}, 300_000));
      out.push(
        `GET /api/v1/query?name=q.edge&${q}&from=-10m&step=1s over ${n} series (${n} x 601 = ${n * 601} points): rss ${before} -> ${rss(a.p.pid)}; ${r}`,
      );
    }
    a.p.kill('SIGKILL');
    return out.join('\n');
  },
  async redos() {
    const a = await agent();
    await tcpLines(a.statsd, [`${'a'.repeat(200)}:1|c`]);
    await waitFor(async () => (await self(a)).store.points_written >= 1);
    const before = rss(a.p.pid);
    const r = await probe(a, () => timed(`${a.base}/api/v1/series?match=*a*a*a*a*a*b`, {}, 30_000));
    const s = `name a×200 over StatsD, GET /api/v1/series?match=*a*a*a*a*a*b: rss ${before} -> ${rss(a.p.pid)}; ${r}`;
    a.p.kill('SIGKILL');
    return s;
  },
  async params() {
    const a = await agent();
    await tcpLines(a.statsd, ['lvl:1|g']);
    await waitFor(async () => (await self(a)).store.points_written >= 1);
    const out = [];
    for (const q of [
      '/api/v1/query?name=lvl&aggregation=max',
      `/api/v1/query?name=lvl&step=${'9'.repeat(400)}`,
      '/api/v1/query?name=lvl&from=-99999999999999999999999d',
    ])
      out.push(`GET ${q.length > 80 ? `${q.slice(0, 60)}…(${q.length} chars)` : q}: ${await timed(a.base + q)}`);
    a.p.kill('SIGKILL');
    return out.join('\n');
  },
  async push() {
    const a = await agent();
    const r = await timed(`${a.base}/v1/push`, {
      method: 'POST',
      headers: { 'x-ekg-service': 'shop', 'x-ekg-host': 'h,evil:1', 'content-type': 'application/json' },
      body: '{"gauges":{"pushed":1}}',
    });
    await waitFor(async () => (await self(a)).store.points_written >= 1);
    const s = (await (await fetch(`${a.base}/api/v1/series?match=pushed`)).json()).series;
    a.p.kill('SIGKILL');
    return `POST /v1/push with X-Ekg-Host: h,evil:1: ${r}; stored tags ${JSON.stringify(s.map((x) => x.tags))}`;
  },
  async heartbeat() {
    const a = await agent(['--store-max-size', '64k'], { EKG_AGENT_TOKEN: 'secret-token-1' });
    for (
      let i = 0;
      i < 20 && !(await waitFor(async () => !(await self(a, { authorization: 'Bearer secret-token-1' })).store.ok, 1500));
      i++
    )
      await tcpLines(
        a.statsd,
        Array.from({ length: 2000 }, (_, j) => `fill.${i}.${j}:1|c`),
      );
    const hb = await timed(`${a.base}/heartbeat`);
    const low = await timed(`${a.base}/api/v1/self`, { headers: { authorization: 'bearer secret-token-1' } });
    a.p.kill('SIGKILL');
    return `GET /heartbeat (no token) with a full store: ${hb}\nGET /api/v1/self with "authorization: bearer <token>": ${low.slice(0, 120)}`;
  },
  async conns() {
    // 1,200 connections that ask nothing (or half a request) to an agent under ulimit -n 1024
    const out = [];
    for (const half of [false, true]) {
      const a = await startAgent(join(dist, 'cli.js'), ['--flush-interval', '1s'], { ulimit: 1024 });
      const before = rss(a.p.pid);
      const conns = [];
      let closed = 0;
      for (let i = 0; i < 1200; i++) {
        const c = net.connect(a.http, '127.0.0.1');
        c.on('error', () => {});
        c.on('close', () => closed++);
        if (half) c.on('connect', () => c.write('GET /api/v1/self HTTP/1.1\r\nHost: x\r\n'));
        conns.push(c);
        if (i % 200 === 199) await sleep(50);
      }
      await sleep(3000);
      const self = await timed(`${a.base}/api/v1/self`, {}, 5000);
      const held = 1200 - closed;
      for (const c of conns) c.destroy();
      await sleep(500);
      const s = await a.self();
      out.push(
        `1,200 ${half ? 'half-sent requests' : 'silent connections'} under ulimit -n 1024: ${held} held; GET /api/v1/self meanwhile: ${self.slice(0, 40)}…${self.slice(-12)}; rss ${before} -> ${rss(a.p.pid)}; evicted ${s.http_connections_evicted ?? '-'}`,
      );
      a.p.kill('SIGKILL');
    }
    return out.join('\n');
  },
  async 'metrics-loop'() {
    // 8 clients asking the agent's /metrics in a loop while it holds 100,000 series
    const a = await bigAgent(100_000);
    const before = rss(a.p.pid);
    let done = false;
    let n = 0;
    const loops = Array.from({ length: 8 }, async () => {
      while (!done)
        await fetch(`${a.base}/metrics`)
          .then((r) => r.arrayBuffer())
          .then(
            () => n++,
            () => {},
          );
    });
    const r = await probe(a, () => sleep(10_000).then(() => '10 s of 8 /metrics loops'));
    done = true;
    await Promise.all(loops);
    const after = rss(a.p.pid);
    a.p.kill('SIGKILL');
    return `${r}; ${n} answers; rss ${before} -> ${after}`;
  },
  async listing() {
    // 100,000 series of one name, each its own instance (pid:N): the series listing filtered by a tag, and
    // the instance list (the dashboard's first request)
    const n = 100_000;
    const a = await bigAgent(n);
    const out = [];
    for (const q of ['/api/v1/series?match=q.big&tags=pid:5', '/api/v1/series?match=q.*&tags=pid:5', '/api/v1/instances']) {
      // three times: the store's compaction of the 100,000 new series may hold the loop during one of them
      for (let k = 0; k < 3; k++) {
        const before = rss(a.p.pid);
        const r = await probe(a, () => timed(a.base + q, {}, 120_000));
        out.push(`GET ${q} over ${n} series and instances: rss ${before} -> ${rss(a.p.pid)}; ${r}`);
      }
    }
    const s = await self(a);
    out.push(
      `counters: queries_over_points ${s.queries_over_points}, series_truncated ${s.series_truncated}, instances_truncated ${s.instances_truncated}`,
    );
    a.p.kill('SIGKILL');
    return out.join('\n');
  },
  async 'push-name'() {
    const a = await agent();
    const before = rss(a.p.pid);
    const r = await timed(`${a.base}/v1/push`, { method: 'POST', body: JSON.stringify({ gauges: { ['n'.repeat(900_000)]: 1 } }) });
    const after = rss(a.p.pid);
    a.p.kill('SIGKILL');
    return `POST /v1/push of one gauge with a 900,000-character name: ${r.slice(0, 160)}; rss ${before} -> ${after}`;
  },
  async 'push-encoded'() {
    const a = await agent();
    const before = rss(a.p.pid);
    const bomb = gzipSync(Buffer.alloc(100 << 20));
    const gz = await timed(`${a.base}/v1/push`, { method: 'POST', headers: { 'content-encoding': 'gzip' }, body: bomb });
    const sn = await timed(`${a.base}/v1/push`, {
      method: 'POST',
      headers: { 'content-encoding': 'snappy' },
      body: Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0]),
    });
    const rw = await timed(`${a.base}/api/v1/write`, { method: 'POST', body: 'x' });
    const after = rss(a.p.pid);
    a.p.kill('SIGKILL');
    return `POST /v1/push, gzip of 100 MB of zeros (${bomb.length} bytes): ${gz.slice(0, 60)}…\nsnappy claiming 4 GB: ${sn.slice(0, 60)}…\nPOST /api/v1/write: ${rw}; rss ${before} -> ${after}`;
  },
};
for (const [k, f] of Object.entries(attacks)) {
  if (only.length && !only.includes(k)) continue;
  console.log(`## ${k}\n${await f()}`);
}
cleanup();
