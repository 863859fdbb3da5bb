import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadConfig } from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'ekg-agent-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

test('a YAML config file, overridden by env vars, overridden by flags', () => {
  const p = file(
    'ok.yaml',
    'statsd: 0.0.0.0:9125\nhttp: 127.0.0.1:9787\nflush_interval: 5s\nmax_series: 5000\nscrape:\n  - http://a:1/ops/stats\n  - http://b:2/metrics\n',
  );
  const c = loadConfig(['--config', p]);
  assert.ok(c !== 'help');
  assert.deepEqual(c.statsdUdp, { host: '0.0.0.0', port: 9125 });
  assert.equal(c.flushInterval, 5000);
  assert.equal(c.maxSeries, 5000);
  assert.deepEqual(
    c.scrape.map((t) => [t.url, t.format, t.heartbeat, t.interval]),
    [
      ['http://a:1/ops/stats', 'json', 'http://a:1/ops/heartbeat', 10_000],
      ['http://b:2/metrics', 'prometheus', 'http://b:2/heartbeat', 10_000],
    ],
  );
  const e = loadConfig(['--config', p], { EKG_AGENT_FLUSH_INTERVAL: '20s' });
  assert.ok(e !== 'help');
  assert.equal(e.flushInterval, 20_000);
  const f = loadConfig([`--config=${p}`, '--flush-interval', '1m'], { EKG_AGENT_FLUSH_INTERVAL: '20s' });
  assert.ok(f !== 'help');
  assert.equal(f.flushInterval, 60_000);
  const viaEnv = loadConfig([], { EKG_AGENT_CONFIG: p });
  assert.ok(viaEnv !== 'help');
  assert.equal(viaEnv.maxSeries, 5000);
});

test('a bad file is refused at start, naming the line and the field', () => {
  assert.throws(
    () => loadConfig(['--config', file('unknown.yaml', 'statsd: 8125\n\nflushinterval: 10s\n')]),
    /unknown\.yaml:3: unknown field "flushinterval"/,
  );
  assert.throws(
    () => loadConfig(['--config', file('badval.yaml', 'http: 8787\nflush_interval: soon\n')]),
    /badval\.yaml:2: flush-interval: "soon" is not a duration/,
  );
  assert.throws(
    () => loadConfig(['--config', file('type.yaml', 'statsd: 8125\nconsole:\n  a: b\n')]),
    /type\.yaml:2: field "console" must be a string or a number/,
  );
  assert.throws(
    () => loadConfig(['--config', file('scrape.yaml', 'scrape: http://x/stats\n')]),
    /scrape\.yaml:1: field "scrape" must be a list of URLs/,
  );
  assert.throws(
    () => loadConfig(['--config', file('scrape2.yaml', 'scrape:\n  - url: http://x/stats\n    every: 5s\n')]),
    /scrape2\.yaml:3: unknown field "scrape\[0\]\.every"; known: url, interval/,
  );
  assert.throws(
    () => loadConfig(['--config', file('scrape3.yaml', 'scrape:\n  - http://a/stats\n  - url: http://x/stats\n    interval: often\n')]),
    /scrape3\.yaml:4: scrape\[1\]\.interval: "often" is not a duration/,
  );
  assert.throws(
    () => loadConfig(['--config', file('scrape4.yaml', 'scrape:\n  - interval: 5s\n')]),
    /scrape4\.yaml:2: field "scrape\[0\]\.url" is missing/,
  );
  assert.throws(() => loadConfig(['--config', file('syntax.yaml', 'statsd: [8125\nhttp: 1\n')]), /syntax\.yaml:\d+: not valid YAML/);
  assert.throws(() => loadConfig(['--config', join(dir, 'missing.yaml')]), /missing\.yaml: cannot read/);
  const empty = loadConfig(['--config', file('empty.yaml', '')]);
  assert.ok(empty !== 'help');
  assert.equal(empty.flushInterval, 10_000);
});

