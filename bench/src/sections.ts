/**
 * Sections of bench/RESULTS.md that can be measured on their own: `npm run bench -- store` runs
 * only that section and replaces it in the committed file, leaving the other sections as they were.
 */
import { fork } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { fmt, table } from './stats.js';

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const RESULTS = fileURLToPath(new URL('../RESULTS.md', import.meta.url));

export function childJson<T>(file: string, args: string[], execArgv: string[] = []): Promise<T> {
  return new Promise((resolve, reject) => {
    const proc = fork(here(file), args, { execArgv, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    let out = '';
    proc.stdout?.on('data', (d) => {
      out += d;
    });
    proc.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1) as string) as T) : reject(new Error(`${file} exited ${code}`)),
    );
  });
}

const ok = (met: boolean) => (met ? 'met' : 'MISSED');

interface StoreLayout {
  write: { pointsPerSecond: number; msPerWindow: number; series: number };
  query: {
    singleMs: number;
    singlePoints: number;
    fleetMs: number;
    fleetPoints: number;
    fleetResolution: number;
    fleetInstances: number;
    compactPointsPerSecond: number;
  };
  bytes: Record<'walk' | 'counter' | 'constant' | 'distribution', { file: number; raw: number }>;
}
interface StoreBench {
  v2: StoreLayout;
  v1: StoreLayout;
  bytesSeries: number;
  bytesHours: number;
}

/** The SQLite store, time-first (schema 2) beside its row-per-point layout (schema 1): bytes, writes, queries. */
export async function storeSection(): Promise<string> {
  const s = await childJson<StoreBench>('./store.js', []);
  const { v2, v1 } = s;
  const b = (x: number) => `${fmt(x, 2)} B`;
  const gauges = (l: StoreLayout, k: 'raw' | 'file') => (l.bytes.walk[k] + l.bytes.counter[k] + l.bytes.constant[k]) / 3;
  return `## ekg-agent store (SQLite)

One file, WAL, \`synchronous=NORMAL\` (\`bench/src/store.ts\`; layout in [docs/agent-store.md](../docs/agent-store.md)). **time-first**
is the store today: each window appended as one row, folded by the compactor into per-series chunks (delta-of-delta
times, decimal or XOR values, packed sketches), rolled up to minutes and hours, fleets' sketches merged at rollup.
**row per point** is the layout it replaced (schema 1, one row per series per window keyed (series, t); kept in
\`bench/src/store-v1.ts\` as the baseline), fed the same windows in the same run.

Bytes on disk per raw point: ${s.bytesSeries} series of one shape, ${s.bytesHours} h at 10 s, compacted and rolled up,
the file checkpointed. **raw**: the raw resolution alone (time-first: the raw chunks' bytes; row per point: its
points table's pages). **file**: the growth of the file's live pages (everything but the free list: raw chunks, the
1-minute and 1-hour rollups, indexes, the series table; not the empty tables' first pages) over the raw points.

${table(
  ['shape', 'time-first raw', 'time-first file', 'row per point raw', 'row per point file', 'target (raw)'],
  (
    [
      ['gauge: random walk, two decimals (±0.50 a window)', 'walk'],
      ['counter: ~50 a window, varying', 'counter'],
      ['gauge: constant', 'constant'],
    ] as const
  )
    .map(([label, k]) => [label, b(v2.bytes[k].raw), b(v2.bytes[k].file), b(v1.bytes[k].raw), b(v1.bytes[k].file), ''])
    .concat([
      [
        'gauges and counters, the three averaged',
        b(gauges(v2, 'raw')),
        b(gauges(v2, 'file')),
        b(gauges(v1, 'raw')),
        b(gauges(v1, 'file')),
        `≤ 2 B: ${ok(gauges(v2, 'raw') <= 2)}`,
      ],
      [
        'distribution window: 20 log-normal samples, two decimals',
        b(v2.bytes.distribution.raw),
        b(v2.bytes.distribution.file),
        b(v1.bytes.distribution.raw),
        b(v1.bytes.distribution.file),
        `≤ 30 B: ${ok(v2.bytes.distribution.raw <= 30)}`,
      ],
    ]),
)}

Writes: ${fmt(v2.write.series)} series per window (40 % gauges, 30 % counters, 30 % timers with a 50-sample sketch),
the windows built beforehand, median of 10 after the one that creates the series. Queries: median of 20 (single) and
5 (fleet) runs over a file holding 24 h of one gauge and of a timer on ${v2.query.fleetInstances} instances, compacted and rolled up.

${table(
  ['measure', 'time-first', 'row per point', 'target'],
  [
    [
      `points written per second (${fmt(v2.write.series)} series, one window)`,
      `${fmt(v2.write.pointsPerSecond)}/s (${fmt(v2.write.msPerWindow, 1)} ms a window)`,
      `${fmt(v1.write.pointsPerSecond)}/s (${fmt(v1.write.msPerWindow, 0)} ms)`,
      `≥ 2,000,000/s: ${ok(v2.write.pointsPerSecond >= 2_000_000)}`,
    ],
    [
      `24 h of one series at 10 s (${fmt(v2.query.singlePoints)} points)`,
      `${fmt(v2.query.singleMs, 2)} ms`,
      `${fmt(v1.query.singleMs, 2)} ms`,
      `< 5 ms: ${ok(v2.query.singleMs < 5)}`,
    ],
    [
      `p99 merged across ${v2.query.fleetInstances} instances over 24 h (${fmt(v2.query.fleetPoints)} points from ${v2.query.fleetResolution} s rows)`,
      `${fmt(v2.query.fleetMs, 1)} ms`,
      `${fmt(v1.query.fleetMs, 1)} ms`,
      `< 50 ms: ${ok(v2.query.fleetMs < 50)}`,
    ],
    [
      'compaction and rollup of the 24 h (points folded per second)',
      `${fmt(v2.query.compactPointsPerSecond)}/s`,
      `${fmt(v1.query.compactPointsPerSecond)}/s (rollup only)`,
      '',
    ],
  ],
)}
`;
}

