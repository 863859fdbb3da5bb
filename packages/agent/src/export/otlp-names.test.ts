import assert from 'node:assert/strict';
import { test } from 'node:test';
import { catalogue, otelOf, otelText } from 'ekg-vitals';
import { mappingOf, SEMCONV } from './otlp.js';

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
    const sc = o && SEMCONV[o.name];
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
