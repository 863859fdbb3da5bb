import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createEkg, type Ekg } from '../ekg.js';
import { run } from '../testing/child.js';
import { contractTests } from '../testing/contract-suite.js';
import { baseOf, closeServer } from '../testing/http.js';

const TOKEN = 'side-s3cret';

describe('side server (main thread)', () => {
  let ekg: Ekg;
  let server: Server;
  before(async () => {
    ekg = createEkg({ token: TOKEN, signals: false, http: false });
    await ekg.ready();
    server = (await ekg.listen({ port: 0, prefix: '/ops' })) as Server;
  });
  after(async () => {
    await closeServer(server);
    await ekg.close();
  });
  contractTests(() => ({ base: baseOf(server), prefix: '/ops', token: TOKEN, healthy: true }));
});

/** Waits for a condition by asking again, never by sleeping a fixed time. */
async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

describe('side server in the watchdog thread', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ekg-side-'));
  const release = join(dir, 'release');
  const app = run('stall-app', { args: [release, TOKEN] });
  let base = '';
  before(async () => {
    base = `http://127.0.0.1:${(await app.line(/listening (\d+)/))[1]}`;
  });
  after(async () => {
    writeFileSync(release, '');
    app.proc.kill('SIGKILL');
    await app.exit;
    rmSync(dir, { recursive: true, force: true });
  });

  describe('while the main thread runs', () => {
    contractTests(() => ({ base, prefix: '/ops', token: TOKEN, healthy: true }));
  });

  describe('while the main thread is stalled', () => {
    before(async () => {
      app.proc.kill('SIGUSR2');
      await app.line(/BLOCK/);
      // the watchdog has noticed once /heartbeat says so
      await until('the stall to be seen', async () => {
        const r = await fetch(`${base}/ops/heartbeat`, { signal: AbortSignal.timeout(5000) });
        await r.arrayBuffer();
        return r.status === 503 ? true : undefined;
      });
    });
    after(async () => {
      writeFileSync(release, '');
      await app.line(/FREE/);
    });
    contractTests(() => ({ base, prefix: '/ops', token: TOKEN, healthy: false, stalled: true }));
  });

  describe('after the stall', () => {
    contractTests(() => ({ base, prefix: '/ops', token: TOKEN, healthy: true }));
    before(async () => {
      await until('the loop to run again', async () => {
        const r = await fetch(`${base}/ops/heartbeat`, { signal: AbortSignal.timeout(5000) });
        await r.arrayBuffer();
        return r.status === 200 ? true : undefined;
      });
      assert.match(app.stdout(), /FREE/);
    });
  });
});

describe('side server in the watchdog thread: answers without a round trip to the main thread', () => {
  let ekg: Ekg;
  let base = '';
  let block = 0;
  let checks = 0;
  let failing = false;
  // ekg keeps nothing alive (its worker is unref'd); the test does while it runs
  const keep = setInterval(() => {}, 60_000);
  before(async () => {
    ekg = createEkg({
      token: TOKEN,
      signals: false,
      checkCache: 60_000,
      // no window closes mid-test: a closing window would ask the main thread, which the spy counts
      interval: 3_600_000,
      watchdog: { stallThreshold: 200 },
      vitals: [
        {
          name: 'db',
          stats: () => ({ pool: { size: 10 } }),
          check: () => {
            checks++;
            const end = Date.now() + block;
            while (Date.now() < end) {
              // a check that blocks the loop
            }
            return failing ? { ok: false, detail: 'down' } : { ok: true };
          },
        },
      ],
    });
    await ekg.ready();
    await ekg.listen({ port: 0, prefix: '/ops' });
    base = `http://127.0.0.1:${ekg.watchdog?.sidePort}`;
    await ekg.flush();
  });
  after(async () => {
    clearInterval(keep);
    await ekg.close();
  });

  /** One request; an answer given during a moment's stall of this busy test process is asked again unless `stalledOk`. */
  const hit = async (path: string, headers: Record<string, string> = {}, stalledOk = false) => {
    for (let attempt = 0; ; attempt++) {
      const r = await fetch(base + path, { headers, signal: AbortSignal.timeout(10_000) });
      const out = { status: r.status, body: await r.text(), stalled: r.headers.get('x-ekg-stalled-ms') };
      if (stalledOk || out.stalled === null || attempt >= 100) return out;
      await new Promise((res) => setTimeout(res, 50));
    }
  };
  const auth = { authorization: `Bearer ${TOKEN}` };

  test('/stats, /metrics (text, OpenMetrics, gzip), /live and a cached /heartbeat never reach the main thread', async () => {
    // the first probe runs the check (live, on the main thread); its verdict is then posted
    assert.equal((await hit('/ops/heartbeat')).status, 200);
    await until('the verdict to be posted', async () => ((await hit('/ops/heartbeat')).status === 200 ? true : undefined));
    const asked: string[] = [];
    const spy = ekg as unknown as Record<string, (...a: unknown[]) => unknown>;
    const originals: Record<string, (...a: unknown[]) => unknown> = {};
    for (const m of ['health', 'live', 'peek', 'snapshot', 'statsText', 'metricsText']) {
      const o = spy[m] as (...a: unknown[]) => unknown;
      originals[m] = o;
      spy[m] = (...a: unknown[]) => {
        asked.push(m);
        return o.apply(ekg, a);
      };
    }
    try {
      for (let i = 0; i < 20; i++) {
        assert.equal((await hit('/ops/heartbeat')).body, 'heartbeat:ok');
        assert.equal((await hit('/ops/ready', { accept: 'application/json' })).status, 200);
        assert.equal((await hit('/ops/live')).body, 'live:ok');
        assert.equal((await hit('/ops/stats', auth)).status, 200);
        assert.match((await hit('/ops/metrics', auth)).body, /^ekg_db_pool_size 10$/m);
        assert.match((await hit('/ops/metrics', { ...auth, accept: 'application/openmetrics-text' })).body, /# EOF\n$/);
        assert.match((await hit('/ops/metrics', { ...auth, 'accept-encoding': 'gzip' })).body, /^ekg_db_pool_size 10$/m);
      }
      assert.deepEqual(asked, [], 'the main thread was asked');
    } finally {
      Object.assign(spy, originals);
    }
    assert.equal(checks, 1, 'one check run, its verdict reused');
  });

  test('a change of health state reaches the side server at once: setReady, then back', async () => {
    ekg.setReady(false, 'warming caches');
    const r = await until('503', async () => {
      const x = await hit('/ops/ready');
      return x.status === 503 ? x : undefined;
    });
    assert.match(r.body, /warming caches/);
    assert.equal((await hit('/ops/heartbeat')).body, 'heartbeat:NG');
    ekg.setReady(true);
    await until('200', async () => ((await hit('/ops/heartbeat')).status === 200 ? true : undefined));
  });

  test('a live check that blocks the main thread is answered from the watchdog thread once the loop stalls', async () => {
    // a new check (added now) must run live: the side server hands the probe to the main thread,
    // whose loop then blocks in the check for 1 s; the watchdog's timer answers for it
    block = 1000;
    failing = false;
    await ekg.addVital({ name: 'slow', check: () => ({ ok: true }) });
    const r = await hit('/ops/heartbeat', {}, true);
    block = 0;
    assert.equal(r.status, 503);
    assert.equal(r.body, 'heartbeat:NG');
    assert.ok(Number(r.stalled) > 0, 'answered during the stall');
    await until('healthy again', async () => ((await hit('/ops/heartbeat')).status === 200 ? true : undefined));
  });
});