/** The dashboard in Debian's chromium: render times and the JavaScript it ships. */
export async function dashboardSection(): Promise<string> {
  const d = await childJson<{
    overviewMs: number;
    rows: number;
    instanceMs: number;
    charts: number;
    points: number;
    jsGzip: number;
    scripts: number;
  }>('./dashboard.js', []);
  return `## ekg-agent dashboard (in a browser)

Headless Chromium (Debian's, through playwright-core) at 1280×800 against the real agent, whose SQLite file was
filled beforehand (\`bench/src/dashboard.ts\`); time from navigation start to the view's first complete render
(every request answered and every chart drawn), median of 7 loads.

${table(
  ['measure', 'value', 'target'],
  [
    [`overview, ${d.rows} instances with 6 sparklines each over 1 h`, `${fmt(d.overviewMs, 0)} ms`, `< 1 s: ${ok(d.overviewMs < 1000)}`],
    [
      `instance view, 24 h of 10 s windows (${d.charts} charts, ${fmt(d.points)} points)`,
      `${fmt(d.instanceMs, 0)} ms`,
      `< 500 ms: ${ok(d.instanceMs < 500)}`,
    ],
    [`JavaScript shipped (${d.scripts} files, gzipped)`, `${fmt(d.jsGzip / 1024, 1)} KiB`, `≤ 150 KB: ${ok(d.jsGzip <= 150_000)}`],
  ],
)}
`;
}

/** The stall watchdog: its cost on a hello world, how fast it sees a stall, how long a stack takes. */
export async function watchdogSection(): Promise<string> {
  const w = await childJson<{
    ratio: number;
    min: number;
    max: number;
    rounds: number;
    detectMs: number;
    captureMs: number;
    readyMs: number;
  }>('./watchdog.js', []);
  return `## Stall watchdog

Hello world with ekg, watchdog on against off: paired rounds (both servers on core 0, driven at the same moment),
median of ${w.rounds}. A 2 s \`burnCpu\` block in a child with \`--import ekg/register\` (threshold 1 s), median of 5.

${table(
  ['measure', 'value', 'target'],
  [
    ['hello world req/s, watchdog on / off', `${fmt(w.ratio, 3)}× (${fmt(w.min, 2)}–${fmt(w.max, 2)})`, `≥ 0.99×: ${ok(w.ratio >= 0.99)}`],
    ['from the stall start to /ready answering 503 on the side port', `${fmt(w.readyMs, 0)} ms`, `< 1,500 ms: ${ok(w.readyMs < 1500)}`],
    ['from the stall start to the stderr line (the threshold is 1,000 ms)', `${fmt(w.detectMs, 0)} ms`, ''],
    ['time to pause the main thread and read its stack', `${fmt(w.captureMs, 1)} ms`, ''],
  ],
)}
`;
}

const SECTIONS: Record<string, { title: string; run: () => Promise<string> }> = {
  watchdog: { title: '## Stall watchdog', run: watchdogSection },
  store: { title: '## ekg-agent store (SQLite)', run: storeSection },
  dashboard: { title: '## ekg-agent dashboard (in a browser)', run: dashboardSection },
};

/** Runs one section and writes it into RESULTS.md in place (before "## Paired rounds" if new). */
export async function runSection(name: string): Promise<void> {
  const sec = SECTIONS[name];
  if (!sec) throw new Error(`no bench section "${name}"; there are: ${Object.keys(SECTIONS).join(', ')}`);
  const text = await sec.run();
  let doc = readFileSync(RESULTS, 'utf8');
  const start = doc.indexOf(`${sec.title}\n`);
  const stamp = `<!-- ${name}: ${new Date().toISOString().slice(0, 10)} · Node ${process.version} · ${cpus()[0]?.model ?? 'unknown CPU'} -->\n`;
  if (start >= 0) {
    const next = doc.indexOf('\n## ', start + 1);
    const from =
      doc.lastIndexOf('<!-- ', start) >= 0 && doc.slice(doc.lastIndexOf('<!-- ', start), start).includes(`<!-- ${name}:`)
        ? doc.lastIndexOf('<!-- ', start)
        : start;
    doc = `${doc.slice(0, from)}${stamp}${text}${next >= 0 ? doc.slice(next) : ''}`;
  } else {
    const at = doc.indexOf('## Paired rounds');
    doc = at >= 0 ? `${doc.slice(0, at)}${stamp}${text}\n${doc.slice(at)}` : `${doc}\n${stamp}${text}`;
  }
  writeFileSync(RESULTS, doc);
  console.log(text);
}
