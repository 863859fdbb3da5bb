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
  /** keep numbers inside arrays (mackerel-plugin-json skips them) */
  arrayScalars: boolean;
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
  -array-scalars      also keep numbers inside arrays ({"top":[7,8]} → custom.top.0, custom.top.1), which
                      mackerel-plugin-json skips

With MACKEREL_AGENT_PLUGIN_META=1, prints graph definitions (# mackerel-agent-plugin, then JSON) instead.
Exit status: 0, or 2 with one line on stderr when the fetch, the HTTP status or the JSON fails.
A null inside an array, where mackerel-plugin-json crashes, is skipped like any other null.
`;

/**
 * A Go (RE2) expression as a JavaScript one, for the forms mackerel-plugin-json users write that
 * JavaScript spells differently: leading flags `(?i)`, `(?s)`, `(?m)`, and `\A` / `\z` for the
 * start and end of the text. The rest of RE2's syntax is JavaScript's too.
 */
export function goRegExp(v: string): RegExp {
  const m = /^\(\?([ims]+)\)/.exec(v);
  const body = (m ? v.slice(m[0].length) : v).replace(/(^|[^\\])\\A/g, '$1^').replace(/(^|[^\\])\\z/g, '$1$$');
  return new RegExp(body, m ? [...new Set(m[1])].join('') : '');
}

const FLAGS = ['url', 'stdin', 'insecure', 'prefix', 'include', 'exclude', 'diff', 'header', 'timeout', 'format', 'array-scalars'];

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
    arrayScalars: false,
  };
  const regexp = (flag: string, v: string) => {
    try {
      return goRegExp(v);
    } catch (err) {
      throw new UsageError(`-${flag}: "${v}" is not a valid regular expression (${(err as Error).message})`);
    }
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '-h' || a === '-help' || a === '--help') return 'help';
    const m = /^--?([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new UsageError(`unexpected argument "${a}"; see ekg json -help`);
    const name = m[1] as string;
    if (!FLAGS.includes(name)) throw new UsageError(`unknown flag -${name}; see ekg json -help`);
    const bool = name === 'stdin' || name === 'insecure' || name === 'array-scalars';
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
      case 'array-scalars':
        o.arrayScalars = value !== 'false';
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
 * mackerel-plugin-json's naming, exactly (its `traverseMap`, read from its source and checked against
 * its output on 200 random documents, test/fixtures/mackerel-plugin-json):
 * - keys are joined with `.` under the prefix, as they are (an empty key leaves `a.` or `a..b`);
 * - an element of an array is named by its index; an array held by a key is numbered *in place of its
 *   key* (`{"a":[{"x":1}]}` → `prefix.0.x`, the key `a` dropped); an array at the top is numbered;
 * - only numbers held by a key become metrics: strings, booleans, `null`, and numbers (or anything
 *   else that is not an object or an array) directly inside an array are skipped;
 * - where the plugin crashes (a `null` inside an array, or a document that is `null`), ekg skips the
 *   null and goes on.
 * With `arrayScalars` (the opt-in `-array-scalars`), a number inside an array is kept too, named
 * `<path>.<key>.<i>` when the array is held by a key and `<path>.<i>` otherwise. When two paths give
 * one name the plugin keeps one at random (Go's map order); ekg keeps the later in JavaScript's key order.
 */
export function flatten(
  doc: unknown,
  prefix: string,
  keep: (name: string) => boolean = () => true,
  arrayScalars = false,
): Map<string, number> {
  const out = new Map<string, number>();
  // depth-first in document order, on an explicit stack: a document nested 100,000 deep is a
  // document, not a stack overflow. A frame is an object or array to open, or a value to keep.
  type Frame = { v: object; path: string } | { name: string; n: unknown };
  const stack: Frame[] = [];
  if (doc !== null && typeof doc === 'object') stack.push({ v: doc, path: prefix });
  const next: Frame[] = [];
  const elements = (arr: unknown[], path: string, scalarPath: string) => {
    for (let i = 0; i < arr.length; i++) {
      const c = arr[i];
      if (c !== null && typeof c === 'object') next.push({ v: c, path: `${path}.${i}` });
      else if (arrayScalars) next.push({ name: `${scalarPath}.${i}`, n: c });
    }
  };
  for (let f = stack.pop(); f !== undefined; f = stack.pop()) {
    if ('name' in f) {
      // a number too large for a double (1e400) is Infinity here; the plugin refuses the whole document
      if (typeof f.n === 'number' && Number.isFinite(f.n) && keep(f.name)) out.set(f.name, f.n);
      continue;
    }
    const { v, path } = f;
    if (Array.isArray(v)) elements(v, path, path);
    else
      for (const k of Object.keys(v)) {
        const c = (v as Record<string, unknown>)[k];
        if (c === null) continue;
        if (Array.isArray(c)) elements(c, path, `${path}.${k}`);
        else if (typeof c === 'object') next.push({ v: c, path: `${path}.${k}` });
        else next.push({ name: `${path}.${k}`, n: c });
      }
    while (next.length > 0) stack.push(next.pop() as Frame);
  }
  return out;
}

/**
 * Go's `%f`: the exact decimal value of the double rounded to six decimals, ties to even (JavaScript's
 * toFixed rounds ties up: 0.0078125 is 0.007812 in Go, 0.007813 in JS), every integer digit, the sign
 * of a negative zero kept.
 */
export function goFloat(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  const neg = v < 0 || Object.is(v, -0);
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(v));
  const bits = view.getBigUint64(0);
  const field = Number(bits >> 52n);
  const fraction = bits & ((1n << 52n) - 1n);
  // |v| = mantissa × 2^exp
  const mantissa = field === 0 ? fraction : fraction | (1n << 52n);
  const exp = field === 0 ? -1074 : field - 1075;
  let scaled: bigint;
  if (exp >= 0) scaled = (mantissa << BigInt(exp)) * 1_000_000n;
  else {
    const num = mantissa * 1_000_000n;
    const den = 1n << BigInt(-exp);
    scaled = num / den;
    const twice = (num % den) * 2n;
    if (twice > den || (twice === den && scaled % 2n === 1n)) scaled++;
  }
  const digits = scaled.toString().padStart(7, '0');
  return `${neg ? '-' : ''}${digits.slice(0, -6)}.${digits.slice(-6)}`;
}

/** Byte order of the UTF-8 encodings, as Go sorts strings (and `LC_ALL=C sort`). */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** A string as Go's encoding/json writes it: HTML-safe escapes, \u2028/\u2029, lone surrogates as U+FFFD. */
function goJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s[i] as string;
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x08) out += '\\b';
    else if (c === 0x0c) out += '\\f';
    else if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26 || c === 0x2028 || c === 0x2029)
      out += `\\u${c.toString(16).padStart(4, '0')}`;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      out += ch + s[i + 1];
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd';
    else out += ch;
  }
  return `${out}"`;
}

