import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { after, test } from 'node:test';
import {
  catalogue,
  convert,
  familyOf,
  herokuOf,
  herokuPaths,
  otelInstruments,
  otelOf,
  otelText,
  prometheusFamilies,
  prometheusHelp,
  prometheusOnly,
  statsdOnly,
  ucumOf,
  unitScale,
} from './catalogue.js';
import { createEkg } from './ekg.js';
import { herokuPayload } from './formats/heroku.js';
import { measurements } from './formats/measurements.js';
import { renderPrometheus } from './formats/prometheus.js';
import { statsdLines } from './formats/statsd.js';
import { baseOf, closeServer, get, listening } from './testing/http.js';
import { fixedSnapshot } from './testing/snapshot.js';
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

test("each Prometheus family's HELP is written once, in its catalogue entry, and /metrics prints that text", async () => {
  const owners = new Map<string, number>();
  for (const m of catalogue)
    if (m.prometheus && m.promHelp) owners.set(familyOf(m.prometheus), (owners.get(familyOf(m.prometheus)) ?? 0) + 1);
  for (const p of prometheusOnly) owners.set(p.name, (owners.get(p.name) ?? 0) + 1);
  const families = new Set([
    ...catalogue.flatMap((m) => (m.prometheus ? [familyOf(m.prometheus)] : [])),
    ...prometheusOnly.map((p) => p.name),
  ]);
  for (const f of families) assert.equal(owners.get(f), 1, `${f}: ${owners.get(f) ?? 0} catalogue entries give its HELP, not 1`);
  // every family on: a check has run, a reporter is set, the watchdog runs
  const full = createEkg({
    signals: false,
    watchdog: true,
    report: { statsd: 'udp://127.0.0.1:9' },
    vitals: [{ name: 'custom', stats: () => ({ n: 1 }), check: () => true }],
  });
  try {
    await full.ready();
    await full.health();
    const text = full.metricsText(await full.flush());
    const helps = [...text.matchAll(/^# HELP (\S+) (.*)$/gm)].filter((m) => !m[1]?.startsWith('ekg_custom_'));
    assert.ok(helps.length >= families.size - 2, `${helps.length} families rendered`);
    for (const [, family, help] of helps) assert.equal(help, prometheusHelp(family as string), `HELP of ${family}`);
  } finally {
    await full.close();
  }
});

test("Heroku's names are the catalogue's: a window's payload has exactly the catalogued Heroku names", async () => {
  const snap = await snapshotWithTraffic();
  const p = herokuPayload(measurements(ekg.statsObject(snap).stats), snap.window.seconds * 1000);
  const sent = new Set([...Object.keys(p.counters ?? {}), ...Object.keys(p.gauges ?? {})]);
  assert.deepEqual([...sent].sort(), [...new Set(herokuPaths.map((h) => h.heroku))].sort());
});

test('docs/metrics.md is the page generated from the catalogue', () => {
  const page = readFileSync(new URL('../../../docs/metrics.md', import.meta.url), 'utf8');
  assert.equal(page, metricsDoc(), 'docs/metrics.md is stale: run `npm run docs`');
});

test('/metrics writes exactly the catalogue: each family with its TYPE and HELP, each sample under its family', () => {
  for (const open of [false, true]) {
    const text = renderPrometheus(fixedSnapshot(), open);
    // the catalogue's families, spelled as each format spells them (OpenMetrics drops a counter's _total and an info's _info)
    const expected = [...prometheusFamilies().values()].map((f) => {
      const name =
        open && f.type === 'counter' && f.name.endsWith('_total')
          ? f.name.slice(0, -6)
          : open && f.type === 'info'
            ? f.name.slice(0, -5)
            : f.name;
      return `${name} ${f.type === 'info' && !open ? 'gauge' : f.type} ${f.help}`;
    });
    const lines = text.split('\n');
    const written: string[] = [];
    const samples = new Map<string, string>();
    let family = '';
    for (let i = 0; i < lines.length; i++) {
      const help = /^# HELP (\S+) (.*)$/.exec(lines[i] as string);
      if (help) {
        const type = /^# TYPE (\S+) (\S+)$/.exec(lines[i + 1] as string);
        assert.equal(type?.[1], help[1], `TYPE follows HELP for ${help[1]}`);
        family = help[1] as string;
        if (!family.startsWith('ekg_db_')) written.push(`${family} ${type?.[2]} ${help[2]}`);
        i++;
      } else if (lines[i] && !lines[i]?.startsWith('#')) samples.set(/^[^{ ]+/.exec(lines[i] as string)?.[0] as string, family);
    }
    assert.deepEqual(written.sort(), expected.sort(), open ? 'OpenMetrics' : 'Prometheus text');
    // every sample belongs to the family just declared: the family name itself, or its histogram / counter series
    for (const [sample, fam] of samples)
      assert.ok(
        [fam, `${fam}_total`, `${fam}_info`, `${fam}_bucket`, `${fam}_sum`, `${fam}_count`].includes(sample),
        `${sample} under ${fam}`,
      );
  }
});

test("OTel spellings are structured: otelOf gives the instrument and attributes (a path's * resolved), never a part's", () => {
  assert.deepEqual(otelOf('runtime.cpu.user'), {
    name: 'process.cpu.time',
    attrs: [['cpu.mode', 'user']],
    instrument: 'counter',
    unit: 's',
    required: ['cpu.mode'],
  });
  assert.deepEqual(otelOf('runtime.memory.spaces.old_space.used'), {
    name: 'v8js.memory.heap.used',
    attrs: [['v8js.heap.space.name', 'old_space']],
    instrument: 'updowncounter',
    unit: 'By',
    required: ['v8js.heap.space.name'],
  });
  assert.equal(otelOf('runtime.gc.minor.count'), undefined, "a histogram's count is not the instrument");
  assert.equal(otelOf('runtime.memory.heap.used'), undefined, 'a sum over spaces is not the instrument');
  assert.equal(otelOf('runtime.eventloop.resolution'), undefined);
  // the docs' spelling, written from the structure (docs/metrics.md is generated with it)
  const gc = catalogue.find((m) => m.path === 'runtime.gc.minor.count');
  assert.equal(gc?.otel && otelText(gc.otel), 'v8js.gc.duration (count, v8js.gc.type=minor)');
});

test("every OTel name the catalogue spells has its instrument, UCUM unit and required attributes in the catalogue's table", () => {
  for (const m of catalogue) {
    if (!m.otel) continue;
    const inst = otelInstruments[m.otel.name];
    assert.ok(inst, `${m.path}: ${m.otel.name} has no instrument in otelInstruments`);
    // the value converts to the instrument's unit (ms → s) unless it is only part of the instrument
    if (!m.otel.part) assert.notEqual(unitScale(m.unit, inst.unit), undefined, `${m.path}: ${m.unit} → ${inst.unit}`);
  }
  assert.equal(unitScale('ms', 's'), 0.001);
  assert.equal(unitScale('count', '{fault}'), 1);
  assert.equal(unitScale('bytes', 's'), undefined);
  assert.equal(ucumOf('bytes'), 'By');
});

test("a Prometheus family's unit is the one its name says, and the catalogue converts each value to it", () => {
  // Prometheus names carry their unit: _seconds is seconds (or epoch seconds), _bytes bytes, _ratio a ratio
  const suffix: Array<[RegExp, string[]]> = [
    [/_seconds(_total)?$/, ['seconds', 'epoch seconds']],
    [/_bytes$/, ['bytes']],
    [/_ratio$/, ['ratio']],
  ];
  for (const f of prometheusFamilies().values()) {
    const says = suffix.find(([re]) => re.test(f.name))?.[1] ?? ['count', 'info'];
    assert.ok(says.includes(f.unit as string), `${f.name} is written in ${f.unit}`);
  }
  for (const m of catalogue)
    if (m.prometheus && m.promType) assert.doesNotThrow(() => convert(1, m.unit, m.promUnit ?? m.unit), `${m.path} → ${m.promUnit}`);
  // division when the unit grows, so a millisecond value is written as the decimal a reader expects
  assert.equal(convert(7, 'ms', 'seconds'), 0.007);
  assert.equal(convert(1_700_000_000_123, 'epoch ms', 'epoch seconds'), 1_700_000_000.123);
  assert.throws(() => convert(1, 'ms', 'bytes'));
});

test("Heroku's scale comes from the catalogue's units: GC pauses in ns, the delays in ms, usage as a fraction", () => {
  for (const { path, heroku } of herokuPaths) {
    const h = herokuOf(path);
    assert.equal(h?.name, heroku);
    const unit = heroku.endsWith('.ns') ? 'ns' : heroku.includes('.ms') ? 'ms' : undefined;
    if (unit) assert.equal(h?.scale, unitScale(catalogue.find((m) => m.path === path)?.unit as string, unit), path);
  }
  assert.equal(herokuOf('runtime.gc.minor.pause')?.scale, 1e6);
  assert.equal(herokuOf('runtime.eventloop.utilization')?.scale, 1);
  assert.equal(herokuOf('runtime.eventloop.delay.max')?.combine, 'max');
  assert.equal(herokuOf('runtime.eventloop.delay.p99')?.combine, 'mean');
  assert.equal(herokuOf('runtime.gc.count')?.combine, 'sum');
});

test("StatsD's names are the catalogue's: each line of a window names a catalogued path or a StatsD-only gauge", async () => {
  const snap = await snapshotWithTraffic();
  const lines = statsdLines(measurements(ekg.statsObject(snap).stats), { prefix: 'app' }, { start: 0, end: 10_000 });
  const names = lines.map((l) => (/^app\.([^:]+):/.exec(l) as RegExpExecArray)[1] as string).filter((n) => !n.startsWith('custom.'));
  assert.ok(names.length > 50, `${names.length} lines`);
  const only = new Set(statsdOnly.map((s) => s.name));
  for (const n of names) assert.ok(only.has(n) || catalogue.some((m) => matches(m.path, n)), `${n} is sent over StatsD but not catalogued`);
  assert.equal(names[0], statsdOnly[0]?.name, 'the window starts with its interval');
});
