import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { after, test } from 'node:test';
import { catalogue, familyOf, prometheusOnly } from './catalogue.js';
import { createEkg } from './ekg.js';
import { baseOf, closeServer, get, listening } from './testing/http.js';
import { metricsDoc } from './tools/metrics-doc.js';

const ekg = createEkg({ signals: false, vitals: [{ name: 'custom', stats: () => ({ n: 1 }) }] });
after(() => ekg.close());

function leaves(o: unknown, prefix = ''): string[] {
  if (o === null || typeof o !== 'object') return [prefix];
  return Object.entries(o).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
}

const matches = (pattern: string, path: string) => new RegExp(`^${pattern.replace(/[.]/g, '\\.').replace(/\*/g, '[^.]+')}$`).test(path);

async function snapshotWithTraffic() {
  const mw = ekg.node();
  const server = await listening(createServer((req, res) => mw(req, res, () => res.end('x'))));
  await get(baseOf(server), '/');
  await closeServer(server);
  return ekg.flush();
}

test('every /stats value of the runtime and http vitals is in the catalogue, and every entry is produced', async () => {
  const snap = await snapshotWithTraffic();
  const { stats } = ekg.statsObject(snap);
  const produced = leaves({ runtime: stats.runtime, http: stats.http });
  for (const p of produced)
    assert.ok(
      catalogue.some((m) => matches(m.path, p)),
      `${p} is not in the catalogue`,
    );
  for (const m of catalogue) {
    if (m.path.includes('.fds.') && process.platform !== 'linux') continue;
    assert.ok(
      produced.some((p) => matches(m.path, p)),
      `${m.path} is catalogued but not produced`,
    );
  }
});

test('every Prometheus family is catalogued, and every catalogued family is rendered', async () => {
  const snap = await snapshotWithTraffic();
  const text = ekg.metricsText(snap);
  const families = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string).filter((f) => !f.startsWith('ekg_custom_'));
  const known = new Set([
    ...catalogue.flatMap((m) => (m.prometheus ? [familyOf(m.prometheus)] : [])),
    ...prometheusOnly.map((p) => p.name),
  ]);
  for (const f of families) assert.ok(known.has(f), `${f} is rendered but not catalogued`);
  for (const k of known) {
    if (
      k === 'ekg_vital_healthy' ||
      k.startsWith('ekg_reporter_') ||
      k.startsWith('ekg_eventloop_stall') ||
      ((k === 'process_open_fds' || k === 'process_max_fds') && process.platform !== 'linux')
    )
      continue;
    assert.ok(families.includes(k), `${k} is catalogued but not rendered`);
  }
});

test('docs/metrics.md is the page generated from the catalogue', () => {
  const page = readFileSync(new URL('../../../docs/metrics.md', import.meta.url), 'utf8');
  assert.equal(page, metricsDoc(), 'docs/metrics.md is stale: run `npm run docs`');
});
