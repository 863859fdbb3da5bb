import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { catalogue } from 'ekg-vitals';
import { HEALTHS, IDENTITY } from '../model/instance.js';
import { QUANTILES } from '../model/series.js';

/**
 * The dashboard copies nothing the agent's model or ekg's catalogue defines: it imports the model's modules
 * (served at /src/model/) and reads units, GC kinds and status classes from the series the agent has.
 */
const dir = new URL('../../ui/src/', import.meta.url);

function uiSources(): Map<string, string> {
  const out = new Map<string, string>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out; // the UI's sources are not shipped with the package
  }
  for (const f of names) if (f.endsWith('.ts')) out.set(f, readFileSync(new URL(f, dir), 'utf8'));
  return out;
}

/** The concepts a copy would repeat, each from its source of truth. */
const CONCEPTS: Record<string, string[]> = {
  'GC kinds': catalogue.flatMap((m) => /^runtime\.gc\.([^.]+)\.pause$/.exec(m.path)?.slice(1) ?? []),
  'status classes': catalogue.flatMap((m) => /^http\.requests\.(\dxx)$/.exec(m.path)?.slice(1) ?? []),
  quantiles: QUANTILES.map((q) => q.name),
  'identity tags': [...IDENTITY],
};

test('the catalogue gives the concepts this test looks for', () => {
  for (const [what, values] of Object.entries(CONCEPTS)) assert.ok(values.length >= 3, what);
});

test('the dashboard has no list of GC kinds, status classes, quantiles or identity tags of its own', () => {
  const found: string[] = [];
  for (const [f, text] of uiSources()) {
    for (const [what, values] of Object.entries(CONCEPTS)) {
      const one = `'(?:${values.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})'`;
      // two of them side by side in an array literal is a list
      for (const m of text.matchAll(new RegExp(`\\[\\s*${one}\\s*,\\s*${one}`, 'g'))) found.push(`${f}: ${what}: ${m[0]}`);
    }
  }
  assert.deepEqual(found, [], 'import the list from the agent (src/model/) or read it from the series the agent has');
});

test("the dashboard parses no series key or tags itself: the model's tags.ts and instance.ts do", () => {
  const found: string[] = [];
  for (const [f, text] of uiSources()) {
    for (const m of text.matchAll(/\.split\(\s*['"],['"]\s*\)|\.replace\(\s*\/?,\/?g?\s*,|\.replace\(\s*'='\s*,/g))
      found.push(`${f}: ${m[0]}`);
  }
  assert.deepEqual(found, [], 'use formatTags/parseTags (model/tags.ts) and instanceFields/instanceKey (model/instance.ts)');
});

test("the dashboard judges no instance health itself: the model's HEALTHS order and isHealthy do", () => {
  const one = `['"](?:${HEALTHS.join('|')})['"]`;
  const found: string[] = [];
  for (const [f, text] of uiSources()) {
    // two states in one condition (`h === 'up' || h === 'reporting'`) or an object keyed by them is a copy
    for (const m of text.matchAll(new RegExp(`[!=]==\\s*${one}\\s*(?:\\|\\||&&)[^;\\n]*[!=]==\\s*${one}`, 'g')))
      found.push(`${f}: ${m[0]}`);
    for (const m of text.matchAll(new RegExp(`\\{\\s*(?:${HEALTHS.join('|')})\\s*:[^}]*,\\s*(?:${HEALTHS.join('|')})\\s*:`, 'g')))
      found.push(`${f}: ${m[0]}`);
  }
  assert.deepEqual(found, [], 'use HEALTHS and isHealthy (model/instance.ts)');
});
