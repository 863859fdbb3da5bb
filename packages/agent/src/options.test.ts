import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { HELP, loadConfig } from './config.js';
import { boundsText, docWithTable, envName, FLAGS, numberOf, OPTIONS, type OptionSpec, yamlKey } from './options.js';

test('docs/agent-config.md carries the table made from the option table', () => {
  const page = readFileSync(new URL('../../../docs/agent-config.md', import.meta.url), 'utf8');
  assert.equal(page, docWithTable(page), 'docs/agent-config.md is stale: run `npm run docs`');
});

test('every option of the table is in --help, and every flag and env var of --help is an option', () => {
  for (const f of FLAGS) assert.match(HELP, new RegExp(`--${f} `), f);
  for (const m of HELP.matchAll(/^ {2}--([a-z0-9-]+)/gm)) {
    const name = m[1] as string;
    assert.ok(['config', 'help', 'version'].includes(name) || (FLAGS as readonly string[]).includes(name), name);
  }
});

/** A value each option takes, in its shortest form, and what the config then holds. */
const SHORTEST: Record<string, [string, (c: Exclude<ReturnType<typeof loadConfig>, 'help'>) => unknown, unknown]> = {
  statsd: ['9125', (c) => c.statsdUdp?.port, 9125],
  'statsd-unix': ['/tmp/x.sock', (c) => c.statsdUnix, '/tmp/x.sock'],
  http: ['9787', (c) => c.http?.port, 9787],
  data: ['d', (c) => c.data, 'd'],
  'flush-interval': ['5', (c) => c.flushInterval, 5000],
  'recv-buffer': ['1m', (c) => c.recvBuffer, 1 << 20],
  'max-series': ['7', (c) => c.maxSeries, 7],
  'statsd-max-connections': ['3', (c) => c.statsdMaxConnections, 3],
  'http-max-connections': ['200', (c) => c.httpMaxConnections, 200],
  'statsd-idle-timeout': ['0', (c) => c.statsdIdleTimeout, 0],
  'set-max-members': ['9', (c) => c.setMaxMembers, 9],
  'set-max-bytes': ['2k', (c) => c.setMaxBytes, 2048],
  console: ['off', (c) => c.console, 'off'],
  scrape: ['http://a/stats', (c) => c.scrape.map((t) => t.url), ['http://a/stats']],
  'scrape-interval': ['30', (c) => c.scrape[0]?.interval, 30_000],
  'scrape-timeout': ['2', (c) => c.scrape[0]?.timeout, 2000],
  store: ['off', (c) => c.store, 'off'],
  'store-url': ['http://v:8428', (c) => c.storeUrl, 'http://v:8428/'],
  'retention-raw': ['2h', (c) => c.retention.raw, 7_200_000],
  'retention-1m': ['30d', (c) => c.retention.m1, 30 * 86_400_000],
  'retention-1h': ['2y', (c) => c.retention.h1, 2 * 365 * 86_400_000],
  'instance-retention': ['10m', (c) => c.instanceRetention, 600_000],
  'store-max-size': ['2g', (c) => c.storeMaxBytes, 2 * 1024 ** 3],
  'query-max-points': ['5', (c) => c.queryMaxPoints, 5],
  'query-timeout': ['3', (c) => c.queryTimeout, 3000],
  'remote-write': ['http://r/w', (c) => c.remoteWrite, ['http://r/w']],
};

test('every option works as a flag, an env var and a YAML key, in its shortest form', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ekg-options-'));
  const token = join(dir, 'token');
  writeFileSync(token, 'secret-token-1\n');
  const cases = { ...SHORTEST, 'token-file': [token, (c) => c.token, 'secret-token-1'] } as typeof SHORTEST;
  for (const o of OPTIONS) {
    if ('yamlOnly' in o) continue;
    const c = cases[o.name];
    assert.ok(c, `no test value for ${o.name}`);
    const [value, read, want] = c;
    // scrape-interval and -timeout need a target to show on
    const base = o.name.startsWith('scrape-') ? ['--scrape', 'http://a/stats'] : [];
    const viaFlag = loadConfig([...base, `--${o.name}`, value], {});
    assert.ok(viaFlag !== 'help');
    assert.deepEqual(read(viaFlag), want, `--${o.name} ${value}`);
    const viaEnv = loadConfig(base, { [envName(o.name)]: value });
    assert.ok(viaEnv !== 'help');
    assert.deepEqual(read(viaEnv), want, `${envName(o.name)}=${value}`);
    const file = join(dir, `${o.name}.yaml`);
    writeFileSync(file, `${yamlKey(o.name)}: ${o.name === 'scrape' || o.name === 'remote-write' ? `[${value}]` : value}\n`);
    const viaFile = loadConfig([...base, '--config', file], {});
    assert.ok(viaFile !== 'help');
    assert.deepEqual(read(viaFile), want, `${yamlKey(o.name)}: ${value}`);
  }
});

test('a bad value names the option, where it came from and the forms it takes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ekg-options-'));
  const file = join(dir, 'a.yaml');
  writeFileSync(file, 'data: x\nflush_interval: soon\n');
  assert.throws(() => loadConfig(['--config', file], {}), /a\.yaml:2: flush-interval: "soon" is not .*at least 100ms/);
  assert.throws(() => loadConfig([], { EKG_AGENT_RECV_BUFFER: 'big' }), /: EKG_AGENT_RECV_BUFFER: "big" is not a size such as 64k/);
  assert.throws(() => loadConfig(['--console', 'loud'], {}), /--console: "loud" must be off, summary or verbose/);
  assert.throws(() => loadConfig(['--store-url', 'nope'], {}), /--store-url: "nope" is not a URL; the forms are http:\/\//);
  assert.throws(() => loadConfig(['--max-series'], {}), /--max-series needs a value: N, a whole number ≥ 1/);
  assert.throws(() => loadConfig(['--http', 'x:y:z'], {}), /--http: "x:y:z" .*PORT, :PORT, HOST:PORT, \[IPv6\]:PORT or off/);
});

test('--help and the docs state the bounds an option checks, and the check holds at them', () => {
  const help = HELP.replace(/\n {27}/g, ' ');
  assert.match(help, /--recv-buffer SIZE +UDP receive buffer; .*\(from 4k to 1g; default 8m\)/);
  for (const o of OPTIONS as readonly OptionSpec[]) {
    if (o.min === undefined && o.max === undefined) continue;
    assert.match(help, new RegExp(`--${o.name} [^\\n]*${boundsText(o)}`), o.name);
    const flag = `--${o.name}`;
    if (o.min !== undefined) {
      assert.ok(loadConfig([flag, o.min], {}) !== 'help', `${flag} ${o.min}`);
      assert.throws(() => loadConfig([flag, `${numberOf(o.name as never, o.min) - 1}`], {}), new RegExp(`under the minimum of ${o.min}`));
    }
    if (o.max !== undefined) {
      assert.ok(loadConfig([flag, o.max], {}) !== 'help', `${flag} ${o.max}`);
      assert.throws(() => loadConfig([flag, `${numberOf(o.name as never, o.max) + 1}`], {}), new RegExp(`over the maximum of ${o.max}`));
    }
  }
  assert.throws(() => loadConfig(['--recv-buffer', '2g'], {}), /--recv-buffer: 2147483648 is over the maximum of 1g/);
});
