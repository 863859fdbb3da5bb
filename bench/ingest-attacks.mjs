#!/usr/bin/env node
// The StatsD ingest attacks of issue 14, each against a fresh ekg-agent: what was sent, the agent's RSS
// before and after, and the outcome. Run against any build of the agent, to compare:
//   node bench/ingest-attacks.mjs packages/agent/dist/cli.js [attack…]
// attacks: sets set-bytes tcp-conns long-lines idle shutdown lock bare-port tag-flood rates scrape-endless
// exporter-answer (default: all; exporter-answer is export/'s side of the same budget: an answer read to 64 KiB)
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { resolve } from 'node:path';
import { cleanup, dataDir, freePort, rssOf, sleep, spawnAgent, startAgent } from './attack-agent.mjs';

const CLI = resolve(process.argv[2] ?? 'packages/agent/dist/cli.js');
const only = process.argv.slice(3);
const MB = (b) => `${(b / 2 ** 20).toFixed(0)} MB`;

const help = await new Promise((r) => {
  let out = '';
  const p = spawn(process.execPath, [CLI, '--help']);
  p.stdout.on('data', (d) => (out += d));
  p.on('exit', () => r(out));
});
const supports = (flag) => help.includes(flag);

const agent = (flags = [], o = {}) => startAgent(CLI, flags, o);

