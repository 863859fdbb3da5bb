import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Agent } from '../agent.js';
import { loadConfig } from '../config.js';
import { until } from '../testing/bin.js';
import { PushError, parsePush } from './push.js';
import { MAX_LINE, parseLine } from './statsd-parse.js';

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const SEEDS = [
  'a.b:1|c',
  'g:+3|g',
  't:12.5|ms|@0.25',
  'd:1:2:3|d|#a:b,c:d',
  's:x|s',
  'r:1|c|#env:prod|T1700000000',
  '_e{3,3}:abc|def',
  '_sc|up|0|#a:b',
  'h:7|h',
];
const ALPHABET = 'abcxyz019.:|@#,+-_eETs{}\\ /\t*\u00e9\u2603';

test('StatsD parser: a million random and mutated lines — no throw, no hang, every line answered', () => {
  const rand = lcg(20261122);
  let lines = 0;
  let bad = 0;
  let good = 0;
  const sink = {
    sample: () => {
      good++;
    },
    bad: () => {
      bad++;
    },
    event: () => {
      good++;
    },
    serviceCheck: () => {
      good++;
    },
  };
  while (lines < 1_000_000) {
    let line: string;
    if (rand() < 0.5) {
      // mutate a valid line: flip, insert, delete or duplicate characters
      const chars = [...(SEEDS[Math.floor(rand() * SEEDS.length)] as string)];
      const edits = 1 + Math.floor(rand() * 4);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(rand() * (chars.length + 1));
        const c = ALPHABET[Math.floor(rand() * ALPHABET.length)] as string;
        const op = rand();
        if (op < 0.33) chars.splice(at, 1);
        else if (op < 0.66) chars.splice(at, 0, c);
        else chars[at] = c;
      }
      line = chars.join('');
    } else {
      const n = Math.floor(rand() * 40);
      line = Array.from({ length: n }, () => ALPHABET[Math.floor(rand() * ALPHABET.length)]).join('');
    }
    const before = good + bad;
    parseLine(line, sink);
    // every non-empty line gives at least one answer: a sample, an event, a check, or a counted bad line
    if (line.length > 0 && good + bad === before) assert.fail(`no answer for ${JSON.stringify(line)}`);
    lines++;
  }
  assert.ok(bad > 100_000 && good > 100_000, `good ${good} bad ${bad}`);
});

test('push parser: random bodies either parse or are refused with a 4xx PushError', () => {
  const rand = lcg(7);
  const parts = [
    '{',
    '}',
    '"counters"',
    '"gauges"',
    ':',
    ',',
    '1',
    '-2.5e3',
    '"x"',
    'null',
    '[',
    ']',
    '"a.b"',
    'true',
    '1e999',
    '"\\u0000"',
  ];
  let ok = 0;
  let refused = 0;
  for (let i = 0; i < 200_000; i++) {
    const body = Array.from({ length: Math.floor(rand() * 12) }, () => parts[Math.floor(rand() * parts.length)]).join('');
    try {
      parsePush(body, { service: 's' });
      ok++;
    } catch (err) {
      assert.ok(err instanceof PushError && err.status >= 400 && err.status < 500, String(err));
      refused++;
    }
  }
  assert.ok(refused > 0 && ok > 0, `ok ${ok} refused ${refused}`);
});

