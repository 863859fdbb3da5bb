import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { codes } from './errors.js';

const src = fileURLToPath(new URL('../src/', import.meta.url));
const agentBin = fileURLToPath(new URL('../bin/ekg-agent.js', import.meta.url));

/** The agent's sources (not its tests), as path → text; empty where the sources are not shipped. */
function sources(dir = src, out = new Map<string, string>()): Map<string, string> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) out.set(p, readFileSync(p, 'utf8'));
  }
  return out;
}

test('every agent error code is documented in docs/errors.md, and every documented code exists', () => {
  const page = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const documented = [...page.matchAll(/^### (EKG_AGENT_ERR_[A-Z_]+)$/gm)].map((m) => m[1]);
  assert.deepEqual([...documented].sort(), Object.keys(codes).sort());
});

test('every code used in the source is declared, and every declared code is used', () => {
  const files = sources();
  // ConfigError's default code, for every bad value
  const used = new Set<string>(['EKG_AGENT_ERR_BAD_OPTION']);
  for (const [f, text] of files) {
    if (f.endsWith('errors.ts')) continue;
    for (const m of text.matchAll(/EKG_AGENT_ERR_[A-Z_]+/g)) {
      assert.ok(m[0] in codes, `${f} uses undeclared ${m[0]}`);
      used.add(m[0]);
    }
  }
  if (files.size > 0) assert.deepEqual([...used].sort(), Object.keys(codes).sort(), 'a declared code no source uses');
});

test('a bad setting exits 2 with its code at the end of the line; an unknown flag has its own', () => {
  const bad = spawnSync(process.execPath, [agentBin, '--flush-interval', 'soon'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^ekg-agent: --flush-interval: "soon" is not a duration.* \(EKG_AGENT_ERR_BAD_OPTION\)\n$/);
  const unknown = spawnSync(process.execPath, [agentBin, '--flush', '1s'], { encoding: 'utf8' });
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /^ekg-agent: unknown option --flush; see ekg-agent --help \(EKG_AGENT_ERR_UNKNOWN_OPTION\)\n$/);
});
