import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergeMetrics } from './cluster.js';
import { run } from './testing/child.js';
import { get } from './testing/http.js';

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

test('a 4-worker cluster: the primary answers for all four, then three when one dies, and names a stuck one', {
  timeout: 60_000,
}, async () => {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const c = run('cluster-app', { register: true, env: { EKG_PORT: String(port), EKG_INTERVAL: '300ms' }, args: ['4'] });
  try {
    const m = await c.line(/ready (\d+) ([\d,]+)/, 20_000);
    const pids = (m[2] as string).split(',').map(Number);
    assert.equal(pids.length, 4);
    const side = `http://127.0.0.1:${port}`;
    await new Promise((r) => setTimeout(r, 700));
    const s = JSON.parse((await get(side, '/stats')).body);
    assert.deepEqual(Object.keys(s.workers).sort(), ['1', '2', '3', '4']);
    assert.deepEqual(s.ekg.cluster, { workers: 4, answered: 4, missing: {} });
    const workerPids = Object.values(s.workers).map((w) => (w as { runtime: { info: { pid: number } } }).runtime.info.pid);
    assert.deepEqual(workerPids.sort(), [...pids].sort());
    const metrics = (await get(side, '/metrics')).body;
    for (const id of ['primary', '1', '2', '3', '4'])
      assert.match(metrics, new RegExp(`^nodejs_heap_size_used_bytes\\{worker="${id}"\\} \\d+$`, 'm'));
    assert.equal((metrics.match(/^# TYPE nodejs_heap_size_used_bytes gauge$/gm) ?? []).length, 1, 'each family once');
    assert.match(metrics, /^ekg_cluster_workers\{state="answered"\} 4$/m);

    // a stuck worker: reported missing after the per-worker timeout, the rest answer
    c.proc.kill('SIGUSR2');
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    const stuck = JSON.parse((await get(side, '/stats')).body);
    const took = Date.now() - t0;
    assert.deepEqual(Object.keys(stuck.workers).sort(), ['2', '3', '4']);
    assert.match(stuck.ekg.cluster.missing['1'], /no answer within 1000 ms/);
    assert.ok(took < 2500, `took ${took} ms`);
    await new Promise((r) => setTimeout(r, 3000));

    // a worker that dies while the primary waits for it: named at once, not after the timeout
    const pid1 = (s.workers['1'] as { runtime: { info: { pid: number } } }).runtime.info.pid;
    c.proc.kill('SIGUSR2');
    await new Promise((r) => setTimeout(r, 200));
    const t1 = Date.now();
    const pending = get(side, '/stats');
    await new Promise((r) => setTimeout(r, 150));
    process.kill(pid1, 'SIGKILL');
    const dying = JSON.parse((await pending).body);
    assert.equal(dying.ekg.cluster.missing['1'], 'exited while being asked');
    assert.ok(Date.now() - t1 < 1000, 'no wait for the timeout');
    assert.deepEqual(Object.keys(dying.workers).sort(), ['2', '3', '4']);

    // once the primary has seen the exit, the dead worker is no longer expected
    await new Promise((r) => setTimeout(r, 300));
    const three = JSON.parse((await get(side, '/stats')).body);
    assert.deepEqual(Object.keys(three.workers).sort(), ['2', '3', '4']);
    assert.deepEqual(three.ekg.cluster, { workers: 3, answered: 3, missing: {} });
  } finally {
    c.proc.kill('SIGTERM');
    await c.exit;
  }
});
