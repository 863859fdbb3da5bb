import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type BadReason, MAX_NAME, MAX_TAGS, parsePacket, type Sample, type StatsdEvent } from './statsd-parse.js';

function parse(text: string) {
  const samples: Sample[] = [];
  const bad: Array<[BadReason, string]> = [];
  const events: StatsdEvent[] = [];
  const checks: Array<[string, number, string]> = [];
  parsePacket(text, {
    sample: (s) => samples.push({ ...s }),
    bad: (r, l) => bad.push([r, l]),
    event: (t) => events.push(t),
    serviceCheck: (n, s, t) => checks.push([n, s, t]),
  });
  return { samples, bad, events, checks };
}

test('the etsy grammar: c, g, ms, h, s, sample rates, several lines and several values per key', () => {
  const { samples, bad } = parse('a:1|c\nb:2.5|g\nc:320|ms|@0.1\nd:7|h\ne:user1|s\nf:1|c:2|c:10|ms\ng:|c\n');
  assert.deepEqual(bad, []);
  assert.deepEqual(
    samples.map((s) => [s.name, s.type, s.value, s.weight, s.member ?? null]),
    [
      ['a', 'c', 1, 1, null],
      ['b', 'g', 2.5, 1, null],
      ['c', 'ms', 320, 10, null],
      ['d', 'h', 7, 1, null],
      ['e', 's', 1, 1, 'user1'],
      ['f', 'c', 1, 1, null],
      ['f', 'c', 2, 1, null],
      ['f', 'ms', 10, 1, null],
      ['g', 'c', 1, 1, null],
    ],
  );
});

test('gauges with + and - are deltas; a plain negative-less value is absolute', () => {
  const { samples } = parse('g:+5|g\ng:-3|g\ng:4|g');
  assert.deepEqual(
    samples.map((s) => [s.value, s.delta ?? false]),
    [
      [5, true],
      [-3, true],
      [4, false],
    ],
  );
});

test('DogStatsD: d, tags sorted, value packing, timestamps, events and service checks', () => {
  const { samples, bad, events, checks } = parse(
    'lat:1:2:3|d|#b:2,a:1\nreq:1|c|@0.5|#env:prod|T1700000000\n_e{5,4}:title|text|#x:y\n_sc|db.up|2|#env:prod|m:down\n',
  );
  assert.deepEqual(bad, []);
  assert.deepEqual(
    samples.map((s) => [s.name, s.type, s.value, s.tags, s.weight]),
    [
      ['lat', 'd', 1, 'a:1,b:2', 1],
      ['lat', 'd', 2, 'a:1,b:2', 1],
      ['lat', 'd', 3, 'a:1,b:2', 1],
      ['req', 'c', 1, 'env:prod', 2],
    ],
  );
  assert.deepEqual(events, [{ title: 'title', text: 'text', tags: 'x:y' }]);
  assert.deepEqual(checks, [['db.up', 2, 'env:prod']]);
});

test('key sanitising as etsy does it: spaces to _, / to -, others dropped', () => {
  const { samples } = parse('my key/with$odd*chars:1|c');
  assert.equal(samples[0]?.name, 'my_key-withoddchars');
});

test('bad lines are counted by reason and never stop the rest of the packet', () => {
  const { samples, bad } = parse(
    [
      'nocolon',
      ':1|c',
      'a:1',
      'a:1|x',
      'a:abc|c',
      'a:1|c|@2',
      'a:1|c|@0',
      'a:1|c|#',
      'a:1|c|Tsoon',
      '_e{99,1}:x|y',
      '_sc|x|9',
      'ok:1|c',
      `${'k'.repeat(9000)}:1|c`,
      'a:|g',
      'a:Infinity|g',
      'a:1e999|g',
    ].join('\n'),
  );
  assert.deepEqual(
    samples.map((s) => s.name),
    ['ok'],
  );
  assert.deepEqual(
    bad.map(([r]) => r),
    [
      'no_value',
      'empty_name',
      'bad_type',
      'bad_type',
      'bad_value',
      'bad_sample_rate',
      'bad_sample_rate',
      'bad_tags',
      'bad_timestamp',
      'bad_event',
      'bad_service_check',
      'too_long',
      'no_value',
      'bad_value',
      'bad_value',
    ],
  );
});

test('CRLF line ends and empty lines are tolerated', () => {
  const { samples, bad } = parse('a:1|c\r\n\r\nb:2|c\r\n');
  assert.deepEqual(bad, []);
  assert.equal(samples.length, 2);
});

test('DogStatsD events: lengths in UTF-8 bytes, escaped newlines, date, alert type and tags', () => {
  const title = 'event loop stalled';
  const text = 'blocked for 3017 ms at burnCpu (file:///app/ü.js:6:3)\\nsecond line';
  const line = `_e{${Buffer.byteLength(title)},${Buffer.byteLength(text)}}:${title}|${text}|d:1795000000|t:warning|#service:shop,pid:42`;
  const { events, bad } = parse(line);
  assert.deepEqual(bad, []);
  assert.deepEqual(events, [
    {
      title,
      text: 'blocked for 3017 ms at burnCpu (file:///app/ü.js:6:3)\nsecond line',
      ts: 1795000000,
      alert: 'warning',
      tags: 'pid:42,service:shop',
    },
  ]);
  assert.deepEqual(
    parse('_e{3,2}:abc|de|d:soon').bad.map(([r]) => r),
    ['bad_event'],
  );
});

test('a sample rate whose weight is not finite, and a value the weight would overflow, are refused', () => {
  const { samples, bad } = parse('a:1|c|@5e-324\nb:1|c|@1e-300\nc:1e308|c|@0.5\nd:1e308|d|@0.5|#x:y\ne:1e308|g|@0.5\nf:1e308|c\n');
  assert.deepEqual(
    bad.map(([r]) => r),
    ['bad_sample_rate', 'bad_value', 'bad_value'],
  );
  assert.deepEqual(
    samples.map((s) => [s.name, s.value, s.weight]),
    [
      ['b', 1, 1 / 1e-300],
      ['e', 1e308, 1],
      ['f', 1e308, 1],
    ],
  );
});

test('a name is at most MAX_NAME characters and a tag set at most MAX_TAGS: longer is too_long', () => {
  const long = 'n'.repeat(MAX_NAME + 1);
  const { samples, bad } = parse(
    `${long}:1|c\n${long}:1|c|#a:b\nt:1|c|#a:${'x'.repeat(MAX_TAGS)}\n${'o'.repeat(MAX_NAME)}:1|g\nt:1|c|#a:${'x'.repeat(MAX_TAGS - 2)}\n`,
  );
  assert.deepEqual(
    bad.map(([r, l]) => [r, l.length]),
    [
      ['too_long', 200],
      ['too_long', 200],
      ['too_long', 200],
    ],
  );
  assert.deepEqual(
    samples.map((s) => [s.name.length, s.tags.length]),
    [
      [MAX_NAME, 0],
      [1, MAX_TAGS],
    ],
  );
});
