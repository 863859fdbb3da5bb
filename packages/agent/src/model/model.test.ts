import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Agent } from '../agent.js';
import { loadConfig } from '../config.js';
import { tagPairs } from '../export/measurements.js';
import { parseTags as storeParseTags } from '../store/reader.js';
import { handleApi, newApiCounters } from '../web/api.js';
import { renderAgentMetrics } from '../web/metrics.js';
import { instanceFields, instanceKey } from './instance.js';
import { AGGS, QUANTILES } from './series.js';
import { formatTags, normalizeTags, parseTags, tagEntries } from './tags.js';

const dir = mkdtempSync(join(tmpdir(), 'ekg-model-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('tags: one parse and format; a bare tag is the key with an empty value everywhere', () => {
  const wire = normalizeTags('service:api, flag ,pid:7') as string;
  assert.equal(wire, 'flag,pid:7,service:api');
  assert.deepEqual(parseTags(wire), { flag: '', pid: '7', service: 'api' });
  assert.equal(formatTags(parseTags(wire)), wire);
  // the store's and the exporters' readings are the model's
  assert.deepEqual(storeParseTags(wire), parseTags(wire));
  assert.deepEqual(tagPairs(wire), tagEntries(wire));
  assert.deepEqual(tagEntries(wire), [
    ['flag', ''],
    ['pid', '7'],
    ['service', 'api'],
  ]);
});

test('instance identity: a key and its fields are inverse', () => {
  const key = instanceKey(parseTags('host:h,pid:7,service:api,other:x')) as string;
  assert.equal(key, 'service=api,host=h,pid=7');
  assert.deepEqual(instanceFields(key), { service: 'api', host: 'h', pid: '7' });
  assert.equal(instanceKey(parseTags('target:http://a/stats')), 'target=http://a/stats');
  assert.equal(instanceKey(parseTags('host:h')), undefined);
});

test('every quantile a window reports can be queried: p999 included', async () => {
  assert.ok(QUANTILES.every(({ name }) => (AGGS as readonly string[]).includes(name)));
  const c = loadConfig(['--statsd', 'off', '--http', 'off', '--data', join(dir, 'q'), '--console', 'off'], {});
  assert.ok(c !== 'help');
  const agent = new Agent(c, []);
  await agent.start({ timer: false });
  try {
    agent.ingest(Array.from({ length: 1000 }, (_, i) => `lat:${i + 1}|ms|#service:api,flag`).join('\n'));
    const w = agent.flush();
    const ser = w.series.find((s) => s.name === 'lat');
    assert.ok(ser?.quantiles && ser.quantiles.p999 > ser.quantiles.p99);
    // /metrics: every quantile of the list, and the bare tag left out as remote write leaves it out
    const text = renderAgentMetrics(agent);
    for (const { q } of QUANTILES) assert.match(text, new RegExp(`^lat\\{service="api",quantile="${q}"\\} `, 'm'));
    const now = Date.now();
    const params = new URLSearchParams({ name: 'lat', agg: 'p999', from: String(now - 3_600_000), to: String(now + 60_000) });
    const reader = agent.reader;
    assert.ok(reader);
    const [status, body] = await handleApi(
      reader,
      '/api/v1/query',
      params,
      now,
      { queryMaxPoints: 1e6, queryTimeout: 10_000 },
      newApiCounters(),
    );
    assert.equal(status, 200, JSON.stringify(body));
  } finally {
    await agent.stop();
  }
});
