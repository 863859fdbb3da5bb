import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Agent, loadConfig } from 'ekg-agent';
import { startEtsy } from './etsy.js';

const dir = mkdtempSync(join(tmpdir(), 'ekg-corpus-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A deterministic corpus: counters (some sampled), gauges with deltas, timers, sets — in chunks of up to 20 lines. */
function corpus(): string[] {
  let s = 42;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const lines: string[] = [];
  for (let i = 0; i < 4000; i++) {
    const k = i % 4;
    if (k === 0) lines.push(`corpus.count.${i % 7}:${1 + Math.floor(rand() * 5)}|c${rand() < 0.3 ? '|@0.5' : ''}`);
    else if (k === 1)
      lines.push(
        i % 20 === 1
          ? `corpus.gauge.${i % 3}:${Math.floor(rand() * 100)}|g`
          : `corpus.gauge.${i % 3}:${rand() < 0.5 ? '+' : '-'}${Math.floor(rand() * 3)}|g`,
      );
    else if (k === 2) lines.push(`corpus.timer.${(i >> 2) % 2}:${(1 + rand() * 500).toFixed(3)}|ms`);
    else lines.push(`corpus.set:user${Math.floor(rand() * 300)}|s`);
  }
  const packets: string[] = [];
  for (let i = 0; i < lines.length; i += 20) packets.push(lines.slice(i, i + 20).join('\n'));
  return packets;
}

/** Writes `text` on one TCP connection and resolves once it is handed to the kernel and closed. */
function sendTcp(port: number, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = connect(port, '127.0.0.1', () => c.end(text));
    c.on('close', () => resolve());
    c.on('error', reject);
  });
}

async function until(cond: () => Promise<boolean> | boolean, what: () => string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Aggregation is the subject, not loss: the corpus goes over TCP to both servers, each one's own
// count of metric lines acknowledges it, and then each closes one window on demand (the agent's
// flush(), etsy's exit flush), so neither a timer nor the wall clock splits the corpus.
test('the same corpus to the etsy StatsD server and to ekg-agent gives the same numbers', { timeout: 120_000 }, async () => {
  const etsy = await startEtsy(dir, { transport: 'tcp', config: { flushInterval: 3_600_000, percentThreshold: [50, 90, 99] } });
  after(() => etsy.proc.kill('SIGKILL'));

  const config = loadConfig(['--statsd', '127.0.0.1:0', '--http', 'off', '--flush-interval', '1h', '--store', 'off']);
  assert.notEqual(config, 'help');
  const agent = new Agent(config as Exclude<typeof config, 'help'>, []);
  await agent.start({ timer: false });
  after(() => agent.stop());

  const text = `${corpus().join('\n')}\n`;
  await Promise.all([sendTcp(etsy.port, text), sendTcp(agent.addresses().tcp as number, text)]);
  let etsyGot = 0;
  await until(
    async () => {
      etsyGot = await etsy.received();
      return etsyGot >= 4000 && agent.self.metrics_received >= 4000;
    },
    () => `both servers to take in 4000 lines (etsy ${etsyGot}, agent ${agent.self.metrics_received})`,
  );
  const w = agent.flush();
  const got = await etsy.stop();
  assert.ok(got, `etsy flushed as it exited: ${etsy.log()}`);
  assert.equal(got.counters['statsd.metrics_received'], 4000);
  assert.equal(agent.self.metrics_received, 4000);
  assert.equal(agent.self.bad_lines, 0);
  assert.equal(got.counters['statsd.bad_lines_seen'], 0);
  const ours = new Map(w.series.map((s) => [s.name, s]));
  let compared = 0;
  for (const [k, v] of Object.entries(got.counters)) {
    if (!k.startsWith('corpus.')) continue;
    assert.ok(Math.abs((ours.get(k)?.value ?? Number.NaN) - v) < 1e-9, `counter ${k}: etsy ${v}, agent ${ours.get(k)?.value}`);
    compared++;
  }
  for (const [k, v] of Object.entries(got.gauges)) {
    if (!k.startsWith('corpus.')) continue;
    assert.equal(ours.get(k)?.value, v, `gauge ${k}`);
    compared++;
  }
  assert.equal(ours.get('corpus.set')?.value, got.sets['corpus.set'], 'set distinct count');
  for (const [k, t] of Object.entries(got.timers)) {
    if (!k.startsWith('corpus.')) continue;
    const s = ours.get(k);
    assert.equal(s?.count, t.count, `timer count ${k}`);
    assert.ok(Math.abs((s?.sum ?? 0) - (t.sum as number)) < 1e-6 * (t.sum as number), `timer sum ${k}`);
    assert.equal(s?.max, t.upper);
    assert.equal(s?.min, t.lower);
    for (const [q, key] of [
      ['p50', 'upper_50'],
      ['p90', 'upper_90'],
      ['p99', 'upper_99'],
    ] as const) {
      const e = t[key] as number;
      const got = s?.quantiles?.[q] as number;
      assert.ok(Math.abs(got - e) <= e * 0.0101, `${k} ${q}: etsy ${e}, agent ${got}`);
    }
    compared++;
  }
  assert.ok(compared >= 12, `compared ${compared} series`);
});
