import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Agent, loadConfig, SqliteStore } from 'ekg-agent';
import { statsdLines } from '../../../packages/ekg/dist/formats/statsd.js';
import { type AgentProcess, startAgent } from './processes.js';

/**
 * The time model end to end (docs/time-model.md): an app's windows of one length, the agent's of
 * another, and the query's step a third. The app's StatsD lines are the library's own
 * (`statsdLines` with the window, as its reporters send them); a real agent (SQLite store, HTTP API)
 * takes them at their arrival times and closes its windows at its ticks, both driven explicitly, so
 * no timer or loaded machine moves a window. The app serves exactly 20 requests a second.
 */

const RATE = 20;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Reading {
  step: number;
  values: Array<number | null>;
}

async function run(appS: number, agentS: number): Promise<Reading[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ekg-time-'));
  dirs.push(dir);
  const config = loadConfig(
    ['--statsd', 'udp://127.0.0.1:0', '--http', '127.0.0.1:0', '--data', dir, '--flush-interval', `${agentS}s`],
    {},
  );
  assert.notEqual(config, 'help');
  const agent = new Agent(config as Exclude<typeof config, 'help'>, []);
  await agent.start({ timer: false });
  try {
    // five minutes ago, on a minute: inside the raw resolution, and every window closed
    const t0 = Math.floor(Date.now() / 60_000) * 60_000 - 300_000;
    const events: Array<{ at: number; run(): void }> = [];
    // the app's windows end 3.2 s past the agent's ticks (they are not aligned); each line arrives 5 ms later
    for (let end = t0 + 3200; end <= t0 + 200_000; end += appS * 1000) {
      const e = end;
      const lines = statsdLines(
        [
          { name: 'http.requests.2xx', value: RATE * appS, type: 'counter' },
          { name: 'runtime.memory.rss', value: 100_000_000, type: 'gauge' },
        ],
        { tags: { service: 'shop', pid: '4242', host: 'h' } },
        { start: e - appS * 1000, end: e },
      );
      events.push({ at: e + 5, run: () => agent.ingest(lines.join('\n'), e + 5) });
    }
    for (let t = t0 + agentS * 1000; t <= t0 + 200_000; t += agentS * 1000) {
      const at = t;
      events.push({ at, run: () => agent.flush(at) });
    }
    agent.flush(t0);
    for (const ev of events.sort((a, b) => a.at - b.at)) ev.run();

    const port = agent.addresses().http as number;
    // the range after the first minute (the pipeline filling) up to two minutes later, on minute ends
    const from = t0 + 60_001;
    const to = t0 + 180_000;
    const out: Reading[] = [];
    for (const step of [1, 5, 10, 60]) {
      const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?name=http.requests.2xx&agg=rate&step=${step}s&from=${from}&to=${to}`);
      assert.equal(r.status, 200, await r.clone().text());
      const body = (await r.json()) as { t: number[]; series: Array<{ values: Array<number | null> }> };
      assert.equal(body.series.length, 1, JSON.stringify(body));
      out.push({ step, values: (body.series[0] as { values: Array<number | null> }).values });
    }
    // the gauge, sent once per app window, holds for its window: every step has it, none twice
    for (const step of [1, 5, 60]) {
      const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?name=runtime.memory.rss&agg=max&step=${step}s&from=${from}&to=${to}`);
      const body = (await r.json()) as { series: Array<{ values: Array<number | null> }> };
      assert.deepEqual(new Set(body.series[0]?.values), new Set([100_000_000]), `rss at step ${step}s`);
    }
    return out;
  } finally {
    await agent.stop();
  }
}

