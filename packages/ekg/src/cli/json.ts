import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defOf } from '../catalogue.js';
import { metricName } from '../formats/prometheus.js';
import { get } from './http-get.js';

/**
 * `ekg json`: a drop-in for mackerel-plugin-json. Same flags, same metric names, same state file for
 * `-diff`; but a failed fetch, a bad HTTP status or bad JSON is an exit code and one stderr line
 * (the original prints nothing and exits 0), there is a timeout, graph definitions with units, and
 * other output formats.
 */

export interface JsonOptions {
  url?: string;
  stdin: boolean;
  prefix: string;
  include: RegExp;
  exclude: RegExp;
  diff?: RegExp;
  headers: Array<[string, string]>;
  insecure: boolean;
  timeout: number;
  format: 'mackerel' | 'prometheus' | 'statsd' | 'json';
}

export class UsageError extends Error {}

export const JSON_HELP = `Usage: ekg json -url URL | -stdin [options]

Flattens a JSON document into metrics, as mackerel-plugin-json does: name<TAB>value<TAB>epoch per number.

  -url URL            fetch the JSON from URL (e.g. http://127.0.0.1:3000/ops/stats)
  -stdin              read the JSON from standard input instead
  -prefix P           prefix of every name (default "custom")
  -include RE         only names matching RE (full dotted name, prefix included)
  -exclude RE         leave out names matching RE (default ^$)
  -diff RE            for names matching RE, the per-minute rate since the last run (0 on the first run,
                      after a gap over 600 s, and on a counter reset); state under MACKEREL_PLUGIN_WORKDIR
  -header "N: v"      a request header (repeatable)
  -insecure           skip TLS certificate verification
  -timeout DUR        give up on the fetch after DUR (default 10s)
  --format F          mackerel (default), prometheus, statsd or json

With MACKEREL_AGENT_PLUGIN_META=1, prints graph definitions (# mackerel-agent-plugin, then JSON) instead.
Exit status: 0, or 2 with one line on stderr when the fetch, the HTTP status or the JSON fails.
`;

/** Go's flag syntax (-name value, -name=value, --name, booleans without a value). */
export function parseJsonArgs(argv: string[]): JsonOptions | 'help' {
  const o: JsonOptions = {
    stdin: false,
    prefix: 'custom',
    include: /(?:)/,
    exclude: /^$/,
    headers: [],
    insecure: false,
    timeout: 10_000,
    format: 'mackerel',
  };
  const regexp = (flag: string, v: string) => {
    try {
      return new RegExp(v);
    } catch (err) {
      throw new UsageError(`-${flag}: "${v}" is not a valid regular expression (${(err as Error).message})`);
    }
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '-h' || a === '-help' || a === '--help') return 'help';
    const m = /^--?([a-z]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new UsageError(`unexpected argument "${a}"; see ekg json -help`);
    const name = m[1] as string;
    if (!['url', 'stdin', 'insecure', 'prefix', 'include', 'exclude', 'diff', 'header', 'timeout', 'format'].includes(name))
      throw new UsageError(`unknown flag -${name}; see ekg json -help`);
    const bool = name === 'stdin' || name === 'insecure';
    const value = m[2] ?? (bool ? 'true' : argv[++i]);
    if (value === undefined) throw new UsageError(`-${name} needs a value`);
    switch (name) {
      case 'url':
        o.url = value;
        break;
      case 'stdin':
        o.stdin = value !== 'false';
        break;
      case 'insecure':
        o.insecure = value !== 'false';
        break;
      case 'prefix':
        o.prefix = value;
        break;
      case 'include':
        o.include = regexp(name, value);
        break;
      case 'exclude':
        o.exclude = regexp(name, value);
        break;
      case 'diff':
        if (value !== '') o.diff = regexp(name, value);
        break;
      case 'header': {
        const c = value.indexOf(':');
        if (c <= 0) throw new UsageError(`-header: "${value}" must be "Name: value"`);
        o.headers.push([value.slice(0, c).trim(), value.slice(c + 1).trim()]);
        break;
      }
      case 'timeout': {
        const t = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value);
        if (!t) throw new UsageError(`-timeout: "${value}" is not a duration like 5s or 500ms`);
        o.timeout = Number(t[1]) * ({ ms: 1, s: 1000, m: 60_000 }[t[2] ?? 's'] as number);
        break;
      }
      case 'format':
        if (!['mackerel', 'prometheus', 'statsd', 'json'].includes(value))
          throw new UsageError(`--format: "${value}" must be mackerel, prometheus, statsd or json`);
        o.format = value as JsonOptions['format'];
        break;
      default:
        throw new UsageError(`unknown flag -${name}; see ekg json -help`);
    }
  }
  if (!o.url && !o.stdin) throw new UsageError('-url or -stdin are mandatory');
  if (o.url && o.stdin) throw new UsageError('-url and -stdin are exclusive');
  return o;
}

