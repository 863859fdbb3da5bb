import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

test('from the repository root, `node --import ekg/register` resolves through the workspace link', () => {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'ekg/register',
      '--input-type=module',
      '-e',
      "const { registered } = await import('ekg'); console.log(registered()?.lifecycle ?? 'none');",
    ],
    { cwd: root, env, encoding: 'utf8', timeout: 10_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout.trim(), /^(starting|ready)$/);
  assert.equal(r.stderr, '');
});
