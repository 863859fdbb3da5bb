import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { catalogue, otelInstruments, otelOf, otelText } from 'ekg-vitals';
import { statsdWindows } from '../testing/windows.js';
import { mappingOf, otlpJson, otlpModel, SCOPE } from './otlp.js';

const golden = new URL('../../src/export/golden/', import.meta.url);

// The OTLP exporter learns OpenTelemetry's names from the library's catalogue (otelOf), never from a list of its own:
// each catalogued series is sent under the catalogue's OTel name with the catalogue's attributes, or under ekg's name.
test("OTLP names are the catalogue's: each series goes out under its catalogued OTel name and attributes, or its own", () => {
  const renamed = new Set<string>();
  for (const d of catalogue) {
    const path = d.path.replace('*', 'old_space');
    const kind = d.kind === 'window' ? 'counter' : 'gauge';
    const m = mappingOf({ name: path, kind });
    const o = otelOf(path);
    if (m.name === path) continue;
    assert.ok(o, `${path} goes out as ${m.name}, which the catalogue does not give it`);
    assert.equal(m.name, o.name, path);
    for (const [k, v] of o.attrs)
      assert.ok(
        m.attrs.some(([mk, mv]) => mk === k && mv === v),
        `${path}: ${k}=${v}`,
      );
    renamed.add(o.name);
  }
  // every convention the exporter knows, for which the catalogue gives the whole value and each required attribute, is used
  const whole = catalogue.flatMap((d) => {
    const o = d.otel;
    const sc = o && otelInstruments[o.name];
    if (!o || !sc || o.part) return [];
    const given = new Set([...Object.keys(o.attrs ?? {}), ...(o.starAttr ? [o.starAttr] : []), ...(sc.waived ?? [])]);
    return (sc.required ?? []).every((a) => given.has(a)) ? [o.name] : [];
  });
  for (const name of whole) assert.ok(renamed.has(name), `${name} is never sent`);
  assert.ok(renamed.size >= 10, `${renamed.size} OTel names used`);
  // a part of an instrument (a histogram's count, a sum over spaces) keeps ekg's name
  const part = catalogue.find((d) => d.otel?.part === 'count');
  assert.ok(part?.otel);
  assert.equal(mappingOf({ name: part.path, kind: 'counter' }).name, part.path, otelText(part.otel));
});

const windows = statsdWindows;

// The exact OTLP/JSON bodies (the protobuf encodes the same model) of windows holding every catalogued name: as the library sends it (a
// window delta as a counter, anything else as a gauge), each the other way round, and each as a distribution. A
// change in how a catalogued name is sent (name, attributes, unit, instrument, scale) fails here; when it is meant,
// regenerate with EKG_UPDATE_GOLDEN=1 and review the diff.
test('OTLP bodies of windows holding every catalogued name are byte-identical to golden/otlp-catalogue.golden', () => {
  const tags = '|#service:api,host:h1,pid:42,route:/x';
  const paths = catalogue.map((d, i) => ({ path: d.path.replace('*', 'old_space'), window: d.kind === 'window', v: 1 + i * 7.25 }));
  const natural = paths.map((p) => `${p.path}:${p.v}|${p.window ? 'c' : 'g'}${tags}`).join('\n');
  const swapped = paths.map((p) => `${p.path}:${p.v}|${p.window ? 'g' : 'c'}${tags}`).join('\n');
  const dist = paths.map((p) => `${p.path}:${p.v}|ms${tags}\n${p.path}:${p.v * 3}|ms${tags}`).join('\n');
  const got = windows(natural, swapped, dist).map((w) => otlpJson(otlpModel(w)));
  // the one line that moves by itself: the agent's version in the scope
  const text = `${JSON.stringify(got, null, 1)}\n`.replaceAll(`"version": "${SCOPE.version}"`, '"version": "0.0.0"');
  if (process.env.EKG_UPDATE_GOLDEN) {
    mkdirSync(golden, { recursive: true });
    writeFileSync(new URL('otlp-catalogue.golden', golden), text);
  }
  assert.equal(text, readFileSync(new URL('otlp-catalogue.golden', golden), 'utf8'));
});

// docs/exporter-otlp.md's semantic-convention table is read by people choosing dashboards: each row must say what
// the exporter does (name and unit), and each catalogued name the exporter renames must have its row.
test("docs/exporter-otlp.md's convention table is what the exporter sends: every renamed catalogue name, its OTLP name and unit", () => {
  const page = readFileSync(new URL('../../../../docs/exporter-otlp.md', import.meta.url), 'utf8');
  const table = page.slice(page.indexOf('| ekg (StatsD / `/stats`) |'));
  const rows = table.split('\n').slice(2);
  const documented = new Set<string>();
  for (const row of rows) {
    if (!row.startsWith('|')) break;
    const [ekg, otel, , unit] = row.split(/(?<!\\)\|/).slice(1, -1) as string[];
    const paths = [...(ekg as string).matchAll(/`([^`]+)`/g)].flatMap(([, p]) => {
      const spaced = (p as string).replace('<space>', 'old_space');
      const brace = /\{([^}]+)\}/.exec(spaced);
      return brace ? (brace[1] as string).split(',').map((x) => spaced.replace(brace[0], x)) : [spaced];
    });
    const name = /`([^`]+)`/.exec(otel as string)?.[1] as string;
    const u = /`([^`]+)`/.exec(unit as string)?.[1];
    for (const path of paths) {
      const d = catalogue.find((m) => new RegExp(`^${m.path.replace(/\./g, '\\.').replace('*', '[^.]+')}$`).test(path));
      assert.ok(d, `${path} is not catalogued`);
      const m = mappingOf({ name: path, kind: d.kind === 'window' ? 'counter' : 'gauge' });
      assert.ok(
        name.endsWith('*') ? m.name.startsWith(name.slice(0, -1)) : m.name === name,
        `${path}: the page says ${name}, sent as ${m.name}`,
      );
      assert.equal(m.unit, u, `${path}: unit`);
      documented.add(path);
    }
  }
  for (const d of catalogue) {
    const path = d.path.replace('*', 'old_space');
    const m = mappingOf({ name: path, kind: d.kind === 'window' ? 'counter' : 'gauge' });
    if (m.name !== path) assert.ok(documented.has(path), `${path} is sent as ${m.name} but has no row in docs/exporter-otlp.md`);
  }
  assert.ok(documented.size >= 15, `${documented.size} rows read`);
});