for (const [appS, agentS] of [
  [10, 5],
  [5, 10],
  [10, 10],
] as const) {
  test(`${appS} s app windows, ${agentS} s agent windows, 20 req/s: every step reads 20/s within 5 %, no nulls`, async () => {
    const readings = await run(appS, agentS);
    const table: string[] = [];
    for (const { step, values } of readings) {
      const nums = values.filter((v): v is number => v !== null);
      table.push(
        `step ${step}s: ${values.length} points, nulls ${values.length - nums.length}, min ${Math.min(...nums).toFixed(2)}, max ${Math.max(...nums).toFixed(2)}`,
      );
    }
    process.stdout.write(`# ${appS} s app / ${agentS} s agent\n${table.map((l) => `#   ${l}`).join('\n')}\n`);
    for (const { step, values } of readings) {
      // the step asked for, not the store's resolution: one point a step over the two minutes
      assert.equal(values.length, 120 / step, `step ${step}s: ${values.length} points`);
      for (const [i, v] of values.entries()) {
        assert.notEqual(v, null, `step ${step}s: a null at point ${i} of ${values.length}`);
        assert.ok(Math.abs((v as number) - RATE) <= RATE * 0.05, `step ${step}s: ${v} at point ${i}`);
      }
    }
  });
}

test('an app restarted ten times leaves one live row: the old instances go stale, then gone after --instance-retention, their series with them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ekg-time-'));
  dirs.push(dir);
  const config = loadConfig(
    ['--statsd', 'udp://127.0.0.1:0', '--http', '127.0.0.1:0', '--data', dir, '--flush-interval', '5s', '--instance-retention', '100s'],
    {},
  );
  assert.notEqual(config, 'help');
  const agent = new Agent(config as Exclude<typeof config, 'help'>, []);
  await agent.start({ timer: false });
  try {
    // ten lives of 30 s each, one after the other, each a new pid; the last one ends now
    const t0 = Math.floor(Date.now() / 5000) * 5000 - 300_000;
    agent.flush(t0);
    for (let t = t0 + 5000; t <= t0 + 300_000; t += 5000) {
      const pid = 1000 + Math.min(9, Math.floor((t - t0 - 1) / 30_000));
      const lines = statsdLines(
        [{ name: 'runtime.memory.rss', value: 1e8, type: 'gauge' }],
        { tags: { service: 'shop', pid: String(pid), host: 'h' } },
        { start: t - 5000, end: t - 100 },
      );
      agent.ingest(lines.join('\n'), t - 100);
      agent.flush(t);
    }
    const r = await fetch(`http://127.0.0.1:${agent.addresses().http}/api/v1/instances`);
    const rows = ((await r.json()) as { instances: Array<{ pid?: string; health: string }> }).instances;
    assert.deepEqual(
      rows.filter((i) => i.health === 'reporting').map((i) => i.pid),
      ['1009'],
    );
    // lives that ended within the retention are listed as stale; older ones are gone
    assert.deepEqual(rows.map((i) => [i.pid, i.health]).sort(), [
      ['1006', 'stale'],
      ['1007', 'stale'],
      ['1008', 'stale'],
      ['1009', 'reporting'],
    ]);
    // the series listing (the dashboard's explorer and instance pages read it) has the same four lives
    const api = `http://127.0.0.1:${agent.addresses().http}/api/v1`;
    const listed = ((await (await fetch(`${api}/series?match=runtime.memory.rss`)).json()) as { series: Array<{ tags: { pid: string } }> })
      .series;
    assert.deepEqual(listed.map((x) => x.tags.pid).sort(), ['1006', '1007', '1008', '1009']);
    const all = ((await (await fetch(`${api}/series`)).json()) as { series: Array<{ tags: { pid?: string } }> }).series;
    assert.deepEqual([...new Set(all.map((x) => x.tags.pid))].sort(), ['1006', '1007', '1008', '1009']);
    // a gone life's data stays queryable by name and time until the store's retention
    const q = (await (
      await fetch(`${api}/query?name=runtime.memory.rss&tags=pid:1000&agg=max&from=${t0}&to=${t0 + 30_000}&step=30s`)
    ).json()) as { series: Array<{ values: Array<number | null> }> };
    assert.deepEqual(new Set(q.series[0]?.values.filter((v) => v !== null)), new Set([1e8]), JSON.stringify(q));
  } finally {
    await agent.stop();
  }
});

