import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Sampler } from './sampler.js';

test('sampler: a window longer than setTimeout can wait (2^31-1 ms) does not close every millisecond', async () => {
  const s = Sampler.acquire(30 * 86_400_000);
  let windows = 0;
  const off = s.onWindow(() => windows++);
  try {
    // before the fix Node's TimeoutOverflowWarning path fired the timer after 1 ms, every 1 ms
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(windows, 0);
  } finally {
    off();
    s.release();
  }
});
