import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { parseDuration, parseSize, parseSwitch } from './duration.js';
import { readEnv } from './env.js';
import { isPackageManager } from './register.js';
import { packageDir } from './testing/child.js';

test('durations: a bare number is seconds in text, milliseconds as a JavaScript number; junk is NaN', () => {
  assert.equal(parseDuration('10'), 10_000);
  assert.equal(parseDuration('10s'), 10_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('1.5m'), 90_000);
  assert.equal(parseDuration('15d'), 15 * 86_400_000);
  assert.equal(parseDuration('1y'), 365 * 86_400_000);
  assert.equal(parseDuration(5000), 5000);
  for (const bad of ['', 'soon', '-1s', '10 sec', '1e3', `${'9'.repeat(400)}`, 'Infinity'])
    assert.ok(Number.isNaN(parseDuration(bad)), bad);
});

test('sizes: k, m, g, t are powers of 1024 in any spelling; a bare number is bytes', () => {
  assert.equal(parseSize('8m'), 8 << 20);
  assert.equal(parseSize('8MiB'), 8 << 20);
  assert.equal(parseSize('8mb'), 8 << 20);
  assert.equal(parseSize('2g'), 2 ** 31);
  assert.equal(parseSize('64k'), 65536);
  assert.equal(parseSize('4096'), 4096);
  assert.equal(parseSize('100b'), 100);
  for (const bad of ['', 'big', '8x', '-1m', `${'9'.repeat(400)}`]) assert.ok(Number.isNaN(parseSize(bad)), bad);
});

test('switches: 1/true/yes/on and 0/false/no/off in any case; anything else is undefined', () => {
  for (const v of ['1', 'true', 'YES', 'on', ' On ']) assert.equal(parseSwitch(v), true, v);
  for (const v of ['0', 'false', 'no', 'OFF']) assert.equal(parseSwitch(v), false, v);
  for (const v of ['2', 'nope', '']) assert.equal(parseSwitch(v), undefined, v);
});

test('EKG_INTERVAL=5 is five seconds; EKG_WATCHDOG=no and EKG_DISABLE=yes mean what they say; junk is one line and the default', (t) => {
  const lines: string[] = [];
  t.mock.method(process.stderr, 'write', (s: string) => {
    lines.push(String(s));
    return true;
  });
  assert.equal(readEnv({ EKG_INTERVAL: '5' }).interval, 5000);
  assert.equal(readEnv({ EKG_WATCHDOG: 'no' }).watchdog, false);
  assert.equal(readEnv({ EKG_DISABLE: 'yes' }).disabled, true);
  assert.equal(lines.length, 0, lines.join(''));
  assert.equal(readEnv({ EKG_WATCHDOG: 'nein' }).watchdog, true);
  assert.equal(readEnv({ EKG_DISABLE: 'please' }).disabled, false);
  assert.equal(lines.length, 2, lines.join(''));
  assert.match(lines[0] ?? '', /EKG_WATCHDOG="nein" is not valid: expected 1, true, yes or on; 0, false, no or off/);
});

test('package managers are recognised by their script path', () => {
  for (const p of [
    '/usr/lib/node_modules/npm/bin/npm-cli.js',
    '/usr/bin/npm',
    '/usr/local/bin/npx',
    '/usr/lib/node_modules/npm/bin/npx-cli.js',
    '/home/u/.cache/node/corepack/v1/pnpm/9.1.0/bin/pnpm.cjs',
    '/usr/local/lib/node_modules/yarn/bin/yarn.js',
    '/usr/local/lib/node_modules/corepack/dist/corepack.js',
  ])
    assert.equal(isPackageManager(p), true, p);
  for (const p of ['/srv/app/server.js', '/srv/app/dist/npm-helpers.js', '/srv/yarnball/index.js', undefined])
    assert.equal(isPackageManager(p), false, String(p));
});

test("NODE_OPTIONS='--import …/register' npm run x attaches ekg to the script npm starts, not to npm", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ekg-npm-'));
  try {
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'probe', private: true, scripts: { x: 'node -e 0' } }));
    const register = pathToFileURL(join(packageDir, 'dist/register.js')).href;
    // a bad EKG_INTERVAL makes every process that loads ekg say so once on stderr: count them
    const stderr = await new Promise<string>((resolve, reject) => {
      const env: Record<string, string | undefined> = { ...process.env, NODE_OPTIONS: `--import ${register}`, EKG_INTERVAL: 'bogus' };
      delete env.NODE_TEST_CONTEXT;
      execFile('npm', ['run', '--silent', 'x'], { cwd: dir, env, timeout: 60_000 }, (err, _out, errOut) =>
        err ? reject(Object.assign(err, { stderr: errOut })) : resolve(errOut),
      );
    });
    const ekg = stderr.split('\n').filter((l) => l.includes('EKG_INTERVAL="bogus"'));
    assert.equal(ekg.length, 1, stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
