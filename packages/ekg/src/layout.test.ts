import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

// The library's layout (docs/library-layout.md): one module per concept, dependencies pointing one way.
const src = fileURLToPath(new URL('../src/', import.meta.url));

/** Each source module (tests and test helpers left out) with the modules it imports, type-only imports included. */
function graph(): Map<string, string[]> {
  const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter(
    (f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.startsWith('testing/'),
  );
  const g = new Map<string, string[]>();
  for (const f of files) {
    const text = readFileSync(join(src, f), 'utf8');
    const deps = [...text.matchAll(/^\s*(?:import|export)\b[^'";]*?from\s*'(\.[^']+)'|^\s*import\s*'(\.[^']+)'/gm)].map((m) =>
      normalize(join(dirname(f), (m[1] ?? m[2]) as string)).replace(/\.js$/, '.ts'),
    );
    g.set(
      f,
      deps.filter((d) => files.includes(d)),
    );
  }
  return g;
}

/** Strongly connected components of more than one module (Tarjan). */
function cycles(g: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        on.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1) out.push(c);
    }
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return out;
}

const inRepo = existsSync(src);

test('no import cycle among the library modules, type-only imports included', { skip: !inRepo && 'sources not shipped' }, () => {
  const g = graph();
  assert.ok(g.size > 30, `${g.size} modules read`);
  assert.deepEqual(cycles(g), []);
});

test('adapters and the rest depend on the core contract (core.ts), never on the instance (ekg.ts)', {
  skip: !inRepo && 'sources not shipped',
}, () => {
  // only the entry points may import ekg.ts: the public index, ekg-vitals/register and the registered-instance lookup
  const allowed = new Set(['index.ts', 'register.ts', 'registry.ts']);
  for (const [f, deps] of graph()) if (!allowed.has(f)) assert.ok(!deps.includes('ekg.ts'), `${f} imports ekg.ts`);
});

/** The folder a module lives in ('' for the top level). */
const folder = (f: string) => (f.includes('/') ? f.slice(0, f.lastIndexOf('/')) : '');

test('folder rules: the core never imports what serves or sends it; adapters are leaves over the router', {
  skip: !inRepo && 'sources not shipped',
}, () => {
  const g = graph();
  // the parts an instance is built from: what serves (http/), sends (reporters/) or wires (ekg.ts) them is above
  const core = new Set(['health', 'render', 'vitals', 'formats', 'window']);
  const above = (d: string) =>
    d.startsWith('http/') ||
    d.startsWith('reporters/') ||
    d.startsWith('cli/') ||
    ['ekg.ts', 'index.ts', 'register.ts', 'cluster.ts'].includes(d);
  const broken: string[] = [];
  for (const [f, deps] of g) {
    if (core.has(folder(f))) for (const d of deps) if (above(d)) broken.push(`${f} → ${d} (the core depends on nothing above it)`);
    // a renderer is a pure function of a snapshot and the catalogue
    if (folder(f) === 'formats')
      for (const d of deps) if (['health', 'render'].includes(folder(d))) broken.push(`${f} → ${d} (renderers read snapshots only)`);
    // an adapter translates one framework's request to the router: it sees http/ and nothing of the instance
    if (folder(f) === 'http/adapters')
      for (const d of deps) if (!d.startsWith('http/') && d !== 'vitals/http.ts') broken.push(`${f} → ${d} (adapters see http/ only)`);
    // only the wiring, the side server and the adapters themselves use an adapter
    if (!['ekg.ts', 'http/server.ts'].includes(f) && folder(f) !== 'http/adapters')
      for (const d of deps) if (folder(d) === 'http/adapters') broken.push(`${f} → ${d} (adapters are leaves)`);
  }
  assert.deepEqual(broken, []);
  for (const d of core)
    assert.ok(
      [...g.keys()].some((f) => folder(f) === d),
      `${d}/ exists`,
    );
});

test('the cycle finder finds a cycle (so that the test above can fail)', () => {
  const g = new Map([
    ['a.ts', ['b.ts']],
    ['b.ts', ['c.ts']],
    ['c.ts', ['a.ts']],
    ['d.ts', ['a.ts']],
  ]);
  assert.deepEqual(
    cycles(g).map((c) => c.sort()),
    [['a.ts', 'b.ts', 'c.ts']],
  );
});
