import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEkg } from './ekg.js';
import { EkgError } from './errors.js';
import type { EkgOptions } from './options.js';

test('a misspelt createEkg option is refused, naming it, instead of being ignored', () => {
  assert.throws(
    () => createEkg({ intervall: '5s' } as EkgOptions),
    (e: unknown) =>
      e instanceof EkgError &&
      e.code === 'EKG_ERR_BAD_OPTION' &&
      /option "intervall" must be one of the options prefix, interval/.test(e.message),
  );
});

test('an interval given as text takes the repository-wide forms: "5" is five seconds, 5000 is five seconds in ms', async () => {
  for (const interval of ['5', '5s', 5000]) {
    const ekg = createEkg({ interval, signals: false, watchdog: false, http: false });
    try {
      assert.equal(ekg.options.interval, 5000, String(interval));
    } finally {
      await ekg.close();
    }
  }
});
