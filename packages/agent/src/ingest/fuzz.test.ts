import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PushError, parsePush } from './push.js';
import { parseLine } from './statsd-parse.js';

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
  const budgetMs = 20_000;
  const t0 = Date.now();
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
  const ms = Date.now() - t0;
  assert.ok(ms < budgetMs, `1M lines took ${ms} ms`);
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
