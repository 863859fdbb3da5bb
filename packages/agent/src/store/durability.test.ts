import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { SqliteStore } from './sqlite.js';

const cli = fileURLToPath(new URL('../cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ekg-durability-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function startAgent(port: number): Promise<ReturnType<typeof spawn>> {
  const proc = spawn(
    process.execPath,
    [cli, '--statsd', `127.0.0.1:${port}`, '--http', 'off', '--data', dir, '--flush-interval', '1s', '--console', 'off'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`agent did not start: ${out}`)), 15_000);
    const on = (d: Buffer) => {
      out += d;
      if (/ekg-agent: statsd/.test(out)) {
        clearTimeout(t);
        resolve(proc);
      }
    };
    proc.stdout.on('data', on);
    proc.stderr.on('data', on);
    proc.on('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`agent exited ${code}: ${out}`));
    });
  });
}

test('kill -9 at any moment leaves a database that opens, passes integrity_check and keeps what was written', {
  timeout: 120_000,
}, async () => {
  const port = 30000 + Math.floor(Math.random() * 20000);
  const sock = dgram.createSocket('udp4');
  after(() => sock.close());
  let seq = 0;
  const pump = setInterval(() => {
    // 200 gauges and 20 counters: every window writes a few hundred points
    for (let b = 0; b < 10; b++) {
      const lines: string[] = [];
      for (let k = 0; k < 20; k++) lines.push(`dur.m${(seq + k) % 200}:${seq}|g|#service:d,pid:1`, `dur.c${k}:1|c|#service:d,pid:1`);
      seq += 20;
      sock.send(lines.join('\n'), port, '127.0.0.1');
    }
  }, 5);
  after(() => clearInterval(pump));
  let before = 0;
  for (let round = 0; round < 6; round++) {
    const proc = await startAgent(port);
    const exited = new Promise((r) => proc.once('exit', r));
    // past the first window, then anywhere in a window (a write may be under way)
    await new Promise((r) => setTimeout(r, 1100 + Math.random() * 1500));
    proc.kill('SIGKILL');
    await exited;
    const db = new Database(join(dir, 'ekg.db'));
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok', `round ${round}`);
      // raw points: in head windows (one row a window) and, once compacted, in chunks
      const points = db
        .prepare('SELECT (SELECT ifnull(sum(n), 0) FROM head) + (SELECT ifnull(sum(n), 0) FROM chunks WHERE res = 0 AND series > 0)')
        .pluck()
        .get() as number;
      assert.ok(points >= before, `round ${round}: ${points} points after ${before}: nothing committed is lost`);
      assert.ok(points > before, `round ${round}: the agent wrote windows before it was killed`);
      before = points;
    } finally {
      db.close();
    }
  }
  // the file the last kill left opens as a store, and folding its head into chunks keeps every point
  const store = new SqliteStore({ path: join(dir, 'ekg.db'), flushInterval: 1000 });
  try {
    await store.maintain(Date.now() + 120_000);
    assert.equal(store.db.prepare('SELECT count(*) FROM head').pluck().get(), 0);
    assert.equal(store.points(), before);
  } finally {
    await store.close();
  }
});
