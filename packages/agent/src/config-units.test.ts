import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type AgentConfig, ConfigError, loadConfig } from './config.js';

const load = (argv: string[], env: NodeJS.ProcessEnv = {}) => loadConfig(argv, env) as AgentConfig;
const refused = (argv: string[], re: RegExp) =>
  assert.throws(
    () => load(argv),
    (e: unknown) => e instanceof ConfigError && re.test(e.message),
  );

test('durations and sizes read as the library reads them: a bare number is seconds, sizes take k/m/g', () => {
  assert.equal(load(['--flush-interval', '10']).flushInterval, 10_000);
  assert.equal(load([], { EKG_AGENT_FLUSH_INTERVAL: '5' }).flushInterval, 5_000);
  assert.equal(load(['--recv-buffer', '8m']).recvBuffer, 8 << 20);
  assert.equal(load(['--recv-buffer', '4194304']).recvBuffer, 4 << 20);
  assert.equal(load(['--store-max-size', '2g']).storeMaxBytes, 2 ** 31);
  refused(['--recv-buffer', '1k'], /recv-buffer: 1024 is under the minimum of 4k/);
  // a size Node cannot pass to the kernel was a raw RangeError at start (EKG_AGENT_ERR_START)
  refused(['--recv-buffer', '1t'], /recv-buffer: 1099511627776 is over the maximum of 1g/);
  assert.equal(load(['--recv-buffer', '1g']).recvBuffer, 2 ** 30);
  refused(['--recv-buffer', 'lots'], /recv-buffer: "lots" is not a size such as 64k/);
  refused(['--flush-interval', 'soon'], /flush-interval: "soon" is not a duration such as 500ms/);
});

test('retention: raw keeps at least an hour, and each rollup at least as long as the resolution below it', () => {
  const r = load(['--retention-raw', '2d', '--retention-1m', '30d']).retention;
  assert.deepEqual(r, { raw: 2 * 86_400_000, m1: 30 * 86_400_000, h1: 365 * 86_400_000 });
  refused(['--retention-raw', '2'], /retention-raw: "2" is too short/);
  refused(['--retention-1m', '1h'], /retention-1m: "1h" is shorter than retention-raw/);
  refused(['--retention-1m', '400d'], /retention-1h: "1y" is shorter than retention-1m \("400d"\)/);
});

test("the query API's step reads durations as everything else does: a bare number is seconds", async () => {
  const { parseStep } = await import('./web/api.js');
  assert.equal(parseStep('10'), 10_000);
  assert.equal(parseStep('10s'), 10_000);
  assert.equal(parseStep('1m'), 60_000);
  assert.equal(parseStep('500'), 500_000);
  assert.throws(() => parseStep('0.5'), /is not a step from 1s to a year/);
});
