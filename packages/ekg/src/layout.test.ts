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
