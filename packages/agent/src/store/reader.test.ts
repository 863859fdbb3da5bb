import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tagsMatch } from './reader.js';

test("tags=constructor:* (or toString, __proto__) matches only series that carry that tag, not every series through Object's prototype", () => {
  const have = { host: 'a', service: 'shop' };
  for (const k of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    assert.equal(tagsMatch(have, { [k]: '*' }), false, k);
    assert.equal(tagsMatch({ ...have, [k]: 'x' }, { [k]: '*' }), true, k);
  }
  assert.equal(tagsMatch(have, { host: '*' }), true);
  assert.equal(tagsMatch(have, { host: 'a', service: 'shop' }), true);
  assert.equal(tagsMatch(have, { host: 'b' }), false);
});
