/** Prints docs/metrics.md from the catalogue: `node packages/ekg/dist/tools/metrics-doc.js > docs/metrics.md`. */
import { fileURLToPath } from 'node:url';
import { catalogue, otelInstruments, otelText, prometheusOnly, statsdOnly } from '../catalogue.js';

const code = (s: string | undefined) => (s ? `\`${s}\`` : '—');

export function metricsDoc(): string {
  const lines = [
    '# Metrics',
    '',
    '<!-- generated from packages/ekg/src/catalogue.ts by `npm run docs`; catalogue.test.ts fails when this page is stale -->',
    '',
    'One catalogue, several spellings. **/stats & StatsD** is the dotted path in `/stats` (and, with the reporters, the',
    "StatsD name under its prefix). **Prometheus** uses prom-client's default names wherever one exists, so dashboards",
    'built for prom-client keep working, and `ekg_*` for the rest. **OpenTelemetry** is the semantic-convention name the',
    "OTLP exporter uses; **Heroku** is the name of Heroku's Node.js language metrics.",
    '',
    'Units: `/stats` reports time in **milliseconds** and memory in **bytes**; Prometheus reports time in **seconds**',
    '(as its names say). *window* values are additive deltas over the last closed window (default 10 s): StatsD',
    'counters, and cumulative `_total` counters in Prometheus. *summary* values are statistics of the window',
    "(percentiles, means, maxima, rates) and *level* values are read at the window's end; both are gauges.",
    '',
    'Event-loop delays are reported **net of the sampling resolution** (10 ms): `monitorEventLoopDelay` measures the',
    'whole timer interval, so prom-client reports an idle loop as ~10 ms of delay; ekg reports it as ~0.',
    '',
    '| /stats & StatsD | unit | kind | Prometheus | OpenTelemetry | Heroku | meaning |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const m of catalogue) {
    lines.push(
      `| ${code(m.path)} | ${m.unit} | ${m.kind} | ${code(m.prometheus)} | ${code(m.otel && otelText(m.otel))} | ${code(m.heroku)} | ${m.help} |`,
    );
  }
  lines.push(
    '',
    '## Prometheus only',
    '',
    '| Prometheus | unit | meaning |',
    '|---|---|---|',
    ...prometheusOnly.map((p) => `| ${code(p.name)} | ${p.unit} | ${p.help} |`),
    '',
    '## StatsD only',
    '',
    '| StatsD | unit | meaning |',
    '|---|---|---|',
    ...statsdOnly.map((p) => `| ${code(p.name)} | ${p.unit} | ${p.help} |`),
    '',
    '## OpenTelemetry instruments',
    '',
    'The semantic conventions of the instruments named above: the OTLP exporter sends a value under the name only when',
    'the instrument fits, the unit converts (ms to `s`) and each required attribute is there (or waived); see',
    '[exporter-otlp.md](exporter-otlp.md).',
    '',
    '| OpenTelemetry | instrument | unit (UCUM) | required attributes | sent without |',
    '|---|---|---|---|---|',
    ...Object.entries(otelInstruments).map(
      ([name, i]) =>
        `| ${code(name)} | ${i.instrument} | ${code(i.unit)} | ${i.required?.map(code).join(', ') || '—'} | ${i.waived?.map(code).join(', ') || '—'} |`,
    ),
    '',
    '## Custom vitals',
    '',
    'A custom vital named `db` whose `stats()` returns `{ pool: { size: 10, busy: 3 }, primary: true }` appears',
    'as `db.pool.size`, `db.pool.busy`, `db.primary` in `/stats` and as the gauges `ekg_db_pool_size`, `ekg_db_pool_busy`',
    'and `ekg_db_primary` (booleans as 0/1; strings are left out of Prometheus) in `/metrics`, plus',
    '`ekg_vital_up{vital="db"}` and, once its check has run, `ekg_vital_healthy{vital="db"}`.',
    '',
    '## Labels',
    '',
    '`createEkg({ labels: { service: "api" } })`, or `EKG_SERVICE` / `EKG_TAGS` with `ekg-vitals/register`, adds constant',
    'labels to every Prometheus sample.',
    '',
  );
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.stdout.write(metricsDoc());
