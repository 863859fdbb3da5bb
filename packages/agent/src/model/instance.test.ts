import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Agent } from '../agent.js';
import { loadConfig } from '../config.js';
import { instanceKey, STALE_INTERVALS, staleAfter } from './instance.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A real agent (SQLite store, no listeners) whose windows the test closes itself. */
async function agentAt(windowS: number): Promise<Agent> {
  const dir = mkdtempSync(join(tmpdir(), 'ekg-instance-'));
  dirs.push(dir);
  const c = loadConfig(['--statsd', 'off', '--http', 'off', '--data', dir, '--flush-interval', `${windowS}s`], {});
  assert.notEqual(c, 'help');
  const agent = new Agent(c as Exclude<typeof c, 'help'>, []);
  await agent.start({ timer: false });
  after(() => agent.stop());
  return agent;
}

const health = async (agent: Agent, now: number) => {
  const rows = await (agent.store as NonNullable<Agent['store']>).instances(now);
  return rows.find((r) => r.pid === '4242');
};

test('stale is 3 of the instance’s own intervals, or of the agent’s windows when those are longer', () => {
  assert.equal(STALE_INTERVALS, 3);
  assert.equal(staleAfter(1000, 10_000), 31_000);
  assert.equal(staleAfter(10_000, 2000), 31_000);
  assert.equal(staleAfter(5000), 16_000);
  assert.equal(instanceKey({ service: 'shop', pid: '1', kind: 'counter' }), 'service=shop,pid=1');
});

test('an app at 10 s windows reporting to an agent at 1 s windows never flaps stale between reports, and is stale after 3 of its intervals', async () => {
  const agent = await agentAt(1);
  const tags = '|#service:shop,pid:4242,host:h';
  const t0 = Math.floor(Date.now() / 1000) * 1000 - 200_000;
  agent.flush(t0);
  // reports every 10 s, the fourth 6 s late (a GC pause, a busy loop): longer than the agent's 3 windows
  const reports = [0, 10_000, 20_000, 36_000, 46_000].map((d) => t0 + 500 + d);
  const last = reports.at(-1) as number;
  const seen: string[] = [];
  for (let t = t0 + 1000; t <= last + 45_000; t += 1000) {
    for (const r of reports)
      if (r > t - 1000 && r <= t) agent.ingest(`ekg.interval_ms:10000|g${tags}\nhttp.requests.2xx:200|c${tags}\nrss:1|g${tags}`, r);
    agent.flush(t);
    const i = await health(agent, t);
    if (t > (reports[0] as number) && t <= last + 10_000 + 29_000) {
      if (i?.health !== 'reporting') seen.push(`${(t - t0) / 1000}s: ${i?.health}`);
    }
    if (t === last + 10_000 + 33_000) {
      assert.equal(i?.health, 'stale', `3 missed intervals after the last report's interval ended: ${JSON.stringify(i)}`);
      assert.equal(i?.interval_ms, 10_000, 'the interval its samples describe is listed');
    }
  }
  assert.deepEqual(seen, [], 'reporting from the first report until 3 of its intervals are missed');
});

test('plain StatsD (no interval stated) is a moment: stale after 3 of the agent’s windows', async () => {
  const agent = await agentAt(1);
  const t0 = Math.floor(Date.now() / 1000) * 1000 - 60_000;
  agent.flush(t0);
  agent.ingest('rss:1|g|#service:shop,pid:4242', t0 + 500);
  agent.flush(t0 + 1000);
  assert.equal((await health(agent, t0 + 1000 + 3500))?.health, 'reporting');
  for (let t = t0 + 2000; t <= t0 + 6000; t += 1000) agent.flush(t);
  assert.equal((await health(agent, t0 + 1000 + 4500))?.health, 'stale');
});
