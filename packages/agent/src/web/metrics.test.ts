import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Agent } from '../agent.js';
import type { FlushResult } from '../aggregate/aggregator.js';
import { loadConfig } from '../config.js';
import { renderAgentMetrics } from './metrics.js';

const dir = mkdtempSync(join(tmpdir(), 'ekg-metrics-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function agentOff(): Promise<Agent> {
  const c = loadConfig(['--statsd', 'off', '--http', 'off', '--store', 'off', '--data', dir, '--console', 'off'], {});
  assert.ok(c !== 'help');
  const agent = new Agent(c, []);
  await agent.start({ timer: false });
  after(() => agent.stop());
  return agent;
}

test("/metrics renders a window's series once: asked again during the same window, it answers the same text without reading them", async () => {
  const agent = await agentOff();
  agent.ingest(Array.from({ length: 100 }, (_, i) => `m.big:1|g|#pid:${i}`).join('\n'));
  const w = agent.flush();
  const first = renderAgentMetrics(agent);
  assert.match(first, /^m_big\{pid="7"\} 1$/m);
  // a window does not change once flushed; were it read again, the planted series would show
  (w.series as unknown[]).push({ name: 'planted', kind: 'gauge', tags: '', value: 1 });
  assert.equal(renderAgentMetrics(agent), first);
  agent.ingest('m.next:2|g');
  agent.flush();
  assert.match(renderAgentMetrics(agent), /^m_next 2$/m);
});

test('/metrics spells values that are not finite as Prometheus does: +Inf, -Inf, NaN', async () => {
  const agent = await agentOff();
  const last = {
    series: [
      { name: 'up', kind: 'gauge', tags: '', value: Number.POSITIVE_INFINITY },
      { name: 'down', kind: 'gauge', tags: '', value: Number.NEGATIVE_INFINITY },
      { name: 'lost', kind: 'counter', tags: '', value: Number.NaN },
    ],
  } as unknown as FlushResult;
  const text = renderAgentMetrics({ self: agent.self, aggregator: agent.aggregator, exporters: [], alerts: undefined, last });
  assert.match(text, /^up \+Inf$/m);
  assert.match(text, /^down -Inf$/m);
  assert.match(text, /^lost_total NaN$/m);
  assert.doesNotMatch(text, /Infinity/);
});
