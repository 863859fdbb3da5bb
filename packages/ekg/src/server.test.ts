import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe } from 'node:test';
import { createEkg, type Ekg } from './ekg.js';
import { run } from './testing/child.js';
import { contractTests } from './testing/contract-suite.js';
import { baseOf, closeServer } from './testing/http.js';

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
