import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rawHeader } from './contract.js';

test('rawHeader: names match in any case, repeated ones join, and a name of the same length that differs does not match', () => {
  const raw = ['Host', 'x', 'ACCEPT', 'text/plain', 'Accept-Encoding', 'gzip', 'accept', 'application/json', 'Access', 'no'];
  assert.equal(rawHeader(raw, 'accept'), 'text/plain, application/json');
  assert.equal(rawHeader(raw, 'accept-encoding'), 'gzip');
  assert.equal(rawHeader(raw, 'host'), 'x');
  // same length as `accept`, one letter off; and `-` against a character that OR 0x20 would not turn into it
  assert.equal(rawHeader(['Acceps', 'a', 'X-Ab', 'b', 'X\rAb', 'c'], 'accept'), undefined);
  assert.equal(rawHeader(['X\rAb', 'c'], 'x-ab'), undefined);
  assert.equal(rawHeader([], 'accept'), undefined);
});
