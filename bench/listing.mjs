#!/usr/bin/env node
// The listing APIs over 100,000 series of one name, each its own instance (q.big|#pid:N), in one process: CPU ms
// (process.cpuUsage: what the request holds the event loop for, whatever else the machine runs) and answer bytes of
// handleApi + JSON.stringify, the best of three. Run against any build of the agent, to compare:
//   node bench/listing.mjs packages/agent/dist
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const dist = resolve(process.argv[2] ?? 'packages/agent/dist');
const { SqliteStore } = await import(join(dist, 'store/sqlite.js'));
const { Aggregator } = await import(join(dist, 'aggregate/aggregator.js'));
const { parsePacket } = await import(join(dist, 'ingest/statsd-parse.js'));
const { handleApi } = await import(join(dist, 'web/api.js'));
const n = 100_000;
// one window ending now: the instances are fresh, as on a live agent
const agg = new Aggregator();
agg.flush(Date.now() - 10_000);
parsePacket(Array.from({ length: n }, (_, i) => `q.big:1|g|#pid:${i}`).join('\n'), { sample: (s) => agg.add(s), bad: () => {} });
const w = agg.flush(Date.now());
const dir = mkdtempSync(join(tmpdir(), 'ekg-listing-'));
const store = new SqliteStore({ path: join(dir, 'ekg.db'), flushInterval: 10_000 });
store.write(w);
for (const q of ['/api/v1/series?match=q.big&tags=pid:5', '/api/v1/series?match=q.*&tags=pid:5', '/api/v1/series', '/api/v1/instances']) {
  const [path, query] = q.split('?');
  let best = Number.POSITIVE_INFINITY;
  let answer = '';
  for (let k = 0; k < 3; k++) {
    const c0 = process.cpuUsage();
    const [status, body] = await handleApi(store, path, new URLSearchParams(query ?? ''));
    const text = JSON.stringify(body);
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / 1000);
    answer = `${status}, ${text.length} bytes`;
  }
  console.log(`GET ${q} over ${n} series and instances: ${answer}, ${best.toFixed(0)} ms CPU`);
}
await store.close();
rmSync(dir, { recursive: true, force: true });
