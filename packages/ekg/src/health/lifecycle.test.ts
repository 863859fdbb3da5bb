import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { Lifecycle, type LifecycleOptions } from './lifecycle.js';
import { HealthState } from './state.js';

const none = { hasChecks: () => false, check: async () => ({ ok: true, checks: {} }), fatalFailure: () => undefined };
const opts = (o: Partial<LifecycleOptions> = {}): LifecycleOptions => ({
  signals: [],
  drainDelay: 0,
  shutdownTimeout: 5000,
  hooks: [],
  timeout: 1000,
  ...o,
});

async function listening(): Promise<Server> {
  const srv = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return srv;
}

test('shutdown: draining at once, then the servers close, the hooks run in order, ekg stops, closed', async () => {
  const health = new HealthState(none, undefined, 1000);
  health.set('ready');
  const steps: string[] = [];
  const tracked = await listening();
  const seen = await listening();
  const lc = new Lifecycle(
    opts({
      hooks: [
        () => {
          steps.push(`hook 1 (tracked listening: ${tracked.listening}, seen listening: ${seen.listening})`);
        },
        () => {
          throw new Error('a failing hook does not stop the shutdown');
        },
        async () => {
          steps.push('hook 3');
        },
      ],
    }),
    health,
    () => [seen],
    async () => {
      steps.push(`teardown (${health.state})`);
    },
  );
  lc.track(tracked);
  const p = lc.shutdown();
  assert.equal(health.state, 'draining', 'at once, before the drain');
  assert.equal(lc.shutdown(), p, 'one shutdown');
  await p;
  assert.deepEqual(steps, ['hook 1 (tracked listening: false, seen listening: false)', 'hook 3', 'teardown (draining)']);
  assert.equal(health.state, 'closed');
  await lc.close();
  assert.equal(steps.length, 3, 'close() after shutdown stops nothing twice');
});

test('shutdown waits for an in-flight request before the server closes', async () => {
  const health = new HealthState(none, undefined, 1000);
  let answer: (() => void) | undefined;
  const srv = createServer((_req, res) => {
    answer = () => res.end('late');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  const body = new Promise<string>((resolve, reject) => {
    request({ port, host: '127.0.0.1', path: '/' }, (res) => {
      let s = '';
      res.on('data', (d) => {
        s += d;
      });
      res.on('end', () => resolve(s));
    })
      .on('error', reject)
      .end();
  });
  while (!answer) await new Promise((r) => setImmediate(r));
  const lc = new Lifecycle(
    opts(),
    health,
    () => [srv],
    async () => {},
  );
  const done = lc.shutdown();
  answer();
  assert.equal(await body, 'late');
  await done;
  assert.equal(srv.listening, false);
});

test('close() leaves the servers alone and is safe to call any number of times', async () => {
  const health = new HealthState(none, undefined, 1000);
  health.set('ready');
  let teardowns = 0;
  const srv = await listening();
  const lc = new Lifecycle(
    opts(),
    health,
    () => [srv],
    async () => {
      teardowns++;
    },
  );
  lc.track(srv);
  await Promise.all([lc.close(), lc.close()]);
  await lc.close();
  assert.equal(teardowns, 1);
  assert.equal(health.state, 'closed');
  assert.equal(srv.listening, true, 'the app owns its server');
  srv.close();
});

test('the signal handlers are installed, start the shutdown, and are removed when ekg stops', async () => {
  // SIGHUP, not SIGUSR2: on Node 24 an emitted SIGUSR2 writes a diagnostic report into the working directory (lint then fails on it)
  const before = process.listenerCount('SIGHUP');
  // a listener of the app's own: ekg does not raise the signal again when someone else handles it
  const app = () => {};
  process.on('SIGHUP', app);
  const health = new HealthState(none, undefined, 1000);
  health.set('ready');
  let stopped: () => void = () => {};
  const torn = new Promise<void>((r) => {
    stopped = r;
  });
  const lc = new Lifecycle(
    opts({ signals: ['SIGHUP'] }),
    health,
    () => [],
    async () => stopped(),
  );
  assert.equal(process.listenerCount('SIGHUP'), before + 2);
  process.emit('SIGHUP', 'SIGHUP');
  assert.equal(health.state, 'draining');
  await torn;
  await lc.shutdown();
  assert.equal(process.listenerCount('SIGHUP'), before + 1, "ekg's handler removed, the app's kept");
  process.off('SIGHUP', app);
});

test('closeWhenLoopEnds: one beforeExit listener however often asked, removed once closed', async () => {
  const before = process.listenerCount('beforeExit');
  const health = new HealthState(none, undefined, 1000);
  const lc = new Lifecycle(
    opts(),
    health,
    () => [],
    async () => {},
  );
  lc.closeWhenLoopEnds();
  lc.closeWhenLoopEnds();
  assert.equal(process.listenerCount('beforeExit'), before + 1);
  await lc.close();
  assert.equal(process.listenerCount('beforeExit'), before);
});
