import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { createEkg } from '../ekg.js';
import { renderPrometheus } from '../formats/prometheus.js';
import { RenderCache } from './cache.js';

test('each page of a window is rendered once, gzip is the same page compressed, a new window renders anew', async () => {
  const ekg = createEkg({ signals: false, interval: '1h' });
  try {
    const first = await ekg.flush();
    let statsCalls = 0;
    const cache = new RenderCache((s) => {
      statsCalls++;
      return ekg.statsObject(s);
    });
    const prom = cache.metrics(first);
    assert.equal(prom, renderPrometheus(first, false));
    assert.equal(cache.metrics(first), prom, 'same string object reused');
    const open = cache.metrics(first, true);
    assert.equal(open, renderPrometheus(first, true));
    assert.notEqual(open, prom);
    const gz = cache.metricsGzip(first);
    assert.equal(gunzipSync(gz).toString(), prom);
    assert.equal(cache.metricsGzip(first), gz, 'compressed once');
    assert.equal(gunzipSync(cache.metricsGzip(first, true)).toString(), open);
    const stats = cache.stats(first);
    assert.equal(cache.stats(first), stats);
    assert.equal(statsCalls, 1);
    assert.equal(JSON.parse(stats.body).ekg.version !== undefined, true);

    const second = await ekg.flush();
    assert.notEqual(second, first);
    cache.stats(second);
    assert.equal(statsCalls, 2, 'a new window is a new page');
    assert.notEqual(cache.metricsGzip(second), gz);
  } finally {
    await ekg.close();
  }
});
