import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { run } from './testing/child.js';
import { get } from './testing/http.js';

const ekgLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('ekg:'));

test('ekg/register never keeps a finished app alive, even with a side server', async () => {
  const c = run('idle', { register: true, env: { EKG_PORT: '0' } });
  const { code, ms } = await c.exit;
  assert.equal(code, 0);
  assert.match(c.stdout(), /app done/);
  assert.ok(ms < 3000, `took ${ms} ms`);
  assert.deepEqual(ekgLines(c.stderr()), []);
});

test('EKG_PORT serves the endpoints at / from a process with no HTTP of its own', async () => {
  const port = await freePort();
  const c = run('worker', { register: true, env: { EKG_PORT: String(port), EKG_INTERVAL: '300ms' }, args: ['4000'] });
  try {
    await c.line(/worker started/);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await get(base, '/heartbeat')).status === 200);
    assert.equal((await get(base, '/heartbeat')).body, 'heartbeat:ok');
    await new Promise((r) => setTimeout(r, 700));
    const stats = JSON.parse((await get(base, '/stats')).body);
    assert.ok(stats.runtime.gc.count >= 0);
    assert.ok(stats.ekg.window.seq >= 1);
    assert.ok(Math.abs(stats.ekg.window.seconds - 0.3) < 0.15, `window ${stats.ekg.window.seconds}s`);
    assert.equal(stats.runtime.info.pid, c.proc.pid);
    const metrics = await get(base, '/metrics');
    assert.match(metrics.body, /^nodejs_heap_size_used_bytes \d+$/m);
  } finally {
    c.proc.kill('SIGKILL');
    await c.exit;
  }
});

test('EKG_PREFIX and EKG_TOKEN apply to the side server; oversized headers get 431', async () => {
  const port = await freePort();
  const c = run('worker', { register: true, env: { EKG_PORT: String(port), EKG_PREFIX: 'ops/', EKG_TOKEN: 'tok' }, args: ['4000'] });
  try {
    await c.line(/worker started/);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await get(base, '/ops/heartbeat')).status === 200);
    assert.equal((await get(base, '/heartbeat')).status, 404);
    assert.equal((await get(base, '/ops/stats')).status, 401);
    assert.equal((await get(base, '/ops/stats', { headers: { authorization: 'Bearer tok' } })).status, 200);
    const big = await get(base, '/ops/heartbeat', { headers: { 'x-big': 'a'.repeat(20_000) } }).catch((e: Error) => e);
    // Node answers 431 and closes; fetch may surface it as a status or a closed socket
    if (!(big instanceof Error)) assert.equal(big.status, 431);
    assert.equal((await get(base, '/ops/heartbeat')).status, 200, 'the side server survives oversized headers');
  } finally {
    c.proc.kill('SIGKILL');
    await c.exit;
  }
});

test('a bad EKG_* value is one stderr line, that feature off, and the app runs', async () => {
  const c = run('worker', { register: true, env: { EKG_PORT: 'eighty', EKG_INTERVAL: 'soon' }, args: ['300'] });
  const { code } = await c.exit;
  assert.equal(code, 0);
  assert.match(c.stdout(), /worker done/);
  const lines = ekgLines(c.stderr());
  assert.equal(lines.length, 2, c.stderr());
  assert.match(lines[0] ?? '', /^ekg: EKG_ERR_BAD_ENV: EKG_PORT="eighty" is not valid: expected a port number/);
  assert.match(lines[1] ?? '', /^ekg: EKG_ERR_BAD_ENV: EKG_INTERVAL="soon" is not valid/);
});

test('a side port already taken is one stderr line; the app runs', async () => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const port = (blocker.address() as { port: number }).port;
  try {
    const c = run('worker', { register: true, env: { EKG_PORT: String(port) }, args: ['500'] });
    const { code } = await c.exit;
    assert.equal(code, 0);
    assert.match(c.stdout(), /worker done/);
    const lines = ekgLines(c.stderr());
    assert.equal(lines.length, 1, c.stderr());
    assert.match(lines[0] ?? '', /EKG_ERR_LISTEN: side server could not listen on 127\.0\.0\.1:\d+: the port is already in use/);
  } finally {
    blocker.close();
  }
});

test('with the agent and the push URL away, the app runs, ends on time, and stderr has one line per outage', async () => {
  const hang = createServer(() => {}); // accepts, never answers
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', () => r()));
  const closed = await freePort();
  try {
    const c = run('worker', {
      register: true,
      env: {
        EKG_STATSD: `tcp://127.0.0.1:${closed},udp://no-such-host.invalid:8125`,
        EKG_PUSH_URL: `http://127.0.0.1:${(hang.address() as { port: number }).port}/push`,
        EKG_INTERVAL: '200ms',
      },
      args: ['1500'],
    });
    const { code, ms } = await c.exit;
    assert.equal(code, 0);
    assert.match(c.stdout(), /worker done/);
    // the push target never answers and its timeout is 5 s: only an unref'd socket lets the app end before
    assert.ok(ms < 4500, `took ${ms} ms: something kept the process alive; stderr: ${c.stderr()}`);
    const lines = ekgLines(c.stderr());
    // seven windows, three broken targets: one line each
    assert.equal(lines.filter((l) => l.includes(`tcp://127.0.0.1:${closed}`)).length, 1, c.stderr());
    assert.equal(lines.filter((l) => l.includes('no-such-host.invalid')).length, 1, c.stderr());
    assert.ok(
      lines.every((l) => l.startsWith('ekg: EKG_ERR_REPORTER: ')),
      c.stderr(),
    );
  } finally {
    hang.close();
  }
});

test('EKG_DISABLE=1 turns ekg off entirely', async () => {
  const port = await freePort();
  const c = run('worker', { register: true, env: { EKG_DISABLE: '1', EKG_PORT: String(port) }, args: ['800'] });
  await c.line(/worker started/);
  const r = await get(`http://127.0.0.1:${port}`, '/heartbeat').catch((e: Error) => e);
  assert.ok(r instanceof Error, 'nothing listens');
  assert.equal((await c.exit).code, 0);
});

test('SIGTERM during a slow request: ready turns 503, the request completes, the process ends', async () => {
  const c = run('slow-app', { args: ['400'] });
  const port = (await c.line(/listening (\d+)/))[1];
  const base = `http://127.0.0.1:${port}`;
  assert.equal((await get(base, '/ops/ready')).status, 200);
  const slow = get(base, '/slow');
  await new Promise((r) => setTimeout(r, 100));
  c.proc.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 50));
  const ready = await get(base, '/ops/ready');
  assert.equal(ready.status, 503);
  assert.match(ready.body, /shutting down/);
  assert.equal((await get(base, '/ops/heartbeat')).body, 'heartbeat:NG');
  assert.equal((await get(base, '/ops/live')).status, 200, 'still live while draining');
  const s = await slow;
  assert.equal(s.status, 200);
  assert.equal(s.body, 'slow done');
  const exit = await c.exit;
  assert.equal(exit.signal, 'SIGTERM', `exit ${JSON.stringify(exit)} stderr ${c.stderr()}`);
  assert.ok(exit.ms < 5000);
  assert.deepEqual(ekgLines(c.stderr()), []);
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function waitFor(fn: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (await fn()) return;
    } catch {}
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
