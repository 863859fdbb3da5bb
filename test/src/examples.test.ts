import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { until } from './interop/processes.js';

const examples = fileURLToPath(new URL('../../examples/dist/', import.meta.url));

for (const fw of ['node', 'express', 'fastify', 'koa', 'hono']) {
  test(`examples/${fw} runs and serves its app and ekg at /ops`, { timeout: 120_000 }, async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0' };
    delete env.NODE_TEST_CONTEXT;
    const child = spawn(process.execPath, [`${examples}${fw}.js`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      const port = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (d) => {
          out += d;
          const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
          if (m) resolve(m[1] as string);
        });
        child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      const base = `http://127.0.0.1:${port}`;
      const app = await fetch(`${base}/`);
      assert.equal(app.status, 200);
      assert.match(await app.text(), /hello from/);
      // 'heartbeat:NG' is right while the example's vitals still start: asked until it settles
      const hb = await until(
        async () => {
          const t = await (await fetch(`${base}/ops/heartbeat`)).text();
          return t === 'heartbeat:ok' && t;
        },
        60_000,
        'heartbeat:ok',
      );
      assert.equal(hb, 'heartbeat:ok');
      const stats = (await (await fetch(`${base}/ops/stats`)).json()) as Record<string, unknown>;
      assert.deepEqual(Object.keys(stats), ['runtime', 'http', 'queue', 'ekg']);
    } finally {
      child.kill('SIGKILL');
    }
  });
}
