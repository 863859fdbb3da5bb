import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inCi, need, which } from './system.js';

const missing = 'ekg-no-such-program-anywhere';

test('a missing program skips with the reason locally, and fails in CI', () => {
  assert.equal(which(missing), undefined);
  assert.match(need(missing, {}) as string, /ekg-no-such-program-anywhere is not installed/);
  assert.match(need(missing, { CI: 'false' }) as string, /is not installed/);
  for (const CI of ['true', '1', 'yes'])
    assert.throws(() => need(missing, { CI }), /CI is set and ekg-no-such-program-anywhere is not installed/);
  assert.equal(inCi({ CI: '' }), false);
  assert.equal(inCi({ CI: '0' }), false);
});

test('a program on the PATH is found: no skip, no failure, in CI or not', () => {
  assert.ok(which('sh'));
  assert.equal(need('sh', {}), false);
  assert.equal(need('sh', { CI: 'true' }), false);
  assert.equal(which('sh; echo injected'), undefined, 'the name is an argument, not shell text');
});
