import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { statsdWindows } from '../testing/windows.js';
import { SqliteStore } from './sqlite.js';

const dir = mkdtempSync(join(tmpdir(), 'ekg-query-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the series listing leaves out the series of gone instances, and keeps those of no instance; so does the instance list', async () => {
  const store = new SqliteStore({ path: join(dir, 'gone.db'), flushInterval: 10_000, instanceRetention: 3_600_000 });
  after(() => store.close());
  // old is heard from in the first window only, new in both
  const [w1, w2] = statsdWindows('a:1|c|#service:old,pid:1\na:1|c|#service:new,pid:2\na:1|c', 'a:1|c|#service:new,pid:2');
  store.write(w1 as NonNullable<typeof w1>);
  store.write(w2 as NonNullable<typeof w2>);
  // an hour and 5 s after the first window: old is gone, new is not
  const now = (w1?.end as number) + 3_605_000;
  const listed = await store.series('a', {}, 10, now);
  assert.deepEqual(
    listed.map((s) => s.tags),
    [{}, { pid: '2', service: 'new' }],
  );
  assert.deepEqual(
    (await store.series('', {}, 10, now)).map((s) => s.tags),
    [{}, { pid: '2', service: 'new' }],
  );
  // within the hour both are listed, in tag order, and a limit cuts after the first
  assert.equal((await store.series('a', {}, 10, w2?.end)).length, 3);
  assert.deepEqual(
    (await store.series('a', {}, 1, w2?.end)).map((s) => s.tags),
    [{}],
  );
  assert.deepEqual(
    (await store.instances(now)).map((i) => i.key),
    ['service=new,pid=2'],
  );
  assert.deepEqual(await store.listInstances({ service: 'old' }, now), { instances: [], total: 0 });
});

test('the instance list since a time, and of probed instances only (what the alert rules read)', async () => {
  const store = new SqliteStore({ path: join(dir, 'since.db'), flushInterval: 10_000 });
  after(() => store.close());
  const [w1, w2] = statsdWindows(
    'a:1|c|#service:old,pid:1\na:1|c|#service:new,pid:2',
    'a:1|c|#service:new,pid:2\nup:1|g|#service:new,pid:2',
  );
  store.write(w1 as NonNullable<typeof w1>);
  store.write(w2 as NonNullable<typeof w2>);
  const now = w2?.end as number;
  const keys = async (f: Parameters<SqliteStore['listInstances']>[0]) => (await store.listInstances(f, now)).instances.map((i) => i.key);
  assert.deepEqual(await keys({ seenSince: w1?.end }), ['service=new,pid=2', 'service=old,pid=1']);
  assert.deepEqual(await keys({ seenSince: now }), ['service=new,pid=2']);
  assert.deepEqual(await keys({ seenSince: now + 1 }), []);
  assert.deepEqual(await keys({ probed: true }), ['service=new,pid=2']);
  assert.equal((await store.listInstances({ probed: true }, now)).instances[0]?.health, 'up');
});
