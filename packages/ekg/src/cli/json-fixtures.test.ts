import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { byteOrder, flatten, goFloat, type JsonIo, runJson } from './json.js';

/**
 * `ekg json` against the real mackerel-plugin-json: 200 random documents and what the plugin (built
 * from its source) printed for each with `-stdin -prefix=p` (test/fixtures/mackerel-plugin-json/README.md,
 * copied from the team's shared fixtures so a fresh clone has them). Then thousands more documents,
 * checked against the naming rules, which are themselves checked against the plugin's output first.
 */

const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/mackerel-plugin-json/', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/ekg.js', import.meta.url));

/** `ekg json` in this process: its exit code and what it wrote. */
async function ekgJson(args: string[], input: string): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: JsonIo = { stdin: async () => input, stdout: (s) => (out += s), stderr: (s) => (err += s) };
  const code = await runJson(args, io);
  return { code, out, err };
}

/** name<TAB>value lines, timestamps dropped, in byte order: the fixtures' form. */
function nameValue(out: string): string[] {
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t').slice(0, 2).join('\t'))
    .sort(byteOrder);
}

const docs = readdirSync(FIXTURES)
  .map((f) => /^doc-(\d+)\.json$/.exec(f)?.[1])
  .filter((n): n is string => n !== undefined)
  .sort((a, b) => Number(a) - Number(b));

/**
 * The naming rules, written from the plugin's source and its outputs, independently of flatten():
 * every number reached through objects and arrays, *held by a key* (a number directly in an array is
 * skipped), is named by its path, where an array held by a key puts its index in place of the key.
 * Returns, per name, every value that may win (a collision is decided by Go's random map order).
 */
function expected(doc: unknown, prefix: string): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  const visit = (v: unknown, segs: string[], heldBy: 'key' | 'array') => {
    if (v === null) return;
    if (Array.isArray(v)) {
      // the key that held the array is replaced by each element's index
      const base = heldBy === 'key' ? segs.slice(0, -1) : segs;
      v.forEach((e, i) => {
        if (e !== null && typeof e === 'object') visit(e, [...base, String(i)], 'array');
      });
      return;
    }
    if (typeof v === 'object') {
      for (const [k, c] of Object.entries(v as object)) visit(c, [...segs, k], 'key');
      return;
    }
    if (heldBy === 'key' && typeof v === 'number' && Number.isFinite(v)) {
      const name = segs.join('.');
      if (!out.has(name)) out.set(name, new Set());
      out.get(name)?.add(v);
    }
  };
  visit(doc, [prefix], 'array');
  return out;
}