test("stopping mid-period delivers the partial period to the Heroku exporter and the store, with the interval's remainder", async () => {
  const posts: Array<{ counters?: Record<string, number> }> = [];
  const server = createServer((req, res) => {
    let b = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (b += d));
    req.on('end', () => {
      posts.push(JSON.parse(b));
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  after(() => server.close());
  const dir = mkdtempSync(join(tmpdir(), 'ekg-time-'));
  dirs.push(dir);
  writeFileSync(
    join(dir, 'agent.yaml'),
    `exporters:\n  - type: heroku\n    url: http://127.0.0.1:${(server.address() as AddressInfo).port}/m\n    period: 20s\n`,
  );
  const config = loadConfig(
    ['--config', join(dir, 'agent.yaml'), '--statsd', 'udp://127.0.0.1:0', '--http', 'off', '--data', dir, '--flush-interval', '5s'],
    {},
  );
  assert.notEqual(config, 'help');
  const agent = new Agent(config as Exclude<typeof config, 'help'>, []);
  await agent.start({ timer: false });
  // two 5 s windows of a 20 s period, then the stop (what SIGTERM calls): 2 × 100 requests from 5 s app windows
  const t0 = Math.floor(Date.now() / 5000) * 5000 - 10_000;
  agent.flush(t0);
  for (const end of [t0 + 2000, t0 + 7000]) {
    const lines = statsdLines([{ name: 'jobs', value: 100, type: 'counter' }], { tags: { pid: '1' } }, { start: end - 5000, end });
    agent.ingest(lines.join('\n'), end);
  }
  agent.flush(t0 + 5000);
  agent.flush(t0 + 10_000);
  const store = agent.store;
  await agent.stop();
  // the whole 200 reached the exporter in one partial period
  const deadline = Date.now() + 10_000;
  while (posts.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(posts.length, 1);
  assert.equal(posts[0]?.counters?.jobs, 200);
  // and the store has every one of them, the last window included
  assert.ok(store);
  const reopened = new SqliteStore({ path: join(dir, 'ekg.db'), flushInterval: 5000 });
  try {
    const q = await reopened.query({ name: 'jobs', tags: {}, from: t0, to: Date.now() + 60_000, step: 3_600_000, agg: 'sum', by: [] });
    assert.equal(
      q.series[0]?.values.reduce((a: number, v) => a + (v ?? 0), 0),
      200,
    );
  } finally {
    await reopened.close();
  }
});

/**
 * The same on the wall clock, scaled down: a real app process (ekg-vitals, 2 s windows, StatsD over
 * TCP to two real agents, one at 1 s windows and one at 4 s), a load loop at 20 requests a second.
 * The truth is what was served: the app prints its windows' bounds and each response's finish on its
 * own clock, so each is binned into the window it was served in, and each point's true rate
 * is those counts taken through the time model (each window's count over the 2 s after its end, each
 * agent window's amount evenly over its steps) — so a late timer in the load loop moves the truth with it.
 */
const WALL_APP = (lib: string, a: number, b: number) => `
import { createServer } from 'node:http';
import { createEkg } from '${lib}';
const ekg = createEkg({ interval: 2000, signals: false, report: { statsd: ['tcp://127.0.0.1:${a}', 'tcp://127.0.0.1:${b}'], service: 'rates' } });
ekg.onWindow((s) => console.log('window ' + s.window.start + ' ' + s.window.end));
// each response's finish, on the app's clock (the http vital counts it at the same event)
const server = createServer((req, res) => {
  res.on('finish', () => console.log('served ' + Date.now()));
  res.end('ok');
});
server.listen(0, '127.0.0.1', () => console.log('app ' + server.address().port));
`;

test('wall clock: a real app at 2 s windows under 20 req/s, agents at 1 s and 4 s: every step reads the served rate within 5 %, no nulls', {
  timeout: 90_000,
}, async () => {
  const agents: AgentProcess[] = await Promise.all([startAgent(['--flush-interval', '1s']), startAgent(['--flush-interval', '4s'])]);
  const dir = mkdtempSync(join(tmpdir(), 'ekg-time-app-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'app.mjs'), WALL_APP(import.meta.resolve('ekg-vitals'), agents[0]?.tcp as number, agents[1]?.tcp as number));
  const app = spawn(process.execPath, [join(dir, 'app.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const windows: Array<{ start: number; end: number }> = [];
  const served: number[] = [];
  let out = '';
  app.stdout?.on('data', (d) => {
    out += d;
    let i = out.indexOf('\n');
    while (i >= 0) {
      const line = out.slice(0, i);
      out = out.slice(i + 1);
      const w = /^window (\d+) (\d+)$/.exec(line);
      if (w) windows.push({ start: Number(w[1]), end: Number(w[2]) });
      const f = /^served (\d+)$/.exec(line);
      if (f) served.push(Number(f[1]));
      const a = /^app (\d+)$/.exec(line);
      if (a) port = Number(a[1]);
      i = out.indexOf('\n');
    }
  });
  let port = 0;
  const until = (ok: () => boolean, what: string, ms = 30_000) =>
    new Promise<void>((resolve, reject) => {
      const end = Date.now() + ms;
      const check = () => {
        if (ok()) return resolve();
        if (Date.now() > end || app.exitCode !== null)
          return reject(new Error(`timed out waiting for ${what}: ${JSON.stringify(windows.slice(-3))}`));
        setTimeout(check, 50);
      };
      check();
    });
  try {
    await until(() => port > 0 && windows.length > 0, "the app's first window");
    const first = windows[0] as { start: number; end: number };
    // 20 a second, each 25 ms clear of the app's window bounds (they fall every 2 s from its first window's end)
    let sent = 0;
    let answered = 0;
    let stop = false;
    const t0 = first.end + 25 + Math.ceil((Date.now() - first.end) / 50) * 50;
    // the covered range: the first 8 s bucket with full windows everywhere (load, app window, spread, agent window), and 16 s on
    const from = Math.ceil((t0 + 8000) / 8000) * 8000;
    const to = from + 16_000;
    const loop = (async () => {
      for (let i = 0; !stop; i++) {
        const at = t0 + i * 50;
        if (at > to + 2000) break;
        const wait = at - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        sent++;
        void fetch(`http://127.0.0.1:${port}/`)
          .then((r) => r.arrayBuffer().then(() => r.ok && answered++))
          .catch(() => {});
      }
    })();
    // every app window reaching into the range reported, and both agents' windows closed past its end
    await until(() => windows.some((w) => w.end > to + 100), 'the app window past the range', 60_000);
    stop = true;
    await loop;
    const api = (a: AgentProcess, step: number) =>
      `${a.http}/api/v1/query?name=http.requests.2xx&tags=service:rates&agg=rate&step=${step}s&from=${from + 1}&to=${to}`;
    const read = async (a: AgentProcess, step: number) => {
      const r = await fetch(api(a, step));
      assert.equal(r.status, 200, await r.clone().text());
      const body = (await r.json()) as { series: Array<{ values: Array<number | null> }> };
      return body.series.length === 1 ? (body.series[0] as { values: Array<number | null> }).values : [];
    };
    for (const a of agents) {
      const last = Date.now() + 30_000;
      while ((await read(a, 8)).at(-1) == null) {
        if (Date.now() > last) throw new Error(`no point at ${to} from ${a.http}: ${JSON.stringify(await read(a, 8))}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    // the truth: responses binned into the app's windows, each window's count spread over the 2 s after its end
    const count = windows.map((w) => served.filter((t) => t > w.start && t <= w.end).length);
    // window k's part of the agent window [a, b) when the agent reads it `delay` ms after the app closed it
    const part = (k: number, a: number, b: number, delay: number) => {
      const w = windows[k] as { start: number; end: number };
      const len = w.end - w.start;
      const o = Math.min(b, w.end + delay + len) - Math.max(a, w.end + delay);
      return o > 0 ? ((count[k] as number) * o) / len : 0;
    };
    // the agent spreads a window from when it reads it: on a busy machine that is up to a few hundred ms
    // after the app sent it. Each point's truth is a band: every window read at once, or up to 400 ms late
    const DELAYS = [0, 100, 200, 300, 400];
    const truth = (agentMs: number, step: number) => {
      const out: Array<{ at: number; lo: number; hi: number }> = [];
      for (let e = from + step * 1000; e <= to; e += step * 1000) {
        let at = 0;
        let lo = 0;
        let hi = 0;
        for (const k of windows.keys()) {
          // each agent window's amount, shared evenly by the steps it covers
          const inStep = (delay: number) => {
            let n = 0;
            for (let w = Math.floor((e - step * 1000) / agentMs) * agentMs; w < e; w += agentMs) {
              const o = Math.min(e, w + agentMs) - Math.max(e - step * 1000, w);
              if (o > 0) n += (part(k, w, w + agentMs, delay) * o) / agentMs;
            }
            return n;
          };
          const ns = DELAYS.map(inStep);
          at += ns[0] as number;
          lo += Math.min(...ns);
          hi += Math.max(...ns);
        }
        out.push({ at: at / step, lo: lo / step, hi: hi / step });
      }
      return out;
    };
    const inRange = served.filter((t) => t > from - 2000 && t <= to - 2000).length;
    const table: string[] = [
      `sent ${sent}, answered ${answered}, served ${served.length}; served in the range (one app window earlier): ${(inRange / 16).toFixed(2)}/s`,
    ];
    const failures: string[] = [];
    for (const [a, agentMs] of [
      [agents[0] as AgentProcess, 1000],
      [agents[1] as AgentProcess, 4000],
    ] as const) {
      for (const step of [1, 2, 4, 8]) {
        const values = await read(a, step);
        const want = truth(agentMs, step);
        const nums = values.filter((v): v is number => v !== null);
        let worst = 0;
        let worstAt = 0;
        for (const [i, v] of values.entries()) {
          const w = want[i] as { at: number; lo: number; hi: number };
          if (v === null) failures.push(`agent ${agentMs / 1000} s, step ${step} s: a null at point ${i}`);
          else {
            // how far off the served rate: 0 inside the band the agent's read delay allows
            const off = v < w.lo ? (w.lo - v) / w.lo : v > w.hi ? (v - w.hi) / w.hi : 0;
            worst = Math.max(worst, off);
            worstAt = Math.max(worstAt, Math.abs(v - w.at) / w.at);
            if (off > 0.05)
              failures.push(
                `agent ${agentMs / 1000} s, step ${step} s, point ${i}: ${v.toFixed(3)}, served ${w.at.toFixed(3)} (${w.lo.toFixed(3)}–${w.hi.toFixed(3)} read up to 400 ms late)`,
              );
          }
        }
        if (values.length !== 16 / step) failures.push(`agent ${agentMs / 1000} s, step ${step} s: ${values.length} points`);
        table.push(
          `agent ${agentMs / 1000} s, step ${step} s: ${values.length} points, nulls ${values.length - nums.length}, min ${Math.min(...nums).toFixed(2)}, max ${Math.max(...nums).toFixed(2)}, ${(worstAt * 100).toFixed(2)} % off the served rate read at once, ${(worst * 100).toFixed(2)} % outside its band`,
        );
      }
    }
    process.stdout.write(`# wall clock, 2 s app windows\n${table.map((l) => `#   ${l}`).join('\n')}\n`);
    assert.deepEqual(failures, []);
  } finally {
    app.kill('SIGKILL');
    await Promise.all(agents.map((a) => a.stop()));
  }
});
