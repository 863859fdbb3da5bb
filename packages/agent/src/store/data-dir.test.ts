import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startBin, until } from '../testing/bin.js';
import { LOCK_FILE } from './lock.js';

/**
 * The data directory through the real bin: one agent per directory (the second is refused, naming
 * the holder's pid; a dead holder's lock is taken over), a read-only or foreign database named as
 * such with what to do, and windows the store could not write counted and logged at exit.
 */
const root = mkdtempSync(join(tmpdir(), 'ekg-data-dir-'));
const immutable: string[] = [];
after(() => {
  for (const f of immutable) spawnSync('chattr', ['-i', f]);
  rmSync(root, { recursive: true, force: true });
});

const agentIn = (data: string, ...flags: string[]) =>
  startBin(([s, h]) => ['--statsd', String(s), '--http', String(h), '--console', 'off', '--data', data, ...flags]);

test('a second agent on the same data directory is refused, naming the directory and the holder pid', { timeout: 30_000 }, async () => {
  const data = join(root, 'shared');
  const first = await agentIn(data);
  try {
    assert.equal(first.code, null, first.out());
    assert.equal(readFileSync(join(data, LOCK_FILE), 'utf8').split('\n')[0], String(first.pid));
    const second = await agentIn(data);
    assert.equal(second.code, 1, second.out());
    assert.match(
      second.out(),
      new RegExp(
        `the data directory ${data.replace(/[/\\.]/g, '\\$&')} is in use by another ekg-agent \\(pid ${first.pid}\\); stop that one`,
      ),
    );
  } finally {
    await first.stop();
  }
  assert.equal(existsSync(join(data, LOCK_FILE)), false, 'the lock is released at exit');
});

test('the lock of an agent that died (kill -9) is taken over at once; a pid file left behind does not matter', {
  timeout: 30_000,
}, async () => {
  const data = join(root, 'stale');
  const first = await agentIn(data);
  assert.equal(first.code, null, first.out());
  await first.stop('SIGKILL');
  assert.equal(readFileSync(join(data, LOCK_FILE), 'utf8').split('\n')[0], String(first.pid), 'the dead one left its pid file');
  const a = await agentIn(data);
  try {
    assert.equal(a.code, null, a.out());
    assert.equal(readFileSync(join(data, LOCK_FILE), 'utf8').split('\n')[0], String(a.pid));
  } finally {
    await a.stop();
  }
  // a pid file naming a live process (this one) without the lock held is stale too
  writeFileSync(join(data, LOCK_FILE), `${process.pid}\n`);
  const b = await agentIn(data);
  assert.equal(b.code, null, b.out());
  await b.stop();
});

test('a read-only database and a foreign file are named as such, with what to do', { timeout: 30_000 }, async (t) => {
  const data = join(root, 'ro');
  const a = await agentIn(data);
  await a.stop();
  const db = join(data, 'ekg.db');
  // root writes through a 0444 mode: the file is made immutable instead
  if (process.getuid?.() === 0) {
    if (spawnSync('chattr', ['+i', db]).status !== 0) {
      if (process.env.CI === 'true') assert.fail('chattr +i failed: cannot make a read-only file as root');
      t.skip('running as root without chattr: cannot make a read-only file');
      return;
    }
    immutable.push(db);
  } else chmodSync(db, 0o444);
  const ro = await agentIn(data);
  assert.equal(ro.code, 1, ro.out());
  assert.match(ro.out(), /ekg\.db is read-only \((EACCES|EPERM)\); ekg-agent writes its windows there: make it writable/);
  assert.doesNotMatch(ro.out(), /cannot be read as a database|move it away/);
  assert.equal(existsSync(join(data, LOCK_FILE)), false, 'a refused start leaves no lock');

  const other = join(root, 'foreign');
  mkdirSync(other);
  writeFileSync(join(other, 'ekg.db'), 'name,value\nx,1\n');
  const f = await agentIn(other);
  assert.equal(f.code, 1, f.out());
  assert.match(f.out(), /ekg\.db is not a SQLite database \(corrupt, or another program's file\); ekg-agent will not overwrite it/);
});

test('SIGTERM while the store holds windows it could not write: the windows lost are counted and logged', { timeout: 60_000 }, async () => {
  // a 64 KiB cap on the file: a window of 3000 series does not fit, as on a full disk
  const a = await agentIn(join(root, 'full'), '--store-max-size', '64k', '--flush-interval', '1s');
  try {
    assert.equal(a.code, null, a.out());
    const [s, h] = a.ports as [number, number];
    const c = net.connect(s, '127.0.0.1');
    c.end(`${Array.from({ length: 3000 }, (_, i) => `fill.series_${i}:1|c`).join('\n')}\n`);
    await until(
      async () => {
        const self = (await (await fetch(`http://127.0.0.1:${h}/api/v1/self`)).json()) as { store?: { windows_held: number } };
        return (self.store?.windows_held ?? 0) >= 1;
      },
      'the store to hold a window',
      30_000,
    );
  } finally {
    assert.equal(await a.stop('SIGTERM'), 0);
  }
  assert.match(a.out(), /ekg-agent: store: \d+ windows? held in memory could not be written \(.+\) and (is|are) lost at exit/);
});
