import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { Agent } from './agent.js';
import type { FlushResult } from './aggregate/aggregator.js';
import { loadConfig } from './config.js';

test('a flush timer that fires a millisecond early (by the wall clock) closes each boundary once', async () => {
  // timers run on the monotonic clock, windows on the wall clock: the two can disagree by a millisecond
  let clock = 1_800_000_000_500;
  mock.method(Date, 'now', () => clock);
  mock.timers.enable({ apis: ['setTimeout'] });
  const config = loadConfig(['--statsd', '127.0.0.1:0', '--http', '127.0.0.1:0', '--flush-interval', '1s', '--store', 'off']);
  assert.notEqual(config, 'help');
  const windows: FlushResult[] = [];
  const agent = new Agent(config as Exclude<typeof config, 'help'>, [{ name: 'test', write: (w) => void windows.push(w) }]);
  await agent.start();
  const settle = () => new Promise((r) => setImmediate(r));
  try {
    const boundary = 1_800_000_001_000;
    clock = boundary - 1; // the timer is due at the boundary; the wall clock still reads a millisecond before it
    mock.timers.tick(500);
    await settle();
    clock = boundary;
    mock.timers.tick(1);
    await settle();
    clock = boundary + 1000;
    mock.timers.tick(1000);
    await settle();
    // the wall clock stepped back an hour (NTP): the next boundary is realigned, not an hour away
    clock = boundary + 1000 - 3_600_000 + 300;
    mock.timers.tick(1000);
    await settle();
    clock = boundary + 2000 - 3_600_000;
    mock.timers.tick(700);
    await settle();
    assert.deepEqual(
      windows.map((w) => w.end),
      [boundary, boundary + 1000, boundary + 2000, boundary + 2000 - 3_600_000],
    );
    assert.equal(windows[1]?.start, boundary);
  } finally {
    mock.timers.reset();
    mock.restoreAll();
    await agent.stop();
  }
});
