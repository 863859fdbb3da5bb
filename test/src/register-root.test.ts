import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

test('from the repository root, `node --import ekg-vitals/register` resolves through the workspace link', () => {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'ekg-vitals/register',
      '--input-type=module',
      '-e',
      "const { registered } = await import('ekg-vitals'); console.log(registered()?.lifecycle ?? 'none');",
    ],
    { cwd: root, env, encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout.trim(), /^(starting|ready)$/);
  assert.equal(r.stderr, '');
});

test('from the repository root, the ekg-agent bin is linked and runs', () => {
  const bin = `${root}node_modules/.bin/ekg-agent`;
  const r = spawnSync(bin, ['--help'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^ekg-agent: receives StatsD and pushes/);
  const bad = spawnSync(bin, ['--flush-interval', 'soon'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  assert.equal(bad.status, 2);
  // one line naming the option and the value (the wording belongs to config.ts)
  assert.match(bad.stderr, /^ekg-agent: (--)?flush-interval: "soon" is not a duration[^\n]*\n$/);
});
