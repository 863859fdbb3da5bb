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

interface StoreBench {
  write: { pointsPerSecond: number; msPerWindow: number; series: number };
  query: {
    singleMs: number;
    singlePoints: number;
    fleetMs: number;
    fleetPoints: number;
    fleetResolution: number;
    fleetInstances: number;
    rollupRowsPerSecond: number;
  };
  bytes: Record<'gauge' | 'distribution', Record<'raw' | '1m' | '1h', number>>;
}

/** The SQLite store: writes, the two queries and bytes per series per day. */
export async function storeSection(): Promise<string> {
  const s = await childJson<StoreBench>('./store.js', []);
  const kb = (b: number) => `${fmt(b / 1024, 1)} KiB`;
  return `## ekg-agent store (SQLite)

One file, WAL, \`synchronous=NORMAL\`; raw windows of 10 s, 1-minute and 1-hour rollups (\`bench/src/store.ts\`).
Writes: ${fmt(s.write.series)} series per window (40 % gauges, 30 % counters, 30 % timers with a 50-sample sketch),
one transaction per window, median of 10 windows after the one that creates the series. Queries: median of 20 (single)
and 5 (fleet) runs over a file holding 24 h of one gauge and of a timer on ${s.query.fleetInstances} instances, rolled up.

${table(
  ['measure', 'value', 'target'],
  [
    [
      `points written per second (${fmt(s.write.series)} series, one window)`,
      `${fmt(s.write.pointsPerSecond)}/s (${fmt(s.write.msPerWindow, 0)} ms a window)`,
      `≥ 500,000/s: ${ok(s.write.pointsPerSecond >= 500_000)}`,
    ],
    [
      `24 h of one series at 10 s (${fmt(s.query.singlePoints)} points)`,
      `${fmt(s.query.singleMs, 2)} ms`,
      `< 10 ms: ${ok(s.query.singleMs < 10)}`,
    ],
    [
      `p99 merged across ${s.query.fleetInstances} instances over 24 h (${fmt(s.query.fleetPoints)} points from ${s.query.fleetResolution} s rows)`,
      `${fmt(s.query.fleetMs, 1)} ms`,
      `< 100 ms: ${ok(s.query.fleetMs < 100)}`,
    ],
    ['rollup of the 24 h (raw → 1 min → 1 h), rows read per second', `${fmt(s.query.rollupRowsPerSecond)}/s`, ''],
  ],
)}

Bytes per series per day (SQLite's own page accounting, \`dbstat\`, divided by the rows and scaled to one day):

${table(
  ['kind', 'raw (10 s)', '1 min', '1 h'],
  (['gauge', 'distribution'] as const).map((k) => [
    k === 'gauge' ? 'gauge or counter' : 'distribution (20 samples a window, sketch kept)',
    kb(s.bytes[k].raw),
    kb(s.bytes[k]['1m']),
    kb(s.bytes[k]['1h']),
  ]),
)}

With the default retention (raw 24 h, 1 min 15 d, 1 h 1 y), a gauge costs about ${fmt((s.bytes.gauge.raw + 15 * s.bytes.gauge['1m'] + 365 * s.bytes.gauge['1h']) / 1024 / 1024, 1)} MiB at steady state, a distribution about ${fmt((s.bytes.distribution.raw + 15 * s.bytes.distribution['1m'] + 365 * s.bytes.distribution['1h']) / 1024 / 1024, 1)} MiB.
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
