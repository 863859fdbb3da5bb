import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { run } from './testing/child.js';
import { get } from './testing/http.js';
import { listenedPorts, listeningPorts } from './testing/ports.js';

// Fixtures that serve run for ten minutes and are killed when the test is done: a test on a busy
// machine never races the fixture's own end. Ports are port 0, read back from the kernel.
const LONG = '600000';

const ekgLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('ekg:'));

test('ekg-vitals/register never keeps a finished app alive, even with a side server', { timeout: 120_000 }, async () => {
  const c = run('idle', { register: true, env: { EKG_PORT: '0' } });
  await c.line(/app done/, 60_000);
  // the app has nothing left to do: the process ends by itself (anything ekg kept ref'd would hold it forever)
  const { code } = await exitWithin(c, 10_000, 'after its last line');
  assert.equal(code, 0);
  assert.deepEqual(ekgLines(c.stderr()), []);
});

test('EKG_PORT serves the endpoints at / from a process with no HTTP of its own', async () => {
  const c = run('worker', { register: true, env: { EKG_PORT: '0', EKG_INTERVAL: '300ms' }, args: [LONG] });
  try {
    const [port] = await listenedPorts(c.proc);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await get(base, '/heartbeat')).status === 200);
    assert.equal((await get(base, '/heartbeat')).body, 'heartbeat:ok');
    let stats: { runtime: { gc: { count: number }; info: { pid: number } }; ekg: { window: { seq: number; seconds: number } } };
    await waitFor(async () => {
      stats = JSON.parse((await get(base, '/stats')).body);
      return stats.ekg.window.seq >= 1;
    });
    stats = JSON.parse((await get(base, '/stats')).body);
    assert.ok(stats.runtime.gc.count >= 0);
    // EKG_INTERVAL applies: the default window is 10 s; a 300 ms one stretched by a busy machine stays far below
    assert.ok(stats.ekg.window.seconds > 0 && stats.ekg.window.seconds < 5, `window ${stats.ekg.window.seconds}s`);
    assert.equal(stats.runtime.info.pid, c.proc.pid);
    const metrics = await get(base, '/metrics');
    assert.match(metrics.body, /^nodejs_heap_size_used_bytes \d+$/m);
  } finally {
    c.proc.kill('SIGKILL');
    await c.exit;
  }
});

test('EKG_PREFIX and EKG_TOKEN apply to the side server; oversized headers get 431', async () => {
  const c = run('worker', { register: true, env: { EKG_PORT: '0', EKG_PREFIX: 'ops/', EKG_TOKEN: 'tok' }, args: [LONG] });
  try {
    const [port] = await listenedPorts(c.proc);
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
    // the app runs until the line has come (the side server starts in the watchdog's thread, which a
    // busy machine can start after a short app has already ended)
    const c = run('worker', { register: true, env: { EKG_PORT: String(port) }, args: [LONG] });
    await c.line(/worker started/, 60_000);
    await waitFor(async () => /EKG_ERR_LISTEN/.test(c.stderr()));
    assert.equal(c.proc.exitCode, null, 'the app runs on');
    c.proc.kill('SIGKILL');
    await c.exit;
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
    await c.line(/worker done/, 60_000);
    // the push target never answers and its timeout is 5 s: only an unref'd socket lets the app end
    // before. Timed from the app's last line, not from spawn, so a slow start on a busy machine is not counted.
    const { code } = await exitWithin(c, 4500, `after its last line: something kept the process alive; stderr: ${c.stderr()}`);
    assert.equal(code, 0);
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
  const c = run('worker', { register: true, env: { EKG_DISABLE: '1', EKG_PORT: '0' }, args: ['800'] });
  // watched for the process's whole life: a side server started late would still be seen
  const seen = new Set<number>();
  while (c.proc.exitCode === null && c.proc.signalCode === null) {
    for (const p of listeningPorts(c.proc.pid as number)) seen.add(p);
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal((await c.exit).code, 0);
  assert.match(c.stdout(), /worker done/);
  assert.deepEqual([...seen], [], 'nothing listens');
});

test('SIGTERM during a slow request: ready turns 503, the request completes, the process ends', { timeout: 180_000 }, async () => {
  // a 5 s drain: long enough for this test's requests on a busy machine; each step waits for its state
  const c = run('slow-app', { args: ['5000'] });
  const port = (await c.line(/listening (\d+)/))[1];
  const base = `http://127.0.0.1:${port}`;
  assert.equal((await get(base, '/ops/ready')).status, 200);
  const slow = get(base, '/slow', { signal: AbortSignal.timeout(120_000) });
  await c.line(/slow started/);
  c.proc.kill('SIGTERM');
  await waitFor(async () => (await get(base, '/ops/ready')).status === 503);
  const ready = await get(base, '/ops/ready');
  assert.equal(ready.status, 503);
  assert.match(ready.body, /shutting down/);
  assert.equal((await get(base, '/ops/heartbeat')).body, 'heartbeat:NG');
  assert.equal((await get(base, '/ops/live')).status, 200, 'still live while draining');
  // after the drain the server takes no new connection, and still holds the slow request
  await waitFor(
    async () =>
      await get(base, '/ops/live').then(
        () => false,
        () => true,
      ),
  );
  assert.equal(c.proc.exitCode, null, 'the process waits for the request in flight');
  c.proc.kill('SIGUSR2');
  const s = await slow;
  assert.equal(s.status, 200);
  assert.equal(s.body, 'slow done');
  const exit = await c.exit;
  assert.equal(exit.signal, 'SIGTERM', `exit ${JSON.stringify(exit)} stderr ${c.stderr()}`);
  assert.deepEqual(ekgLines(c.stderr()), []);
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Resolves with the exit once the process ends; fails if it is still alive `ms` after this call. */
async function exitWithin(c: ReturnType<typeof run>, ms: number, what: string) {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running ${ms} ms ${what}`)), ms);
  });
  try {
    return await Promise.race([c.exit, late]);
  } finally {
    clearTimeout(timer);
    c.proc.kill('SIGKILL');
  }
}

/** Polls `fn` until it holds; the bound is for a failure, not the expected wait. */
async function waitFor(fn: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (await fn()) return;
    } catch {}
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
