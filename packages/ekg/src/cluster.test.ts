import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergeMetrics } from './cluster.js';
import { run } from './testing/child.js';
import { get } from './testing/http.js';
import { listenedPorts } from './testing/ports.js';

test('mergeMetrics: each family once, every sample labelled by worker', () => {
  const a =
    '# HELP x_total X.\n# TYPE x_total counter\nx_total 1\n# HELP h H.\n# TYPE h histogram\nh_bucket{le="1"} 2\nh_sum 3\nh_count 2\n';
  const b =
    '# HELP x_total X.\n# TYPE x_total counter\nx_total{k="v"} 5\n# HELP h H.\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n';
  assert.equal(
    mergeMetrics([
      { worker: 'primary', text: a },
      { worker: '1', text: b },
    ]),
    [
      '# HELP x_total X.',
      '# TYPE x_total counter',
      'x_total{worker="primary"} 1',
      'x_total{worker="1",k="v"} 5',
      '# HELP h H.',
      '# TYPE h histogram',
      'h_bucket{worker="primary",le="1"} 2',
      'h_sum{worker="primary"} 3',
      'h_count{worker="primary"} 2',
      'h_bucket{worker="1",le="1"} 1',
      'h_sum{worker="1"} 1',
      'h_count{worker="1"} 1',
      '',
    ].join('\n'),
  );
});

type Stats = {
  workers: Record<string, { runtime: { info: { pid: number } } }>;
  ekg: { cluster: { workers: number; answered: number; missing: Record<string, string> } };
};

/** Polls `fn` until it gives a value; the bound is for a failure, not the expected wait. */
async function until<T>(fn: () => Promise<T | undefined>, what: string, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Every worker state is announced by the fixture on stdout and waited for; a busy machine where a
// worker misses the primary's 1 s deadline now and then only makes a poll go round again.
test('a 4-worker cluster: the primary answers for all four, then three when one dies, and names a stuck one', {
  timeout: 300_000,
}, async () => {
  const c = run('cluster-app', { register: true, env: { EKG_PORT: '0', EKG_INTERVAL: '300ms' }, args: ['4'] });
  try {
    const m = await c.line(/ready (\d+) ([\d,]+)/, 60_000);
    const pids = (m[2] as string).split(',').map(Number);
    assert.equal(pids.length, 4);
    const [port] = await listenedPorts(c.proc, { except: [Number(m[1])] });
    const side = `http://127.0.0.1:${port}`;
    const stats = async (ok: (s: Stats) => boolean) => {
      const s = JSON.parse((await get(side, '/stats')).body) as Stats;
      return ok(s) ? s : undefined;
    };
    const s = await until(() => stats((x) => x.ekg.cluster.answered === 4), 'all four workers to answer');
    assert.deepEqual(Object.keys(s.workers).sort(), ['1', '2', '3', '4']);
    assert.deepEqual(s.ekg.cluster, { workers: 4, answered: 4, missing: {} });
    const workerPids = Object.values(s.workers).map((w) => w.runtime.info.pid);
    assert.deepEqual(workerPids.sort(), [...pids].sort());
    const metrics = await until(async () => {
      const body = (await get(side, '/metrics')).body;
      return /^ekg_cluster_workers\{state="answered"\} 4$/m.test(body) ? body : undefined;
    }, 'all four workers in /metrics');
    for (const id of ['primary', '1', '2', '3', '4'])
      assert.match(metrics, new RegExp(`^nodejs_heap_size_used_bytes\\{worker="${id}"\\} \\d+$`, 'm'));
    assert.equal((metrics.match(/^# TYPE nodejs_heap_size_used_bytes gauge$/gm) ?? []).length, 1, 'each family once');

    // a stuck worker (its loop blocked until the test lets it go): reported missing after the
    // per-worker timeout while the rest answer; that the answer comes at all, with worker 1 still
    // blocked, is the proof the primary did not wait for it
    c.proc.kill('SIGUSR2');
    await c.line(/blocking 1/);
    const stuck = await until(
      () => stats((x) => Object.keys(x.workers).sort().join() === '2,3,4'),
      'workers 2, 3 and 4 to answer beside the stuck one',
    );
    assert.match(stuck.ekg.cluster.missing['1'] ?? '', /no answer within 1000 ms/);
    assert.doesNotMatch(c.stdout(), /unblocked 1/, 'worker 1 was blocked all along');
    c.proc.kill('SIGUSR1');
    await c.line(/unblocked 1/);
    await until(() => stats((x) => x.ekg.cluster.answered === 4), 'worker 1 to answer again');

    // a worker that dies while the primary waits for it: named as such, not as a timeout
    c.proc.kill('SIGHUP');
    await c.line(/armed 1/);
    const dying = JSON.parse((await get(side, '/stats')).body) as Stats;
    assert.equal(dying.ekg.cluster.missing['1'], 'exited while being asked');
    assert.equal(dying.workers['1'], undefined);

    // once the primary has seen the exit, the dead worker is no longer expected
    const three = await until(() => stats((x) => x.ekg.cluster.workers === 3 && x.ekg.cluster.answered === 3), 'three workers');
    assert.deepEqual(Object.keys(three.workers).sort(), ['2', '3', '4']);
    assert.deepEqual(three.ekg.cluster, { workers: 3, answered: 3, missing: {} });
  } finally {
    c.proc.kill('SIGTERM');
    await c.exit;
  }
});
