#!/usr/bin/env node
// One alert evaluation (every built-in rule on) over 100,000 instances in the SQLite store, in one process: CPU ms
// (process.cpuUsage: what an evaluation holds the event loop for, whatever else the machine runs), the best of three.
// Two fleets: 100,000 instances of one service (q.a:1|g|#service:shop,pid:N: one instance-down group) and 100,000
// services of one instance each (q.b:1|g|#service:sN: 100,000 groups). Each is measured right after a window
// (every instance reporting) and with all of them silent for three windows (down; held up to MAX_GROUPS).
// Run against any build of the agent, to compare:
//   node bench/alerts.mjs packages/agent/dist
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const dist = resolve(process.argv[2] ?? 'packages/agent/dist');
const { SqliteStore } = await import(join(dist, 'store/sqlite.js'));
const { Aggregator } = await import(join(dist, 'aggregate/aggregator.js'));
const { parsePacket } = await import(join(dist, 'ingest/statsd-parse.js'));
const { Alerts } = await import(join(dist, 'alert/alerts.js'));
const { resolveRules } = await import(join(dist, 'alert/rules.js'));
const n = 100_000;
const iv = 10_000;

for (const [fleet, line] of [
  ['one service, 100,000 pids', (i) => `q.a:1|g|#service:shop,pid:${i}`],
  ['100,000 services', (i) => `q.b:1|g|#service:s${i}`],
]) {
  const dir = mkdtempSync(join(tmpdir(), 'ekg-alerts-bench-'));
  const store = new SqliteStore({ path: join(dir, 'ekg.db'), flushInterval: iv });
  const alerts = new Alerts({ reader: store, exporters: [] }, resolveRules([], iv), [], { data: dir, window: iv, agentUrl: '' });
  const t0 = Date.now() - 60 * iv;
  const agg = new Aggregator();
  agg.flush(t0 - iv);
  // two windows a window apart, so each group's interval is learned
  let end = t0;
  for (let k = 0; k < 2; k++) {
    parsePacket(Array.from({ length: n }, (_, i) => line(i)).join('\n'), { sample: (s) => agg.add(s), bad: () => {} });
    end += iv;
    store.write(agg.flush(end));
    await alerts.evaluate(end, end);
  }
  const measure = async (what, at) => {
    let best = Number.POSITIVE_INFINITY;
    let changes = 0;
    for (let k = 0; k < 3; k++) {
      at += iv;
      const c0 = process.cpuUsage();
      changes = (await alerts.evaluate(at, at)).length;
      const c = process.cpuUsage(c0);
      best = Math.min(best, (c.user + c.system) / 1000);
    }
    console.log(`${fleet}, ${what}: ${best.toFixed(1)} ms CPU an evaluation (${changes} changes the last)`);
    return at;
  };
  // reporting: each evaluation follows a window in which every instance reported
  let best = Number.POSITIVE_INFINITY;
  for (let k = 0; k < 3; k++) {
    parsePacket(Array.from({ length: n }, (_, i) => line(i)).join('\n'), { sample: (s) => agg.add(s), bad: () => {} });
    end += iv;
    store.write(agg.flush(end));
    const c0 = process.cpuUsage();
    await alerts.evaluate(end, end);
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / 1000);
  }
  console.log(`${fleet}, every instance reported since the last evaluation: ${best.toFixed(1)} ms CPU an evaluation`);
  // silent: past interval × missed, all down (held up to MAX_GROUPS), then steady
  end = await measure('all silent (down)', end + 3 * iv);
  await alerts.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