/**
 * mackerel-plugin-json's naming, exactly: keys joined with `.` under the prefix; an array at the top
 * is numbered (`prefix.0.x`); an array inside an object is numbered *in place of its key*
 * (`{"a":[{"x":1}]}` → `prefix.0.x`, the key `a` dropped, as the original does); only numbers are
 * kept (strings, booleans and nulls skipped). Where the original crashes — an array of numbers —
 * each element is named `<path>.<key>.<i>`. Later keys win when names collide, as in the original's map.
 */
export function flatten(doc: unknown, prefix: string, keep: (name: string) => boolean = () => true): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (v: unknown, path: string[]): void => {
    if (Array.isArray(v)) {
      v.forEach((c, i) => {
        if (c !== null && typeof c === 'object') walk(c, [...path, String(i)]);
        else if (typeof c === 'number') put([...path, String(i)], c);
      });
      return;
    }
    if (v === null || typeof v !== 'object') return;
    for (const [k, c] of Object.entries(v as Record<string, unknown>)) {
      if (c === null) continue;
      if (Array.isArray(c)) {
        c.forEach((e, i) => {
          if (e !== null && typeof e === 'object') walk(e, [...path, String(i)]);
          else if (typeof e === 'number') put([...path, k, String(i)], e);
        });
      } else if (typeof c === 'object') walk(c, [...path, k]);
      else if (typeof c === 'number') put([...path, k], c);
    }
  };
  const put = (path: string[], n: number) => {
    const name = path.join('.');
    if (Number.isFinite(n) && keep(name)) out.set(name, n);
  };
  walk(doc, [prefix]);
  return out;
}

/** Go's `%f`: six decimals, every integer digit (no exponent, even for 1e300). */
export function goFloat(v: number): string {
  if (Math.abs(v) < 1e21) return v.toFixed(6);
  return `${BigInt(Math.trunc(v)).toString()}.000000`;
}

interface State {
  last_timestamp: number;
  metrics: Record<string, number>;
}

/** The state file mackerel-plugin-json keeps, so ekg json can take over from it without a gap. */
export function stateFile(prefix: string, url: string): string {
  const dir = process.env.MACKEREL_PLUGIN_WORKDIR || tmpdir();
  return join(
    dir,
    `mackerel-plugin-json.${createHash('sha1')
      .update(prefix + url)
      .digest('hex')}`,
  );
}

/** Per-minute rates for the names matching `re`, from the last run's values (saved again for the next). */
export function applyDiff(metrics: Map<string, number>, re: RegExp, file: string, now: number, warn: (s: string) => void): void {
  let last: State = { last_timestamp: 0, metrics: {} };
  try {
    last = JSON.parse(readFileSync(file, 'utf8')) as State;
  } catch {
    // first run, or a damaged file: every diff is 0 this time
  }
  let dt = now - (last.last_timestamp || 0);
  if (last.last_timestamp && dt > 600) {
    warn('the last run is over 600 s old: rates start again at 0');
    dt = 0;
  }
  try {
    writeFileSync(`${file}.tmp`, JSON.stringify({ last_timestamp: now, metrics: Object.fromEntries(metrics) }));
    renameSync(`${file}.tmp`, file);
  } catch (err) {
    warn(`cannot save the state to ${file}: ${(err as Error).message}`);
  }
  for (const [name, v] of metrics) {
    if (!re.test(name)) continue;
    const prev = last.metrics?.[name];
    if (prev === undefined || !(dt > 0)) {
      metrics.set(name, 0);
      continue;
    }
    const rate = ((v - prev) * 60) / dt;
    metrics.set(name, rate >= 0 ? rate : 0);
  }
}

