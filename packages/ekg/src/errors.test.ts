import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { codes } from './errors.js';

test('every error code is documented in docs/errors.md, and every documented code exists', () => {
  const page = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const documented = [...page.matchAll(/^### (EKG_ERR_[A-Z_]+)$/gm)].map((m) => m[1]);
  assert.deepEqual([...documented].sort(), Object.keys(codes).sort());
});

test('every code used in the source is declared', () => {
  const src = fileURLToPath(new URL('../src/', import.meta.url));
  if (!existsSync(src)) return; // the sources are not shipped; the check runs in the repository
  const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
  assert.ok(files.length > 20, `${files.length} source files found`);
  for (const f of files) {
    const text = readFileSync(join(src, f), 'utf8');
    for (const m of text.matchAll(/'(EKG_ERR_[A-Z_]+)'/g)) assert.ok((m[1] as string) in codes, `${f} uses undeclared ${m[1]}`);
  }
});
