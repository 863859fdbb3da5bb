import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { until } from './interop/processes.js';

const START = fileURLToPath(new URL('../../examples/dist/start.js', import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

test('npm start: the demo app reports into the agent, whose dashboard and API show it; Ctrl-C stops both', {
  timeout: 180_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ekg-start-'));
  const [statsd, http] = [await freePort(), await freePort()];
  const proc = spawn(process.execPath, [START], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    // the shortest forms a user types: a bare port for each
    env: { ...process.env, EKG_AGENT_STATSD: String(statsd), EKG_AGENT_HTTP: String(http), PORT: '0' },
  });
  let out = '';
  proc.stdout?.on('data', (d) => {
    out += d;
  });
  proc.stderr?.on('data', (d) => {
    out += d;
  });
  try {
    const base = `http://127.0.0.1:${http}`;
    await until(async () => out.includes('the dashboard:'), 60_000, 'the start lines');
    assert.match(out, new RegExp(`the dashboard: ${base}/`));
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<main id="view"/);
    // within a few 2 s windows, the demo app is an instance with its vital signs stored
    const inst = await until(
      async () => {
        const r = (await (await fetch(`${base}/api/v1/instances`)).json()) as { instances: Array<{ service?: string; health: string }> };
        return r.instances.find((i) => i.service === 'example');
      },
      60_000,
      'the demo app in /api/v1/instances',
    );
    assert.equal(inst.health, 'reporting');
    await until(
      async () => {
        const r = (await (await fetch(`${base}/api/v1/query?name=runtime.eventloop.delay.p99&from=now-1m&by=service`)).json()) as {
          series: Array<{ values: Array<number | null> }>;
        };
        return (r.series[0]?.values.filter((v) => v !== null).length ?? 0) >= 2;
      },
      60_000,
      'event-loop delay in the store',
    );
    const exited = new Promise<number | null>((r) => proc.once('exit', r));
    proc.kill('SIGINT');
    assert.equal(await exited, 0, out);
  } finally {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