const MACKEREL_UNITS: Record<string, string> = { ms: 'milliseconds', bytes: 'bytes', count: 'integer', seconds: 'seconds' };

/** Graph definitions for mackerel-agent: one graph per parent key, with the unit from ekg's catalogue. */
export function graphDefinitions(metrics: Map<string, number>, prefix: string): { graphs: Record<string, unknown> } {
  const graphs: Record<string, { label: string; unit: string; metrics: Array<{ name: string; label: string }> }> = {};
  for (const name of [...metrics.keys()].sort()) {
    const rel = name.startsWith(`${prefix}.`) ? name.slice(prefix.length + 1) : name;
    const i = rel.lastIndexOf('.');
    const key = i === -1 ? prefix : `${prefix === 'custom' ? '' : `${prefix}.`}${rel.slice(0, i)}`;
    const leaf = i === -1 ? rel : rel.slice(i + 1);
    const unit = MACKEREL_UNITS[defOf(rel)?.unit ?? ''] ?? 'float';
    graphs[key] ??= { label: key, unit, metrics: [] };
    graphs[key].metrics.push({ name: leaf, label: leaf });
  }
  return { graphs };
}

export function render(metrics: Map<string, number>, o: JsonOptions, now: number): string {
  const names = [...metrics.keys()].sort();
  switch (o.format) {
    case 'prometheus':
      return names.map((n) => `${metricName(n)} ${metrics.get(n)}\n`).join('');
    case 'statsd':
      return names.map((n) => `${n}:${metrics.get(n)}|g\n`).join('');
    case 'json':
      return `${JSON.stringify(Object.fromEntries(names.map((n) => [n, metrics.get(n)])))}\n`;
    default:
      return names.map((n) => `${n}\t${goFloat(metrics.get(n) as number)}\t${now}\n`).join('');
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Runs `ekg json`; returns the exit code. */
export async function runJson(argv: string[]): Promise<number> {
  let o: JsonOptions | 'help';
  try {
    o = parseJsonArgs(argv);
  } catch (err) {
    process.stderr.write(`ekg json: ${(err as Error).message}\n`);
    return 2;
  }
  if (o === 'help') {
    process.stdout.write(JSON_HELP);
    return 0;
  }
  let text: string;
  try {
    if (o.stdin) text = await readStdin();
    else {
      const r = await get(o.url as string, { headers: o.headers, timeout: o.timeout, insecure: o.insecure, accept: 'application/json' });
      if (r.status < 200 || r.status > 299) {
        process.stderr.write(`ekg json: ${o.url} answered HTTP ${r.status}: ${r.body.slice(0, 120).replace(/\s+/g, ' ').trim()}\n`);
        return 2;
      }
      text = r.body;
    }
  } catch (err) {
    process.stderr.write(
      `ekg json: cannot fetch ${o.url ?? 'stdin'}: ${(err as Error & { code?: string }).code ?? (err as Error).message}\n`,
    );
    return 2;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    process.stderr.write(`ekg json: ${o.url ?? 'stdin'} is not JSON: ${(err as Error).message}\n`);
    return 2;
  }
  const opts = o;
  const metrics = flatten(doc, opts.prefix, (n) => opts.include.test(n) && !opts.exclude.test(n));
  const now = Math.floor(Date.now() / 1000);
  if (process.env.MACKEREL_AGENT_PLUGIN_META === '1') {
    process.stdout.write(`# mackerel-agent-plugin\n${JSON.stringify(graphDefinitions(metrics, opts.prefix))}\n`);
    return 0;
  }
  if (opts.diff)
    applyDiff(metrics, opts.diff, stateFile(opts.prefix, opts.url ?? ''), now, (s) => process.stderr.write(`ekg json: ${s}\n`));
  process.stdout.write(render(metrics, opts, now));
  return 0;
}