test('each scrape target may carry its own interval, timeout, format and probe; flags replace the list', () => {
  const p = file(
    'targets.yaml',
    [
      'scrape_interval: 30s',
      'scrape:',
      '  - http://a:1/ops/stats',
      '  - url: http://b:2/metrics',
      '    interval: 1m',
      '    timeout: 2s',
      '    heartbeat: /ops/ready',
      '  - url: http://c:3/custom.json',
      '    heartbeat: false',
      '  - url: http://d:4/x/vars',
      '    format: prometheus',
      '    heartbeat: ready',
      '',
    ].join('\n'),
  );
  const c = loadConfig(['--config', p]);
  assert.ok(c !== 'help');
  assert.deepEqual(
    c.scrape.map((t) => [t.url, t.format, t.heartbeat, t.interval, t.timeout]),
    [
      ['http://a:1/ops/stats', 'json', 'http://a:1/ops/heartbeat', 30_000, 5000],
      ['http://b:2/metrics', 'prometheus', 'http://b:2/ops/ready', 60_000, 2000],
      ['http://c:3/custom.json', 'json', undefined, 30_000, 5000],
      ['http://d:4/x/vars', 'prometheus', 'http://d:4/x/ready', 30_000, 5000],
    ],
  );
  const flags = loadConfig(['--config', p, '--scrape', 'http://e:5/ops/stats']);
  assert.ok(flags !== 'help');
  assert.deepEqual(
    flags.scrape.map((t) => t.url),
    ['http://e:5/ops/stats'],
  );
});

test('exporters in the file: each checked, secrets refused in clear, HEROKU_METRICS_URL adds a Heroku exporter', () => {
  const good = file(
    'exp.yaml',
    'exporters:\n  - type: mackerel\n    service: shop\n    api_key_file: /run/key\n  - type: graphite\n    address: 127.0.0.1:2003\n    spool_max_bytes: 16m\n  - type: otlp\n    url: http://127.0.0.1:4318/v1/metrics\n    headers:\n      x-tenant: a\n',
  );
  const c = loadConfig(['--config', good], {});
  assert.ok(c !== 'help');
  assert.deepEqual(
    c.exporters.map((e) => e.type),
    ['mackerel', 'graphite', 'otlp'],
  );
  assert.equal((c.exporters[1] as { spool_max_bytes?: number }).spool_max_bytes, 16 << 20);
  assert.deepEqual((c.exporters[2] as { headers?: object }).headers, { 'x-tenant': 'a' });
  const withHeroku = loadConfig(['--config', good], { HEROKU_METRICS_URL: 'https://metrics.example/ingest?t=1' });
  assert.ok(withHeroku !== 'help');
  assert.equal(withHeroku.exporters.at(-1)?.type, 'heroku');
  const bad: Array<[string, RegExp]> = [
    ['exporters:\n  - type: graphite\n    adress: x:1\n', /:3: unknown field "exporters\[0\]\.adress" for graphite/],
    [
      'exporters:\n  - type: mackerel\n    service: a\n    api_key: secret\n',
      /:4: field "exporters\[0\]\.api_key": secrets are not read from the file/,
    ],
    ['exporters:\n  - type: mackerel\n    api_key_env: K\n', /mackerel needs exactly one of service/],
    ['exporters:\n  - type: statsd\n', /:2: field "exporters\[0\]\.type": "statsd" must be one of/],
    ['exporters:\n  - type: influx\n', /field "exporters\[0\]\.url" is missing/],
    ['exporters:\n  - type: graphite\n    address: nohost\n', /must be HOST:PORT/],
    ['exporters:\n  - type: heroku\n    url: ftp://x\n', /must be an http/],
    [
      'exporters:\n  - type: graphite\n    address: a:1\n    spool_max_bytes: lots\n',
      /:4: exporters\[0\]\.spool_max_bytes: "lots" is not a size/,
    ],
  ];
  for (const [text, re] of bad) assert.throws(() => loadConfig(['--config', file('bad-exp.yaml', text)], {}), re, text);
});
