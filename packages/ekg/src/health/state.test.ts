import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Health } from '../core.js';
import type { CheckResult } from '../types.js';
import { Pressure } from './pressure.js';
import { type Checks, HealthState } from './state.js';

/** Custom vitals reduced to what the verdict asks: a check that counts its runs and resolves when told. */
function checks(verdicts: boolean[] = [true]) {
  let runs = 0;
  let release: (() => void) | undefined;
  let fatal: string | undefined;
  const c: Checks & { runs(): number; release(): void; fatal(name: string | undefined): void } = {
    hasChecks: () => verdicts.length > 0,
    check: async () => {
      runs++;
      await new Promise<void>((r) => {
        release = r;
      });
      const all: Record<string, CheckResult> = {};
      verdicts.forEach((ok, i) => {
        all[`v${i}`] = { ok };
      });
      return { ok: verdicts.every(Boolean), checks: all };
    },
    fatalFailure: () => fatal,
    runs: () => runs,
    release: () => release?.(),
    fatal: (name) => {
      fatal = name;
    },
  };
  return c;
}

test('the lifecycle decides before any check runs: starting and draining answer 503 with why', () => {
  const c = checks();
  const h = new HealthState(c, undefined, 1000);
  assert.deepEqual(h.health(), { ok: false, state: 'starting', checks: { ekg: { ok: false, detail: 'starting' } } });
  h.set('draining');
  assert.deepEqual(h.health(), { ok: false, state: 'draining', checks: { ekg: { ok: false, detail: 'shutting down' } } });
  assert.equal(c.runs(), 0);
  assert.deepEqual(h.live(), { ok: true });
  h.set('closed');
  assert.deepEqual(h.live(), { ok: false, detail: 'shut down' });
});

test('with no checks the verdict is synchronous; setReady(false) carries its reason', () => {
  const h = new HealthState(checks([]), undefined, 1000);
  h.set('ready');
  assert.deepEqual(h.health(), { ok: true, state: 'ready', checks: {} });
  assert.deepEqual(h.peek(), { value: { ok: true, state: 'ready', checks: {} } });
  h.setReady(false, 'warming the cache');
  assert.deepEqual(h.health(), { ok: false, state: 'ready', checks: { ekg: { ok: false, detail: 'warming the cache' } } });
  h.setReady(true);
  assert.equal((h.health() as Health).ok, true);
});

test('concurrent probes share one check run; the verdict is reused, then dropped when a vital is added', async () => {
  const c = checks([true, false]);
  const h = new HealthState(c, undefined, 60_000);
  h.set('ready');
  assert.equal(h.peek(), undefined, 'a check must run');
  const a = h.health();
  const b = h.health();
  assert.ok(a instanceof Promise);
  assert.equal(a, b, 'one pending run shared');
  c.release();
  const v = await a;
  assert.equal(v.ok, false);
  assert.deepEqual(v.checks.v1, { ok: false });
  assert.equal(h.health(), v, 'cached');
  assert.equal(h.peek()?.value, v);
  assert.ok((h.peek()?.until ?? 0) > Date.now());
  assert.equal(c.runs(), 1);
  h.invalidate();
  const again = h.health();
  assert.ok(again instanceof Promise);
  c.release();
  await again;
  assert.equal(c.runs(), 2);
});

test('a check that rejects gives a failed verdict and the next probe runs again', async () => {
  const h = new HealthState(
    { hasChecks: () => true, check: () => Promise.reject(new Error('boom')), fatalFailure: () => undefined },
    undefined,
    60_000,
  );
  h.set('ready');
  const v = await h.health();
  assert.equal(v.ok, false);
  assert.match(v.checks.ekg?.detail ?? '', /checks could not run: .*boom/);
  assert.ok(h.health() instanceof Promise, 'not cached, not left pending');
});

test('pressure fails the verdict without running a check; a fatal vital fails /live', () => {
  const c = checks();
  const p = new Pressure({ rss: 1 });
  p.update({ eventloop: { delay: { p99: 0 }, utilization: 0 }, memory: { heapUsed: 0, heapLimit: 1, rss: 10 } } as never);
  const h = new HealthState(c, p, 1000);
  h.set('ready');
  const v = h.health() as Health;
  assert.equal(v.ok, false);
  assert.match(v.checks.pressure?.detail ?? '', /RSS/);
  assert.equal(c.runs(), 0);
  c.fatal('db');
  assert.deepEqual(h.live(), { ok: false, detail: 'fatal vital "db" failed' });
});

test('listeners hear every change; one that throws does not stop the others', () => {
  const h = new HealthState(checks(), undefined, 1000);
  const heard: string[] = [];
  h.onChange(() => {
    throw new Error('listener fault');
  });
  const off = h.onChange(() => heard.push(h.state));
  h.set('ready');
  h.setReady(false);
  h.changed();
  off();
  h.set('closed');
  assert.deepEqual(heard, ['ready', 'ready', 'ready']);
});