describe('ekg json matches mackerel-plugin-json', () => {
  test('the fixtures are there: 200 documents, each with the output or the crash of the real plugin', () => {
    assert.equal(docs.length, 200);
    for (const n of docs) assert.ok(existsSync(`${FIXTURES}out-${n}.tsv`) || existsSync(`${FIXTURES}out-${n}.crash`), n);
  });

  test('on every document the plugin survives: the same lines (names and %f values), line for line', async () => {
    let same = 0;
    const differ: string[] = [];
    for (const n of docs) {
      const tsv = `${FIXTURES}out-${n}.tsv`;
      if (!existsSync(tsv)) continue;
      const r = await ekgJson(['-stdin', '-prefix=p'], readFileSync(`${FIXTURES}doc-${n}.json`, 'utf8'));
      assert.equal(r.code, 0, r.err);
      const want = readFileSync(tsv, 'utf8').split('\n').filter(Boolean);
      const got = nameValue(r.out);
      if (JSON.stringify(got) === JSON.stringify(want)) same++;
      else differ.push(`doc-${n}: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`);
    }
    assert.deepEqual(differ, []);
    assert.equal(same, 184);
  });

  test('where the plugin crashes (a null inside an array), ekg skips the null and prints the rest', async () => {
    let crashes = 0;
    for (const n of docs) {
      if (!existsSync(`${FIXTURES}out-${n}.crash`)) continue;
      crashes++;
      const text = readFileSync(`${FIXTURES}doc-${n}.json`, 'utf8');
      const r = await ekgJson(['-stdin', '-prefix=p'], text);
      assert.equal(r.code, 0, `doc-${n}: ${r.err}`);
      assert.equal(r.err, '');
      // the same document with each null in an array turned into a string, which the plugin skips
      // without crashing, keeping every index: what the plugin would print if it went on
      const patched = JSON.parse(text, (_k, v) => (Array.isArray(v) ? v.map((e) => (e === null ? 'null' : e)) : v));
      const again = await ekgJson(['-stdin', '-prefix=p'], JSON.stringify(patched));
      assert.deepEqual(nameValue(r.out), nameValue(again.out), `doc-${n}`);
    }
    assert.equal(crashes, 16);
  });

  test('the real `ekg` command on a document the plugin crashes on: exit 0 and the rest printed', () => {
    const r = spawnSync(process.execPath, [BIN, 'json', '-stdin', '-prefix', 'p'], {
      input: '{"a":[1,null,{"x":2}],"b":{"c":null,"d":3},"e":[null]}',
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(nameValue(r.stdout), ['p.2.x\t2.000000', 'p.b.d\t3.000000']);
    assert.match(r.stdout, /^p\.2\.x\t2\.000000\t\d{10}\n/);
  });

  test('the naming rules predict the plugin on every fixture (so they can judge documents it never saw)', () => {
    for (const n of docs) {
      const tsv = `${FIXTURES}out-${n}.tsv`;
      if (!existsSync(tsv)) continue;
      const want = readFileSync(tsv, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t'));
      const rules = expected(JSON.parse(readFileSync(`${FIXTURES}doc-${n}.json`, 'utf8')), 'p');
      assert.deepEqual(want.map(([name]) => name as string).sort(byteOrder), [...rules.keys()].sort(byteOrder), `doc-${n}`);
      for (const [name, value] of want)
        assert.ok(
          [...(rules.get(name as string) ?? [])].some((v) => goFloat(v) === value),
          `doc-${n} ${name}`,
        );
    }
  });

  test('property: 3000 generated documents follow the naming rules, never fail, and print Go %f', async () => {
    let seed = 0x9e3779b9;
    const rand = () => {
      // xorshift32: the same documents on every run
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 2 ** 32;
    };
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    const KEYS = ['0', '1', 'a', 'b', '', 'k.v', 'x y', 'heap', 'rss', 'used', '日本', 'ключ', 'A_B-c', 'ünï', '<&>', 'tab\there'];
    const NUMBERS = [0, -0, 1, -1, 42, 0.5, 0.0078125, -0.0234375, 1e-7, -1e-7, 5e-324, 1e21, 1e300, 9007199254740994, 123456789.123];
    const value = (depth: number): unknown => {
      const r = rand();
      if (depth > 4 || (depth > 0 && r < 0.45)) {
        const s = rand();
        if (s < 0.55) return rand() < 0.5 ? pick(NUMBERS) : (rand() - 0.5) * 10 ** Math.floor(rand() * 12);
        if (s < 0.7) return null;
        if (s < 0.85) return pick(['s', '', '1']);
        return rand() < 0.5;
      }
      if (r < 0.72) return Array.from({ length: Math.floor(rand() * 4) }, () => value(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(rand() * 5); i > 0; i--) o[pick(KEYS)] = value(depth + 1);
      return o;
    };
    let lines = 0;
    for (let i = 0; i < 3000; i++) {
      const doc = value(0);
      const r = await ekgJson(['-stdin', '-prefix=p'], JSON.stringify(doc));
      assert.equal(r.code, 0, r.err);
      const rules = expected(doc, 'p');
      const got = r.out.split('\n').filter(Boolean);
      lines += got.length;
      // a key may hold a tab itself: the value and the time are the last two fields
      const rows = got.map((l) => {
        const f = l.split('\t');
        return [f.slice(0, -2).join('\t'), f.at(-2), f.at(-1)] as [string, string, string];
      });
      assert.deepEqual(rows.map(([name]) => name).sort(byteOrder), [...rules.keys()].sort(byteOrder), JSON.stringify(doc));
      for (const [name, printed, epoch] of rows) {
        assert.match(printed, /^-?\d+\.\d{6}$/);
        assert.match(epoch, /^\d{10}$/);
        assert.ok(
          [...(rules.get(name) ?? [])].some((v) => goFloat(v) === printed),
          `${name} ${printed}`,
        );
      }
    }
    assert.ok(lines > 2500, `the documents held numbers (${lines} lines)`);
  });

  test("Go's %f: exact decimal, ties to even, sign of a negative zero, every integer digit", () => {
    assert.equal(goFloat(0.0078125), '0.007812', 'a tie rounds to even (JavaScript toFixed says 0.007813)');
    assert.equal(goFloat(0.0234375), '0.023438');
    assert.equal(goFloat(-0.0078125), '-0.007812');
    assert.equal(goFloat(-0), '-0.000000');
    assert.equal(goFloat(-1e-7), '-0.000000');
    assert.equal(goFloat(0.3), '0.300000');
    assert.equal(goFloat(1e21), '1000000000000000000000.000000');
    assert.equal(goFloat(5e-324), '0.000000');
    assert.equal(goFloat(9007199254740994), '9007199254740994.000000');
    assert.equal(goFloat(0.1234565), '0.123456', '0.1234565 is just below the tie in binary');
    assert.equal(goFloat(1.0000005), '1.000001', 'and 1.0000005 just above it');
  });

  test('hostile nesting: a document 100,000 objects or arrays deep is flattened, not a stack overflow', async () => {
    const d = 100_000;
    const deep = await ekgJson(['-stdin', '-prefix=p'], `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`);
    assert.equal(deep.code, 0, deep.err);
    assert.equal(deep.out.split('\t')[0], `p${'.a'.repeat(d)}`);
    const arrays = await ekgJson(['-stdin', '-prefix=p'], `${'['.repeat(d)}{"x":1}${']'.repeat(d)}`);
    assert.equal(arrays.out.split('\t')[0], `p${'.0'.repeat(d)}.x`);
  });

  test('-include, -exclude and -diff take Go (RE2) expressions: (?i) flags, \\A and \\z', async () => {
    const doc = JSON.stringify({ Heap: { used: 1 }, heap: { total: 2 }, rss: 3 });
    const names = async (...args: string[]) =>
      nameValue((await ekgJson(['-stdin', '-prefix=p', ...args], doc)).out).map((l) => l.split('\t')[0]);
    assert.deepEqual(await names('-include', '(?i)\\.heap\\.'), ['p.Heap.used', 'p.heap.total']);
    assert.deepEqual(await names('-include', '\\Ap\\.rss\\z'), ['p.rss']);
    assert.deepEqual(await names('-exclude', '(?i)HEAP'), ['p.rss']);
  });

  test('-array-scalars keeps the numbers inside arrays, under their key', () => {
    const doc = { top: [7, 8], list: [{ x: 1 }, [3]], n: null };
    assert.deepEqual(Object.fromEntries(flatten(doc, 'p')), { 'p.0.x': 1 });
    assert.deepEqual(Object.fromEntries(flatten(doc, 'p', () => true, true)), {
      'p.top.0': 7,
      'p.top.1': 8,
      'p.0.x': 1,
      'p.1.0': 3,
    });
  });
});