/** A local HTTP server whose answers never end (1 MiB chunks while the socket takes them); `first` may answer alone (return true). */
async function endlessServer(first) {
  const chunk = Buffer.alloc(1 << 20, 'a');
  const srv = http.createServer((req, res) => {
    if (first(req, res)) return;
    const more = () => {
      while (!res.destroyed && res.write(chunk));
    };
    res.on('drain', more);
    req.socket.on('close', () => res.destroy());
    more();
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return srv;
}

/** Sends datagrams in batches, each after the agent has read the one before (loopback UDP drops what overflows). */
async function sendPaced(a, n, batch, body) {
  const u = dgram.createSocket('udp4');
  const base = (await a.self()).packets_received;
  for (let i = 0; i < n; ) {
    for (let k = 0; k < batch && i < n; k++, i++) await new Promise((r) => u.send(body(i), a.statsd, '127.0.0.1', r));
    for (let t = 0; t < 200 && (await a.self()).packets_received - base < i; t++) await sleep(5);
  }
  u.close();
}

async function settle(a, key) {
  // wait until the agent's counter stops moving (it has read what the kernel held)
  let last = -1;
  for (;;) {
    const v = (await a.self())[key];
    if (v === last) return v;
    last = v;
    await sleep(500);
  }
}

const attacks = {
  async sets() {
    const a = await agent(['--flush-interval', '1m']);
    const before = (await a.self()).rss_bytes;
    const pad = `pad${'x'.repeat(60_000)}\n`;
    await sendPaced(a, 10_000, 64, (i) => `${pad}attack.set:member-${String(i).padStart(16, '0')}|s`);
    const got = await settle(a, 'packets_received');
    const s = await a.self();
    await a.stop();
    return `10,000 UDP datagrams of 60 KB, one distinct set member each (${got} read): RSS ${MB(before)} → ${MB(s.rss_bytes)}; dropped_set_members ${s.dropped_set_members ?? '-'}`;
  },
  async 'set-bytes'() {
    const a = await agent(['--flush-interval', '1m']);
    const before = (await a.self()).rss_bytes;
    await sendPaced(a, 20_000, 256, (i) => `big.set:${String(i).padStart(8000, 'm')}|s`);
    const got = await settle(a, 'packets_received');
    const s = await a.self();
    await a.stop();
    return `20,000 UDP datagrams, one distinct 8,000-byte member each, one set (${got} read): RSS ${MB(before)} → ${MB(s.rss_bytes)}; dropped_set_members ${s.dropped_set_members ?? '-'}`;
  },
  async 'tcp-conns'() {
    const a = await agent(['--store', 'off'], { ulimit: 4096 });
    const before = (await a.self()).rss_bytes;
    const conns = [];
    let closed = 0;
    for (let i = 0; i < 5000; i++) {
      const c = net.connect(a.statsd, '127.0.0.1');
      c.on('error', () => {});
      c.on('close', () => closed++);
      conns.push(c);
      if (i % 500 === 499) await sleep(50);
    }
    await sleep(4000);
    const hb = [];
    for (let i = 0; i < 3; i++) {
      try {
        const r = await fetch(`http://127.0.0.1:${a.http}/heartbeat`, { signal: AbortSignal.timeout(5000) });
        hb.push(`${r.status} ${await r.text()}`);
      } catch (err) {
        hb.push(`no answer (${err.cause?.code ?? err.name})`);
      }
    }
    const s = await a.self();
    const held = 5000 - closed;
    for (const c of conns) c.destroy();
    await a.stop('SIGKILL');
    return `5,000 held TCP connections to an agent with ulimit -n 4096: /heartbeat ×3 → ${hb.join(', ')}; held ${held}; RSS ${MB(before)} → ${s.rss_bytes ? MB(s.rss_bytes) : s.error}; refused ${s.statsd_connections_refused ?? '-'}`;
  },
  async 'long-lines'() {
    const a = await agent(['--store', 'off']);
    const before = (await a.self()).rss_bytes;
    for (let i = 0; i < 1000; i++) {
      const c = net.connect(a.statsd, '127.0.0.1');
      c.on('error', () => {});
      await new Promise((r) => c.once('connect', r));
      c.write('z'.repeat(70_000));
      await sleep(2);
      c.end(`bogus.${i}:1|c\n`);
      await new Promise((r) => c.once('close', r));
    }
    await settle(a, 'bad_lines');
    const s = await a.self();
    await a.stop();
    return `1,000 TCP lines of 70,000 bytes ending in "bogus.N:1|c": series created ${s.series_active}, too_long counted ${s.bad_lines_by_reason?.too_long ?? 0}; RSS ${MB(before)} → ${MB(s.rss_bytes)}`;
  },
  async idle() {
    const a = await agent(['--store', 'off', ...(supports('--statsd-idle-timeout') ? ['--statsd-idle-timeout', '2s'] : [])]);
    const conns = [];
    let closed = 0;
    for (let i = 0; i < 500; i++) {
      const c = net.connect(a.statsd, '127.0.0.1');
      c.on('error', () => {});
      c.on('close', () => closed++);
      conns.push(c);
    }
    await sleep(4000);
    const s = await a.self();
    const open = 500 - closed;
    for (const c of conns) c.destroy();
    await a.stop();
    return `500 silent TCP connections, 4 s later: ${open} still open (idle_closed ${s.statsd_connections_idle_closed ?? '-'})`;
  },
  async shutdown() {
    const a = await agent(['--store-max-size', '64k', '--flush-interval', '1s']);
    const c = net.connect(a.statsd, '127.0.0.1');
    c.end(`${Array.from({ length: 3000 }, (_, i) => `fill.s${i}:1|c`).join('\n')}\n`);
    let held = 0;
    for (let i = 0; i < 100 && held < 3; i++) {
      held = (await a.self()).store?.windows_held ?? 0;
      await sleep(200);
    }
    const code = await a.stop();
    const said = a
      .out()
      .split('\n')
      .filter((l) => /lost|held/.test(l));
    return `SIGTERM with ${held} windows held (store capped at 64k): exit ${code}; said: ${said.length ? said.join(' | ') : 'nothing about them'}`;
  },
  async lock() {
    const first = await agent();
    const second = await agent([], { data: first.data });
    const running = second.p.exitCode === null;
    const code = running ? await second.stop() : second.p.exitCode;
    await first.stop();
    return `a second agent on the same data dir: ${running ? 'started too (both write the same files)' : `exit ${code}: ${second.out().trim()}`}`;
  },
  async 'bare-port'() {
    const port = await freePort();
    const a = await spawnAgent(CLI, ['--statsd', String(port), '--http', 'off', '--store', 'off', '--console', 'off']);
    a.p.kill();
    await a.exited;
    const out = a.out();
    return `ekg-agent --statsd ${port}: ${out.trim().split('\n')[0]}`;
  },
  async 'tag-flood'() {
    // 20,000 distinct series whose lines are all tags (7,900 characters each), over TCP
    const a = await agent(['--flush-interval', '1s']);
    const before = rssOf(a.p.pid);
    const pad = 'x'.repeat(7900);
    const c = net.connect(a.statsd, '127.0.0.1');
    for (let i = 0; i < 20_000; i++) if (!c.write(`flood:1|c|#a:${i}${pad}\n`)) await new Promise((r) => c.once('drain', r));
    c.end('sync:1|c\n');
    await new Promise((r) => c.once('close', r));
    await settle(a, 'metrics_received');
    await sleep(2000);
    const s = await a.self();
    const rss = rssOf(a.p.pid);
    const t0 = performance.now();
    const r = await fetch(`http://127.0.0.1:${a.http}/api/v1/series?match=flood`);
    const body = await r.arrayBuffer();
    const ms = Math.round(performance.now() - t0);
    await a.stop();
    return `20,000 lines of 7,900 characters of tags, each its own series: series ${s.series_active}, too_long ${s.bad_lines_by_reason?.too_long ?? 0}; RSS ${MB(before)} → ${MB(rss)}; /api/v1/series?match=flood answered ${MB(body.byteLength)} in ${ms} ms`;
  },
  async rates() {
    // values a sample rate or a sum pushes past a double
    const a = await agent(['--flush-interval', '1s']);
    const c = net.connect(a.statsd, '127.0.0.1');
    c.end('r.tiny:1|c|@5e-324\nr.over:1e308|c|@0.5\nr.neg:1|c|@-1\nr.zero:1|c|@0\nsync:1|c\n');
    await new Promise((r) => c.once('close', r));
    await sleep(3500);
    const s = await a.self();
    // the series a name made, and the values it answers that are not null (a window summed to Infinity answers null)
    const q = async (name) => {
      const got = (await (await fetch(`http://127.0.0.1:${a.http}/api/v1/query?name=${name}&agg=sum&from=-1m`)).json()).series ?? [];
      return `${got.length} series, values ${JSON.stringify(got.flatMap((x) => (x.v ?? x.values ?? []).filter((v) => v !== null)))}`;
    };
    const tiny = await q('r.tiny');
    const over = await q('r.over');
    await a.stop();
    return `r.tiny:1|c|@5e-324 → ${tiny}; r.over:1e308|c|@0.5 → ${over}; bad lines ${JSON.stringify(s.bad_lines_by_reason)}`;
  },
  async 'scrape-endless'() {
    // a scrape target that answers an endless body
    const srv = await endlessServer((req, res) => {
      if (req.url.includes('heartbeat')) {
        res.end('ok');
        return true;
      }
    });
    const a = await agent(['--scrape', `http://127.0.0.1:${srv.address().port}/metrics`, '--scrape-interval', '2s']);
    const before = rssOf(a.p.pid);
    let max = 0;
    for (let i = 0; i < 30; i++) {
      max = Math.max(max, rssOf(a.p.pid) ?? 0);
      await sleep(300);
    }
    const said = a
      .out()
      .split('\n')
      .find((l) => /scrape/.test(l) && /failing/.test(l));
    await a.stop('SIGKILL');
    srv.closeAllConnections();
    srv.close();
    return `a scrape target answering an endless body, 9 s: RSS ${MB(before)} → at most ${MB(max)}; said: ${said ?? 'nothing'}`;
  },
  async 'exporter-answer'() {
    // an exporter's receiver (influx here; OTLP, remote write and webhooks share export/exporter.ts' post) that
    // answers an endless body
    const srv = await endlessServer((req, res) => {
      req.resume();
      res.writeHead(200);
    });
    const d = dataDir();
    writeFileSync(
      `${d}/agent.yaml`,
      `exporters:\n  - type: influx\n    url: http://127.0.0.1:${srv.address().port}/api/v2/write?org=o&bucket=b\n`,
    );
    const a = await agent(['--flush-interval', '1s', '--config', `${d}/agent.yaml`], { data: d });
    const before = rssOf(a.p.pid);
    const c = net.connect(a.statsd, '127.0.0.1');
    c.end('x:1|c\n');
    let max = 0;
    for (let i = 0; i < 40; i++) {
      max = Math.max(max, rssOf(a.p.pid) ?? 0);
      await sleep(300);
    }
    await a.stop('SIGKILL');
    srv.closeAllConnections();
    srv.close();
    return `an influx receiver answering an endless body, 12 s: RSS ${MB(before)} → at most ${MB(max)}`;
  },
};

for (const [name, run] of Object.entries(attacks)) {
  if (only.length && !only.includes(name)) continue;
  try {
    console.log(`${name}: ${await run()}`);
  } catch (err) {
    console.log(`${name}: failed: ${err.stack}`);
  }
}
cleanup();
