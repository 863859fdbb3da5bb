import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/ekg-agent.js', import.meta.url));

test('the start line names every listener as bound (IPv6 in brackets), the store, each scrape target and exporter, and the alerts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ekg-agent-start-'));
  try {
    const cfg = join(dir, 'agent.yaml');
    writeFileSync(
      cfg,
      'scrape:\n  - url: http://127.0.0.1:9/stats\nexporters:\n  - type: otlp\n    url: http://127.0.0.1:4318/v1/metrics\nnotify:\n  - type: webhook\n    url: http://127.0.0.1:9/hook\n',
    );
    const sock = join(dir, 's.sock');
    const p = spawn(
      process.execPath,
      [bin, '--config', cfg, '--statsd', '127.0.0.1:0', '--http', '[::1]:0', '--statsd-unix', sock, '--data', dir],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    const line = await new Promise<string>((resolve, reject) => {
      p.stdout.on('data', () => {
        const m = /^ekg-agent: statsd .*$/m.exec(out);
        if (m) resolve(m[0]);
      });
      p.on('exit', () => reject(new Error(`exited: ${out}`)));
    });
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
    assert.match(line, /^ekg-agent: statsd udp 127\.0\.0\.1:\d+ \+ tcp 127\.0\.0\.1:\d+ \+ unix \S+s\.sock, /);
    assert.match(line, /, http http:\/\/\[::1\]:\d+, /);
    assert.ok(line.includes(`, store sqlite ${join(dir, 'ekg.db')}, `), line);
    assert.match(line, /, scrape http:\/\/127\.0\.0\.1:9\/stats, /);
    assert.match(line, /, export otlp\b/);
    assert.match(line, /, alerts \d+ rules → webhook, window 10s$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
