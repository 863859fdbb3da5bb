import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Aggregator } from '../aggregate/aggregator.js';
import { parsePacket } from '../ingest/statsd-parse.js';
import { HerokuExporter } from './heroku.js';

interface Body {
  counters?: Record<string, number>;
  gauges?: Record<string, number>;
}

async function receiver(): Promise<{ url: string; bodies: Body[]; close(): void }> {
  const bodies: Body[] = [];
  const server = createServer((req, res) => {
    let b = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (b += d));
    req.on('end', () => {
      bodies.push(JSON.parse(b) as Body);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/m`, bodies, close: () => server.close() };
}

async function until(fn: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function feed(agg: Aggregator, text: string): void {
  parsePacket(text, { sample: (s) => agg.add(s), bad: () => {} });
}

test('a Heroku period over four windows carries the whole period: count, sum, min, max, counters summed, the last gauge', async () => {
  const r = await receiver();
  const dir = mkdtempSync(join(tmpdir(), 'ekg-period-'));
  const e = new HerokuExporter({ url: r.url, period: 20_000, spoolDir: dir });
  const agg = new Aggregator();
  const t0 = 1_800_000_000_000;
  agg.flush(t0);
  try {
    // a timer fed 1…20, five values a window; a counter of 1 per value; a gauge at the window's number
    for (let w = 0; w < 4; w++) {
      for (let i = 1; i <= 5; i++) feed(agg, `job.ms:${w * 5 + i}|ms\njob.done:1|c`);
      feed(agg, `job.level:${w + 1}|g`);
      e.write(agg.flush(t0 + (w + 1) * 5000));
    }
    await until(() => r.bodies.length >= 1, 'the post');
    const b = r.bodies[0] as Body;
    assert.equal(b.counters?.['job.ms.count'], 20);
    assert.equal(b.counters?.['job.ms.sum'], 210);
    assert.equal(b.gauges?.['job.ms.min'], 1);
    assert.equal(b.gauges?.['job.ms.max'], 20);
    assert.equal(b.counters?.['job.done'], 20);
    assert.equal(b.gauges?.['job.level'], 4);
    // a SIGTERM mid-period: the stop posts the partial period
    feed(agg, 'job.done:7|c\njob.ms:100|ms');
    e.write(agg.flush(t0 + 25_000));
    await e.close();
    await until(() => r.bodies.length >= 2, 'the partial period');
    assert.equal(r.bodies[1]?.counters?.['job.done'], 7);
    assert.equal(r.bodies[1]?.gauges?.['job.ms.max'], 100);
  } finally {
    r.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