/**
 * The -diff state exactly as mackerel-plugin-json's json.Encoder writes it: `{"last_timestamp":…,
 * "metrics":{…}}` and a newline, keys in byte order, so either program can read the other's file.
 */
export function goStateJson(now: number, metrics: Map<string, number>): string {
  const entries = [...metrics.keys()].sort(byteOrder).map((k) => {
    const v = metrics.get(k) as number;
    return `${goJsonString(k)}:${Object.is(v, -0) ? '-0' : String(v)}`;
  });
  return `{"last_timestamp":${now},"metrics":{${entries.join(',')}}}\n`;
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
    writeFileSync(`${file}.tmp`, goStateJson(now, metrics));
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
  const names = [...metrics.keys()].sort(byteOrder);
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

/** Where `ekg json` reads and writes: the process's own streams, or a test's. */
export interface JsonIo {
  stdin(): Promise<string>;
  stdout(s: string): void;
  stderr(s: string): void;
}

const processIo: JsonIo = {
  stdin: readStdin,
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
};

/** Runs `ekg json`; returns the exit code. */
export async function runJson(argv: string[], io: JsonIo = processIo): Promise<number> {
  let o: JsonOptions | 'help';
  try {
    o = parseJsonArgs(argv);
  } catch (err) {
    io.stderr(`ekg json: ${(err as Error).message}\n`);
    return 2;
  }
  if (o === 'help') {
    io.stdout(JSON_HELP);
    return 0;
  }
  let text: string;
  try {
    if (o.stdin) text = await io.stdin();
    else {
      const r = await get(o.url as string, { headers: o.headers, timeout: o.timeout, insecure: o.insecure, accept: 'application/json' });
      if (r.status < 200 || r.status > 299) {
        io.stderr(`ekg json: ${o.url} answered HTTP ${r.status}: ${r.body.slice(0, 120).replace(/\s+/g, ' ').trim()}\n`);
        return 2;
      }
      text = r.body;
    }
  } catch (err) {
    io.stderr(`ekg json: cannot fetch ${o.url ?? 'stdin'}: ${(err as Error & { code?: string }).code ?? (err as Error).message}\n`);
    return 2;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    io.stderr(`ekg json: ${o.url ?? 'stdin'} is not JSON: ${(err as Error).message}\n`);
    return 2;
  }
  const opts = o;
  const metrics = flatten(doc, opts.prefix, (n) => opts.include.test(n) && !opts.exclude.test(n), opts.arrayScalars);
  const now = Math.floor(Date.now() / 1000);
  if (process.env.MACKEREL_AGENT_PLUGIN_META === '1') {
    io.stdout(`# mackerel-agent-plugin\n${JSON.stringify(graphDefinitions(metrics, opts.prefix))}\n`);
    return 0;
  }
  if (opts.diff) applyDiff(metrics, opts.diff, stateFile(opts.prefix, opts.url ?? ''), now, (s) => io.stderr(`ekg json: ${s}\n`));
  io.stdout(render(metrics, opts, now));
  return 0;
}
