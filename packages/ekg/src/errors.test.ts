import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { codes } from './errors.js';

test('every error code is documented in docs/errors.md, and every documented code exists', () => {
  const page = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const documented = [...page.matchAll(/^### (EKG_ERR_[A-Z_]+)$/gm)].map((m) => m[1]);
  assert.deepEqual([...documented].sort(), Object.keys(codes).sort());
});

test('every code used in the source is declared', () => {
  const src = new URL('../src/', import.meta.url);
  const files = ['ekg.ts', 'env.ts', 'server.ts', 'register.ts', 'vitals/runner.ts'];
  for (const f of files) {
    let text = '';
    try {
      text = readFileSync(new URL(f, src), 'utf8');
    } catch {
      continue; // the sources are not shipped; the check runs in the repository
    }
    for (const m of text.matchAll(/'(EKG_ERR_[A-Z_]+)'/g)) assert.ok((m[1] as string) in codes, `${f} uses undeclared ${m[1]}`);
  }
});
