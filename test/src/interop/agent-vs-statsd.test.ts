import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Agent, loadConfig } from 'ekg-agent';
import { type EtsyFlush, startEtsy } from './etsy.js';

const dir = mkdtempSync(join(tmpdir(), 'ekg-corpus-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A deterministic corpus: counters (some sampled), gauges with deltas, timers, sets — in packets of up to 20 lines. */
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

test('the same corpus to the etsy StatsD server and to ekg-agent gives the same numbers', { timeout: 60_000 }, async () => {
  const etsy = startEtsy(dir, { flushInterval: 3000, percentThreshold: [50, 90, 99] });
  const port = etsy.port;
  after(() => etsy.proc.kill('SIGKILL'));

  const config = loadConfig(['--statsd', '127.0.0.1:0', '--http', 'off', '--flush-interval', '1h', '--store', 'off']);
  assert.notEqual(config, 'help');
  const agent = new Agent(config as Exclude<typeof config, 'help'>, []);
  await agent.start();
  after(() => agent.stop());

  // send everything just after an etsy flush, so it lands inside one 3 s window of etsy's; on a
  // slow machine the sending can straddle etsy's flush anyway: then the round is sent again
  const flushes = () => etsy.flushes().length;
  const sock = dgram.createSocket('udp4');
  after(() => sock.close());
  const packets = corpus();
  let got: EtsyFlush | undefined;
  let w: ReturnType<Agent['flush']> | undefined;
  for (let attempt = 0; attempt < 4 && !got; attempt++) {
    const before = flushes();
    for (let i = 0; i < 400 && flushes() === before; i++) await new Promise((r) => setTimeout(r, 10));
    const base = flushes();
    assert.ok(base > before, 'the etsy server flushed');
    agent.flush(); // the agent's window starts with etsy's
    const received = agent.self.metrics_received;
    for (const p of packets) {
      await new Promise<void>((r) => sock.send(p, port, '127.0.0.1', () => r()));
      await new Promise<void>((r) => sock.send(p, agent.addresses().udp as number, '127.0.0.1', () => r()));
    }
    for (let i = 0; i < 400 && flushes() === base; i++) await new Promise((r) => setTimeout(r, 25));
    const f = etsy.flushes()[base] as EtsyFlush;
    for (let i = 0; i < 100 && agent.self.metrics_received - received < 4000; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(agent.self.metrics_received - received, 4000);
    w = agent.flush();
    if (f.counters['statsd.metrics_received'] === 4000) got = f;
  }
  assert.ok(got && w, 'one round fell inside one etsy window');
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
