import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Agent } from '../agent.js';
import { loadConfig } from '../config.js';
import { HerokuExporter } from './heroku.js';

/**
 * barnes → ekg-agent against barnes → agentmon. test/fixtures/agentmon (copied from the team's shared
 * fixtures, see its README) holds every StatsD datagram the real barnes gem and a burst of hand-made
 * lines sent to the real agentmon (`-interval 5`, started on a 5 s boundary), with arrival times, and
 * every post agentmon made. Here the datagrams go, over real UDP, into a real ekg-agent whose windows
 * close at agentmon's ticks, with a Heroku exporter of agentmon's period; its posts, received by a real
 * HTTP server, are compared with agentmon's field by field. Every difference that is meant is listed
 * in INTENDED (and in docs/migrate-heroku.md); anything else fails.
 */

const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/agentmon/', import.meta.url));
const datagrams = readFileSync(join(FIXTURES, 'statsd-in.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as { t: string; text: string })
  .map((d) => ({ at: Date.parse(d.t), text: d.text }));
interface Post {
  t: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}
const agentmon = readFileSync(join(FIXTURES, 'agentmon-out.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as Post);

interface Body {
  counters?: Record<string, number>;
  gauges?: Record<string, number>;
}

/**
 * What ekg-agent posts differently, on purpose, by series name. `ekg` is what ekg-agent posts (undefined:
 * nothing), `agentmon` what agentmon posted (undefined: nothing), per post (by Measurements-Time).
 */
interface Intended {
  section: 'counters' | 'gauges';
  name: string;
  why: string;
  /** Measurements-Time → [ekg-agent, agentmon] */
  at: Record<string, [number | undefined, number | undefined]>;
}
const B = '2026-12-01T23:58:10Z';
const INTENDED: Intended[] = [
  {
    section: 'counters',
    name: 't.c3',
    why: 'a sample rate applied in float64: 1|@0.1 is 10 (agentmon divides by float32(0.1): 9.99999985)',
    at: { [B]: [10, 9.99999985098839] },
  },
  {
    section: 'gauges',
    name: 't.g1',
    why: "+/- gauges change the last level, as etsy StatsD does (agentmon adds to the previous period's level, or 0: 10, +5, -3 is -3 there; +1 +1 in one period is 1)",
    at: { [B]: [12, -3], '2026-12-01T23:58:20Z': [14, 1], '2026-12-01T23:58:25Z': [15, 2] },
  },
  {
    section: 'gauges',
    name: 't.g3',
    why: 'a sample rate does not scale a gauge (agentmon divides 5|g|@0.5 into 10)',
    at: { [B]: [5, 10] },
  },
  // agentmon drops timers, histograms and distributions: ekg-agent keeps them (count and sum weighted by
  // the sample rate: 100, 200 and 300|@0.5 are 4 samples summing to 900); the percentiles are the sketch's
  ...(
    [
      ['t.t1', 4, 900, 100, 300],
      ['t.h1', 1, 5, 5, 5],
      ['t.d1', 1, 5, 5, 5],
    ] as const
  ).flatMap(([n, count, sum, min, max]): Intended[] => [
    {
      section: 'counters',
      name: `${n}.count`,
      why: 'a timer, histogram or distribution is kept (agentmon drops it)',
      at: { [B]: [count, undefined] },
    },
    { section: 'counters', name: `${n}.sum`, why: 'the same', at: { [B]: [sum, undefined] } },
    { section: 'gauges', name: `${n}.min`, why: 'the same', at: { [B]: [min, undefined] } },
    { section: 'gauges', name: `${n}.max`, why: 'the same', at: { [B]: [max, undefined] } },
    ...['p50', 'p90', 'p95', 'p99', 'p999'].map((q): Intended => ({ section: 'gauges', name: `${n}.${q}`, why: 'the same', at: {} })),
  ]),
  { section: 'gauges', name: 't.s1', why: 'a set is kept as its distinct count (agentmon drops it)', at: { [B]: [2, undefined] } },
  // lines agentmon refuses and ekg-agent reads
  { section: 'counters', name: 'a', why: 'a one-letter name is a name (agentmon wants two characters)', at: { [B]: [1, undefined] } },
  {
    section: 'counters',
    name: 't.tag',
    why: 'DogStatsD tags are read (agentmon refuses the line); Heroku JSON has no tags, so the name alone',
    at: { [B]: [1, undefined] },
  },
  {
    section: 'counters',
    name: 't.c6',
    why: 'an empty counter value counts 1, as etsy StatsD counts it (agentmon refuses the line)',
    at: { [B]: [1, undefined] },
  },
  { section: 'counters', name: 't.c7', why: '1e3 is a number (agentmon reads digits and one dot only)', at: { [B]: [1000, undefined] } },
  {
    section: 'counters',
    name: 't.pack',
    why: 'DogStatsD value packing is read: 1|c:2|c counts 3 (agentmon refuses the line)',
    at: { [B]: [3, undefined] },
  },
  {
    section: 'counters',
    name: 't.crlf',
    why: 'a line ending in CRLF is read (agentmon refuses the stray CR)',
    at: { [B]: [1, undefined] },
  },
  {
    section: 'counters',
    name: 't-slash_name',
    why: 'a name with a slash and a space is sanitised as etsy StatsD does (agentmon refuses the line)',
    at: { [B]: [1, undefined] },
  },
];

const sink: Post[] = [];
let agent: Agent;
let dir: string;
let server: ReturnType<typeof createServer>;

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      sink.push({ t: new Date().toISOString(), method: req.method ?? '', path: req.url ?? '', headers: flat(req.headers), body });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  dir = mkdtempSync(join(tmpdir(), 'ekg-agentmon-'));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/path?x=1`;
  writeFileSync(join(dir, 'agent.yaml'), `exporters:\n  - type: heroku\n    url: ${url}\n    period: 5s\n`);
  const config = loadConfig(
    [
      '--config',
      join(dir, 'agent.yaml'),
      '--statsd',
      'udp://127.0.0.1:0',
      '--http',
      'off',
      '--store',
      'off',
      '--data',
      dir,
      '--flush-interval',
      '5s',
    ],
    {},
  );
  assert.notEqual(config, 'help');
  agent = new Agent(config as Exclude<typeof config, 'help'>, []);
  await agent.start({ timer: false });
});

after(async () => {
  await agent.stop();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

function flat(h: IncomingHttpHeaders): Record<string, string> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), String(v)]));
}

async function until(fn: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("barnes' datagrams through ekg-agent post what agentmon posted, but for the listed differences", { timeout: 60_000 }, async () => {
  // agentmon's ticks: every 5 s from its start, a little before each post (the earliest post sets the offset)
  const first = Date.parse((agentmon[0] as Post).t);
  const offset = Math.min(...agentmon.map((p) => Date.parse(p.t) % 5000));
  const tick0 = first - (first % 5000) + offset;
  const lastAt = Math.max(...datagrams.map((d) => d.at));
  const ticks: number[] = [];
  for (let t = tick0; t <= lastAt + 5000; t += 5000) ticks.push(t);
  // the alignment is unambiguous: no datagram arrived within 50 ms of a tick
  for (const d of datagrams) for (const t of ticks) assert.ok(Math.abs(d.at - t) > 50, `a datagram at ${new Date(d.at).toISOString()}`);

  const udp = dgram.createSocket('udp4');
  const port = agent.addresses().udp as number;
  // the window before the first tick, closed at the time of the recording
  agent.flush(tick0 - 5000);
  let sent = 0;
  for (const tick of ticks) {
    for (const d of datagrams.filter((x) => x.at < tick && x.at >= tick - 5000)) {
      await new Promise<void>((r) => udp.send(d.text, port, '127.0.0.1', () => r()));
      sent++;
      // acknowledged by the agent's own count, so no datagram is lost or late for its window
      await until(() => agent.self.packets_received >= sent, 'the datagram');
    }
    agent.flush(tick);
  }
  udp.close();
  assert.equal(sent, datagrams.length);
  await until(() => sink.length >= agentmon.length, `${agentmon.length} posts`);
  await new Promise((r) => setImmediate(r));

  // one post per agentmon post, at the same whole-second Measurements-Time, in the same order
  assert.deepEqual(
    sink.map((p) => p.headers['measurements-time']),
    agentmon.map((p) => p.headers['Measurements-Time']),
  );
  const seen = new Set<string>();
  for (let i = 0; i < agentmon.length; i++) {
    const a = agentmon[i] as Post;
    const e = sink[i] as Post;
    const time = a.headers['Measurements-Time'] as string;
    assert.equal(e.method, a.method);
    assert.equal(e.path, a.path, 'the query string is kept');
    assert.equal(e.headers['content-type'], a.headers['Content-Type']);
    assert.equal(Number(e.headers['content-length']), Buffer.byteLength(e.body));
    assert.ok(e.body.endsWith('}\n'), "a newline after the JSON, as Go's json.Encoder writes it");
    const ab = JSON.parse(a.body) as Body;
    const eb = JSON.parse(e.body) as Body;
    assert.equal(Number(e.headers['measurements-count']), Object.keys(eb.counters ?? {}).length + Object.keys(eb.gauges ?? {}).length);
    // body shape: the same sections, in the same order (an empty one left out)
    assert.deepEqual(Object.keys(eb), Object.keys(ab), `${time}: sections`);
    for (const section of ['counters', 'gauges'] as const) {
      const an = ab[section] ?? {};
      const en = eb[section] ?? {};
      // keys in byte order, as Go writes a map
      assert.deepEqual(Object.keys(en), Object.keys(en).sort(), `${time}: ${section} in order`);
      for (const name of new Set([...Object.keys(an), ...Object.keys(en)])) {
        const intended = INTENDED.find((d) => d.section === section && d.name === name);
        if (intended) {
          seen.add(name);
          const want = intended.at[time];
          if (want) assert.deepEqual([en[name], an[name]], want, `${time} ${section}.${name}: ${intended.why}`);
          else assert.equal(an[name], undefined, `${time} ${section}.${name}: agentmon posted none`);
          continue;
        }
        assert.ok(name in en, `${time}: ${section}.${name} is missing from ekg-agent's post`);
        assert.ok(name in an, `${time}: ${section}.${name} = ${en[name]} is posted by ekg-agent only`);
        const x = en[name] as number;
        const y = an[name] as number;
        // barnes sends its counters at @0.0333…, which agentmon applies in float32: a relative 2e-8
        if (section === 'counters' && name.startsWith('Rack.'))
          assert.ok(Math.abs(x - y) <= Math.abs(y) * 1e-7, `${time} ${name}: ${x} vs ${y}`);
        else assert.equal(x, y, `${time} ${section}.${name}`);
      }
    }
    // the count agentmon sends equals ours where the names are the same
    const extra = INTENDED.filter((d) => d.name in (eb[d.section] ?? {}) && !(d.name in (ab[d.section] ?? {}))).length;
    const missing = INTENDED.filter((d) => !(d.name in (eb[d.section] ?? {})) && d.name in (ab[d.section] ?? {})).length;
    assert.equal(Number(e.headers['measurements-count']) - extra + missing, Number(a.headers['Measurements-Count']), `${time}: count`);
  }
  // barnes' GC.count and GC.minor_gc_count, sent as a counter and as a gauge, are both kept (agentmon keeps both)
  assert.equal(agent.self.dropped_type_clash, 0);
  for (const n of ['Rack.Server.All.GC.count', 'Rack.Server.All.GC.minor_gc_count'])
    assert.ok(
      sink.some((p) => n in ((JSON.parse(p.body) as Body).counters ?? {})) &&
        sink.some((p) => n in ((JSON.parse(p.body) as Body).gauges ?? {})),
      n,
    );
  // every listed difference showed up: the list is not stale
  for (const d of INTENDED) if (Object.keys(d.at).length > 0) assert.ok(seen.has(d.name), `${d.name} listed but never seen`);
});

test("the Heroku exporter's period is Heroku's cadence: METRICS_INTERVAL_OVERRIDE in ms with a 10 s floor, else 20 s; YAML wins", () => {
  const before = process.env.METRICS_INTERVAL_OVERRIDE;
  const period = (v: string | undefined, yaml?: number) => {
    if (v === undefined) delete process.env.METRICS_INTERVAL_OVERRIDE;
    else process.env.METRICS_INTERVAL_OVERRIDE = v;
    return new HerokuExporter({ url: 'http://127.0.0.1:1/x', period: yaml }).period;
  };
  try {
    assert.equal(period(undefined), 20_000);
    assert.equal(period('30000'), 30_000);
    assert.equal(period('5000'), 10_000);
    assert.equal(period('soon'), 20_000);
    assert.equal(period('30000', 5000), 5000);
  } finally {
    if (before === undefined) delete process.env.METRICS_INTERVAL_OVERRIDE;
    else process.env.METRICS_INTERVAL_OVERRIDE = before;
  }
});
