import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { Core } from './core.js';
import { HeadWindow } from './head.js';
import { SqliteStore } from './sqlite.js';

const cli = fileURLToPath(new URL('../cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ekg-durability-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Starts the agent on a port the system picks (a fixed one may be taken on a shared machine); resolves with the UDP port. */
function startAgent(): Promise<{ proc: ReturnType<typeof spawn>; port: number }> {
  const proc = spawn(
    process.execPath,
    [cli, '--statsd', '127.0.0.1:0', '--http', 'off', '--data', dir, '--flush-interval', '1s', '--console', 'off'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`agent did not start: ${out}`)), 15_000);
    const on = (d: Buffer) => {
      out += d;
      const m = /ekg-agent: statsd \S+ 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve({ proc, port: Number(m[1]) });
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
  let port = 0;
  const sock = dgram.createSocket('udp4');
  after(() => sock.close());
  let seq = 0;
  const pump = setInterval(() => {
    // 200 gauges and 20 counters: every window writes a few hundred points
    for (let b = 0; b < 10; b++) {
      const lines: string[] = [];
      for (let k = 0; k < 20; k++) lines.push(`dur.m${(seq + k) % 200}:${seq}|g|#service:d,pid:1`, `dur.c${k}:1|c|#service:d,pid:1`);
      seq += 20;
      if (port) sock.send(lines.join('\n'), port, '127.0.0.1');
    }
  }, 5);
  after(() => clearInterval(pump));
  let before = 0;
  // raw points: in head windows (one row a window) and, once compacted, in chunks
  const count = (db: Database.Database): number =>
    db
      .prepare('SELECT (SELECT ifnull(sum(n), 0) FROM head) + (SELECT ifnull(sum(n), 0) FROM chunks WHERE res = 0 AND series > 0)')
      .pluck()
      .get() as number;
  // what a reader sees committed while the agent runs (0 until the file and its tables exist)
  const committed = (): number => {
    let db: Database.Database | undefined;
    try {
      db = new Database(join(dir, 'ekg.db'), { readonly: true, fileMustExist: true });
      return count(db);
    } catch {
      return 0;
    } finally {
      db?.close();
    }
  };
  for (let round = 0; round < 6; round++) {
    const started = await startAgent();
    const proc = started.proc;
    port = started.port;
    const exited = new Promise((r) => proc.once('exit', r));
    // until this run has committed a window (however slow the machine), then anywhere in a window (a write may be under way)
    for (const end = Date.now() + 60_000; committed() <= before; await new Promise((r) => setTimeout(r, 50)))
      if (Date.now() > end) throw new Error(`round ${round}: no new window committed after 60 s (${before} points)`);
    await new Promise((r) => setTimeout(r, Math.random() * 1500));
    proc.kill('SIGKILL');
    await exited;
    const db = new Database(join(dir, 'ekg.db'));
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok', `round ${round}`);
      const points = count(db);
      assert.ok(points >= before, `round ${round}: ${points} points after ${before}: nothing committed is lost`);
      assert.ok(points > before, `round ${round}: the agent wrote windows before it was killed`);
      before = points;
    } finally {
      db.close();
    }
  }
  // the file the last kill left opens as a store, and folding its head into chunks keeps every
  // point (a late timer can give two windows one end, in seconds: the later one stands, as it did
  // when a row per point was replaced)
  const store = new SqliteStore({ path: join(dir, 'ekg.db'), flushInterval: 1000 });
  try {
    const distinct = new Set<string>();
    const core = (store as unknown as { core: Core }).core;
    for (const r of store.db.prepare('SELECT seq, t, d FROM head').all() as Array<{ seq: number; t: number; d: number }>) {
      const w = new HeadWindow(r.seq, r.t, r.d, core.headBytes(r.seq) as Uint8Array);
      for (const id of [...w.lids, ...w.dids]) distinct.add(`${id}@${r.t}`);
    }
    assert.ok(distinct.size > 0 && distinct.size <= before);
    await store.maintain(Date.now() + 120_000);
    assert.equal(store.db.prepare('SELECT count(*) FROM head').pluck().get(), 0);
    assert.equal(store.points(), distinct.size);
  } finally {
    await store.close();
  }
});