test('StatsD listeners under random hostile traffic: every budget trips, is counted exactly, and the agent keeps answering', {
  timeout: 120_000,
}, async () => {
  const rand = lcg(14);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)] as T;
  const dir = mkdtempSync(join(tmpdir(), 'ekg-fuzz-'));
  const sockPath = join(dir, 'statsd.sock');
  const start = async (...flags: string[]) => {
    const c = loadConfig(
      ['--statsd', '127.0.0.1:0', '--statsd-unix', sockPath, '--http', '127.0.0.1:0', '--store', 'off', '--console', 'off', ...flags],
      {},
    );
    assert.ok(c !== 'help');
    const a = new Agent(c, []);
    await a.start({ timer: false });
    const { tcp, udp, http } = a.addresses() as { tcp: number; udp: number; http: number };
    return { a, udp, target: () => (rand() < 0.5 ? { port: tcp, host: '127.0.0.1' } : { path: sockPath }), http };
  };
  const heartbeat = async (http: number) => (await fetch(`http://127.0.0.1:${http}/heartbeat`)).status;
  // connections: a short idle timeout (an agent of its own, so that the line rounds below are never cut by it)
  let { a: agent, target, http } = await start('--statsd-max-connections', '8', '--statsd-idle-timeout', '200ms');
  try {
    // 1. more connections than the cap, all silent: the excess is closed at once, the rest when idle
    const closed: Array<Promise<unknown>> = [];
    for (let i = 0; i < 24; i++) {
      const s = net.connect(target());
      s.on('error', () => {});
      closed.push(new Promise((r) => s.once('close', r)));
    }
    await Promise.all(closed);
    assert.ok(agent.self.statsd_connections_refused > 0, 'connections over the cap were refused');
    assert.ok(agent.self.statsd_connections_idle_closed > 0, 'silent connections were closed');
    assert.equal(agent.self.statsd_connections_refused + agent.self.statsd_connections_idle_closed, 24);
    assert.equal(await heartbeat(http), 200);
    await agent.stop();

    // lines: the set caps small, connections one at a time (so none is refused and every line is accounted for)
    const next = await start('--set-max-members', '50', '--set-max-bytes', '2k');
    agent = next.a;
    target = next.target;
    http = next.http;
    const udp = next.udp;
    // 2. rounds of random lines, over-long lines and big set members, split at random points
    let longLines = 0;
    for (let round = 0; round < 150; round++) {
      const parts: string[] = [];
      for (let n = Math.floor(rand() * 30); n > 0; n--) {
        const r = rand();
        if (r < 0.1) {
          // an over-long line: its tail must never be read as a line of its own
          longLines++;
          parts.push(`${'q'.repeat(MAX_LINE + Math.floor(rand() * 3 * MAX_LINE))}LONGTAIL.${round}:1|c`);
        } else if (r < 0.35) {
          const size = 1 + Math.floor(rand() * 1500);
          parts.push(`fuzz.set.${Math.floor(rand() * 3)}:${String(Math.floor(rand() * 1e9)).padEnd(size, pick(['m', 'n', 'é']))}|s`);
        } else {
          const chars = [...pick(SEEDS)];
          for (let e = Math.floor(rand() * 3); e > 0; e--) chars.splice(Math.floor(rand() * chars.length), 1, pick([...ALPHABET]));
          parts.push(chars.join('').replace(/\n/g, ''));
        }
      }
      const text = `${parts.join('\n')}\n`;
      const s = net.connect(target());
      s.on('error', () => {});
      const done = new Promise((r) => s.once('close', r));
      await new Promise((r) => s.once('connect', r));
      // chunks of random sizes, each its own write
      for (let at = 0; at < text.length; ) {
        const n = 1 + Math.floor(rand() * 20_000);
        s.write(text.slice(at, at + n));
        at += n;
      }
      s.end();
      await done;
    }
    // 3. random UDP datagrams up to 60 KB
    const u = dgram.createSocket('udp4');
    for (let i = 0; i < 200; i++) {
      const body = Array.from({ length: 1 + Math.floor(rand() * 60_000) }, () => pick([...ALPHABET, '\n'])).join('');
      await new Promise<void>((r) => u.send(body, udp, '127.0.0.1', () => r()));
    }
    u.close();
    await until(() => agent.self.statsd_connections_open === 0, 'the connections to close');
    const w = agent.flush();
    assert.equal(agent.self.bad_lines_by_reason.too_long, longLines, 'each over-long line counted once');
    assert.deepEqual(
      w.series.filter((x) => x.name.includes('LONGTAIL')).map((x) => x.name),
      [],
      'no tail of an over-long line became a series',
    );
    for (const x of w.series.filter((x) => x.kind === 'set')) assert.ok(x.value <= 50, `${x.name}: ${x.value} members`);
    assert.ok(agent.self.dropped_set_members > 0, 'the set caps tripped');
    assert.equal(await heartbeat(http), 200);
  } finally {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
