import { DURATION_FORMS, parseDuration, parseSize, SIZE_FORMS } from 'ekg-vitals';
import { SET_DEFAULTS } from './aggregate/aggregator.js';
import { ConfigError } from './errors.js';
import { defaultMaxConnections, LISTEN_FORMS, type ListenAddress, parseListen, STATSD_FORMS } from './ingest/listeners.js';
import { QUERY_MAX_POINTS, QUERY_TIMEOUT } from './store/budget.js';

/**
 * The agent's options, each written once: its flag, `EKG_AGENT_*` env var and YAML key (both derived from the
 * flag's name), its kind (which parser reads it), default, `--help` text and docs text. Flag parsing, env reading,
 * the YAML file's keys, `ekg-agent --help` and the table in docs/agent-config.md (`npm run docs`) all read this.
 */

/** How a value is read: each kind is one of the repo's parsers (the library's for durations and sizes). */
export type Kind =
  | 'statsd' // parseListen with udp:// and tcp://
  | 'listen' // parseListen
  | 'duration' // parseDuration, at least 100 ms
  | 'duration0' // the same, or 0 for never
  | 'size' // parseSize
  | 'count' // a whole number ≥ 1
  | 'choice' // one of `choices`
  | 'text' // a path or other string, taken as it is
  | 'urls' // http(s) URLs, comma-separated
  | 'list'; // YAML only: a list read by its own reader (exporters, alerts, notify)

export interface OptionSpec {
  /** the flag without `--`; the env var is EKG_AGENT_<NAME>, the YAML key <name> with `_` for `-` */
  readonly name: string;
  /** the value's placeholder in --help and the docs */
  readonly arg: string;
  readonly kind: Kind;
  readonly choices?: readonly string[];
  /** the default as a user would type it; undefined: none */
  readonly default?: string | (() => string);
  /** the default as the docs and --help say it, when not the value itself */
  readonly defaultText?: string;
  /** one line in --help */
  readonly help: string;
  /** the description in docs/agent-config.md (Markdown) */
  readonly doc: string;
  /** repeatable as a flag, comma-separated in env, a list in YAML */
  readonly repeatable?: boolean;
  /** set in the YAML file only */
  readonly yamlOnly?: boolean;
  /** the env column of the docs, when not just EKG_AGENT_<NAME> */
  readonly envDoc?: string;
  /** bounds of a number option, as a user types them (`4k`, `1g`): checked by numberOf, shown in --help and the docs */
  readonly min?: string;
  readonly max?: string;
  /** why the maximum is where it is, added to the error past it */
  readonly maxWhy?: string;
}

export const OPTIONS = [
  {
    name: 'statsd',
    arg: '[HOST:]PORT',
    kind: 'statsd',
    default: '127.0.0.1:8125',
    help: 'StatsD over UDP and TCP ("off" to disable); udp://HOST:PORT or tcp://HOST:PORT for one of them only. On Heroku (HEROKU_METRICS_URL and PORT set) the default is UDP only on 127.0.0.1:$PORT, where agentmon listens',
    doc: 'StatsD over UDP and TCP on the same port; `udp://HOST:PORT` or `tcp://HOST:PORT` for one of them; `off` disables both. With `HEROKU_METRICS_URL` and `PORT` set and no address given: UDP only on `127.0.0.1:$PORT` ([agent-statsd.md](agent-statsd.md#where-the-agent-listens))',
  },
  {
    name: 'statsd-unix',
    arg: 'PATH',
    kind: 'text',
    help: 'StatsD over a Unix stream socket',
    doc: 'StatsD over a Unix stream socket (newline-separated lines)',
  },
  {
    name: 'http',
    arg: '[HOST:]PORT',
    kind: 'listen',
    default: '127.0.0.1:8787',
    help: 'HTTP: /heartbeat, /metrics, /api/v1/self, POST /v1/push ("off" to disable)',
    doc: '`/heartbeat`, `/metrics`, `/api/v1/self`, `POST /v1/push`; `off` disables',
  },
  {
    name: 'data',
    arg: 'DIR',
    kind: 'text',
    default: '.ekg-agent',
    help: 'data directory',
    doc: "data directory (the store and the exporters' spools live here)",
  },
  {
    name: 'flush-interval',
    arg: 'DUR',
    kind: 'duration',
    default: '10s',
    help: 'window length, e.g. 10s, 1m',
    doc: 'window length; windows are aligned to the wall clock (`:00`, `:10`, …)',
  },
  {
    name: 'recv-buffer',
    arg: 'SIZE',
    kind: 'size',
    default: '8m',
    min: '4k',
    // SO_RCVBUF is a C int and Node refuses more than 4 GiB: past 1 GiB nobody means it
    max: '1g',
    maxWhy: 'the kernel caps it lower still: net.core.rmem_max',
    help: 'UDP receive buffer; Linux caps it at net.core.rmem_max',
    doc: 'UDP receive buffer; Linux caps it at `net.core.rmem_max` (raise that with `sysctl` for bursts)',
  },
  {
    name: 'max-series',
    arg: 'N',
    kind: 'count',
    default: '100000',
    help: 'cardinality cap',
    doc: 'cardinality cap: samples for new series past it are dropped and counted (`dropped_cardinality`)',
  },
  {
    name: 'statsd-max-connections',
    arg: 'N',
    kind: 'count',
    default: () => String(defaultMaxConnections()),
    defaultText: 'a quarter of the open-file limit, at most 1000',
    help: 'StatsD TCP and Unix connections held at once; more are closed at once and counted',
    doc: 'StatsD TCP and Unix connections open at once; more are closed at once and counted (`statsd_connections_refused`)',
  },
  {
    name: 'http-max-connections',
    arg: 'N',
    kind: 'count',
    default: () => String(defaultMaxConnections()),
    defaultText: 'a quarter of the open-file limit, at most 1000',
    help: 'HTTP connections held at once; past it a new one evicts the oldest idle one, or is closed when none is idle; both counted',
    doc: 'HTTP connections held at once; past it a new connection evicts the oldest one with no request in progress (`http_connections_evicted`), or is closed when every one is serving (`http_connections_refused`): see [limits.md](limits.md#agent-http-server-and-query-api)',
  },
  {
    name: 'statsd-idle-timeout',
    arg: 'DUR',
    kind: 'duration0',
    default: '5m',
    help: 'close a StatsD connection silent this long (0: never)',
    doc: 'a StatsD connection silent this long is closed (`statsd_connections_idle_closed`); `0` never',
  },
  {
    name: 'set-max-members',
    arg: 'N',
    kind: 'count',
    default: String(SET_DEFAULTS.maxSetMembers),
    help: 'distinct members a set keeps per window; more are counted drops',
    doc: 'distinct members one set keeps per window; more are dropped and counted (`dropped_set_members`)',
  },
  {
    name: 'set-max-bytes',
    arg: 'SIZE',
    kind: 'size',
    default: '1m',
    help: 'bytes of members a set keeps per window; more are counted drops',
    doc: 'bytes of members one set keeps per window; more are dropped and counted (`dropped_set_members`)',
  },
  {
    name: 'console',
    arg: 'MODE',
    kind: 'choice',
    choices: ['off', 'summary', 'verbose'],
    default: 'summary',
    help: 'console sink: off, summary or verbose',
    doc: 'console sink: `off`, `summary` (one line per window), `verbose` (every series)',
  },
  {
    name: 'scrape',
    arg: 'URL',
    kind: 'urls',
    repeatable: true,
    help: 'scrape an ekg /stats JSON or Prometheus /metrics URL and probe its /heartbeat',
    doc: "targets to scrape and probe, see [agent-scrape.md](agent-scrape.md); flags or env replace the file's list",
  },
  {
    name: 'scrape-interval',
    arg: 'DUR',
    kind: 'duration',
    default: '10s',
    help: 'how often each target is scraped',
    doc: 'default round interval of each target',
  },
  {
    name: 'scrape-timeout',
    arg: 'DUR',
    kind: 'duration',
    default: '5s',
    help: 'per request',
    doc: 'default per-request timeout',
  },
  {
    name: 'store',
    arg: 'KIND',
    kind: 'choice',
    choices: ['sqlite', 'prometheus', 'off'],
    default: 'sqlite',
    help: 'sqlite (a file under --data), prometheus (read from --store-url), or off',
    doc: '`sqlite` (`<data>/ekg.db`), `prometheus` (read from `--store-url`), or `off`; see [agent-store.md](agent-store.md)',
  },
  {
    name: 'store-url',
    arg: 'URL',
    kind: 'urls',
    help: 'a Prometheus-compatible query API, e.g. http://127.0.0.1:8428 (VictoriaMetrics)',
    doc: 'a Prometheus-compatible query API for `store: prometheus`, e.g. `http://127.0.0.1:8428`',
  },
  {
    name: 'retention-raw',
    arg: 'DUR',
    kind: 'duration',
    default: '24h',
    help: 'how long raw windows are kept (at least 1h and ten flush intervals)',
    doc: 'how long raw windows are kept (at least `1h` and ten flush intervals)',
  },
  {
    name: 'retention-1m',
    arg: 'DUR',
    kind: 'duration',
    default: '15d',
    help: '1-minute rollups (at least retention-raw)',
    doc: 'how long 1-minute rollups are kept (at least `retention-raw`)',
  },
  {
    name: 'retention-1h',
    arg: 'DUR',
    kind: 'duration',
    default: '1y',
    help: '1-hour rollups (at least retention-1m)',
    doc: 'how long 1-hour rollups are kept (at least `retention-1m`)',
  },
  {
    name: 'instance-retention',
    arg: 'DUR',
    kind: 'duration',
    default: '1h',
    help: 'an instance silent this long is gone: left out of /api/v1/instances and removed from the store',
    doc: 'an instance silent this long is *gone*: left out of `/api/v1/instances` and its row removed (stale after 3 missed windows; see [time-model.md](time-model.md))',
  },
  {
    name: 'store-max-size',
    arg: 'SIZE',
    kind: 'size',
    default: '0',
    defaultText: 'none',
    help: 'a cap on the SQLite file, e.g. 2g',
    doc: 'a cap on the SQLite file (`2g`, `500m`): past it, windows are held in memory and reported as a full disk would be',
  },
  {
    name: 'query-max-points',
    arg: 'N',
    kind: 'count',
    default: String(QUERY_MAX_POINTS),
    help: 'points (series × steps) one API request may read',
    doc: "points (series × steps) one API request may read, across a batch's queries; past it a `413` naming `query_max_points`: see [limits.md](limits.md#agent-http-server-and-query-api)",
  },
  {
    name: 'query-timeout',
    arg: 'DUR',
    kind: 'duration',
    default: `${QUERY_TIMEOUT / 1000}s`,
    help: "wall time one API request's queries may take",
    doc: "wall time one API request's queries may take; past it a `503` naming `query_timeout`",
  },
  {
    name: 'remote-write',
    arg: 'URL',
    kind: 'urls',
    repeatable: true,
    help: 'send every window to a Prometheus remote-write endpoint',
    doc: 'send every window to a Prometheus remote-write endpoint',
  },
  {
    name: 'token-file',
    arg: 'FILE',
    kind: 'text',
    help: "a bearer token (the file's first line) for the API, /metrics and pushes; or EKG_AGENT_TOKEN. The dashboard asks for it once. /heartbeat stays open",
    doc: "a bearer token (at least 8 printable characters, the file's first line) for the API, `/metrics` and pushes; the dashboard asks for it once; `/heartbeat` stays open. Never a flag or YAML value in clear, so it stays out of `ps` and config files",
    envDoc: '`EKG_AGENT_TOKEN` (the token itself) or `EKG_AGENT_TOKEN_FILE`',
  },
  {
    name: 'exporters',
    arg: '',
    kind: 'list',
    yamlOnly: true,
    help: '',
    doc: 'Mackerel, Heroku JSON, OTLP, Graphite, InfluxDB and remote-write exporters, each `{type: …, …}`: see [agent-exporters.md](agent-exporters.md)',
  },
  {
    name: 'alerts',
    arg: '',
    kind: 'list',
    yamlOnly: true,
    defaultText: 'the built-in rules',
    help: '',
    doc: 'alert rules `{name, metric, agg, by, above/below, for, severity, …}`, and overrides of the built-ins: see [agent-alerts.md](agent-alerts.md)',
  },
  {
    name: 'notify',
    arg: '',
    kind: 'list',
    yamlOnly: true,
    help: '',
    doc: "where alerts go: `{type: webhook\\|slack\\|mackerel, …}`, through a spool like the exporters': see [agent-alerts.md](agent-alerts.md)",
  },
] as const satisfies readonly OptionSpec[];

export type OptionName = (typeof OPTIONS)[number]['name'];
/** Options given as flags and env vars (all but the YAML-only lists). */
export type FlagName = Exclude<OptionName, 'exporters' | 'alerts' | 'notify'>;

const byName = new Map<string, OptionSpec>(OPTIONS.map((o) => [o.name, o]));

export const optionOf = (name: string): OptionSpec | undefined => byName.get(name);
export const envName = (name: string): string => `EKG_AGENT_${name.toUpperCase().replace(/-/g, '_')}`;
export const yamlKey = (name: string): string => name.replace(/-/g, '_');
/** The flag names (without `--`), in the table's order. */
export const FLAGS: readonly FlagName[] = OPTIONS.filter((o: OptionSpec) => !o.yamlOnly).map((o) => o.name as FlagName);
/** YAML key → option name, in the table's order. */
export const YAML_KEYS: Readonly<Record<string, OptionName>> = Object.fromEntries(OPTIONS.map((o) => [yamlKey(o.name), o.name]));

/** The default as a user would type it, or undefined. */
export function defaultOf(name: OptionName): string | undefined {
  const d = (byName.get(name) as OptionSpec).default;
  return typeof d === 'function' ? d() : d;
}

/** The forms an option's kind accepts, for error messages and docs. */
export function formsOf(o: OptionSpec): string {
  switch (o.kind) {
    case 'statsd':
      return STATSD_FORMS;
    case 'listen':
      return LISTEN_FORMS;
    case 'duration':
      return `${DURATION_FORMS}, of at least 100ms`;
    case 'duration0':
      return `${DURATION_FORMS}, of at least 100ms, or 0`;
    case 'size':
      return SIZE_FORMS;
    case 'count':
      return 'a whole number ≥ 1';
    case 'choice':
      return (o.choices ?? []).join(', ');
    case 'urls':
      return 'http:// or https:// URLs';
    default:
      return 'a string';
  }
}

/** What a value of the option looks like: its placeholder and forms (`N, a whole number ≥ 1`). */
export function valueForms(name: string): string {
  const o = byName.get(name);
  return o ? `${o.arg}, ${formsOf(o)}` : 'a value';
}

/** A duration flag or key (the library's one parser: a bare number is seconds), at least 100 ms. */
export function duration(s: string, field: string): number {
  const n = parseDuration(s);
  if (!(n >= 100)) throw new ConfigError(`${field}: "${s}" is not ${DURATION_FORMS}, of at least 100ms`);
  return n;
}

/** A size flag or key (the library's one parser): `2g`, `500m`, `64k` or a number of bytes. */
export function bytes(s: string, field: string): number {
  const n = parseSize(s);
  if (!Number.isFinite(n)) throw new ConfigError(`${field}: "${s}" is not ${SIZE_FORMS}`);
  return n;
}

/** A whole number of at least `min`. */
export function int(s: string, field: string, min: number): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`${field}: "${s}" must be a whole number ≥ ${min}`);
  return n;
}

/** One http(s) URL, normalised; `field` starts the error. */
export function url(t: string, field: string): string {
  let u: URL;
  try {
    u = new URL(t);
  } catch {
    throw new ConfigError(`${field}: "${t}" is not a URL; the forms are http://HOST[:PORT][/PATH] or https://…`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`${field}: "${t}" must be an http:// or https:// URL`);
  return u.href;
}

/** http(s) URLs, comma-separated; each normalised. */
export function urls(v: string, field: string): string[] {
  return v
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => url(t, field));
}

/** A listen address, `undefined` for `off`; a bad one names the forms. */
export function listenOf(name: 'statsd' | 'http', v: string): ListenAddress | undefined {
  const a = parseListen(v, '127.0.0.1', { schemes: name === 'statsd' });
  if (a === undefined)
    throw new ConfigError(
      `${name}: "${v}" is not [HOST:]PORT or another listen address; the forms are ${formsOf(byName.get(name) as OptionSpec)}`,
    );
  return a === 'off' ? undefined : a;
}

/** A number-valued option (duration, size or count) read by its kind's parser, from its value or its default. */
export function numberOf(name: FlagName, text: string | undefined): number {
  const o = byName.get(name) as OptionSpec;
  const v = text ?? defaultOf(name) ?? '0';
  const n = numberIn(o, v, name);
  if (o.min !== undefined && n < numberIn(o, o.min, name)) throw new ConfigError(`${name}: ${n} is under the minimum of ${o.min}`);
  if (o.max !== undefined && n > numberIn(o, o.max, name))
    throw new ConfigError(`${name}: ${n} is over the maximum of ${o.max}${o.maxWhy ? ` (${o.maxWhy})` : ''}`);
  return n;
}

function numberIn(o: OptionSpec, v: string, name: string): number {
  if (o.kind === 'duration') return duration(v, name);
  if (o.kind === 'duration0') return parseDuration(v) === 0 ? 0 : duration(v, name);
  if (o.kind === 'size') return bytes(v, name);
  if (o.kind === 'count') return int(v, name, 1);
  throw new Error(`${name} is no number option`);
}

/** `from 4k to 1g`, `at least 4k`, or '' for an option without bounds. */
export function boundsText(o: OptionSpec, code = (s: string) => s): string {
  if (o.min !== undefined && o.max !== undefined) return `from ${code(o.min)} to ${code(o.max)}`;
  if (o.min !== undefined) return `at least ${code(o.min)}`;
  if (o.max !== undefined) return `at most ${code(o.max)}`;
  return '';
}

/** A choice option's value, from its value or its default. */
export function choiceOf<T extends string>(name: FlagName, text: string | undefined): T {
  const o = byName.get(name) as OptionSpec;
  const v = text ?? defaultOf(name) ?? '';
  const choices = o.choices ?? [];
  if (!choices.includes(v)) {
    const list = choices.length > 2 ? `${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}` : choices.join(' or ');
    throw new ConfigError(`${name}: "${v}" must be ${list}`);
  }
  return v as T;
}

const wrap = (text: string, width: number): string[] => {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
};

/** `ekg-agent --help`, from the table. */
export function helpText(): string {
  const col = 27;
  const rows: Array<[string, string]> = [];
  for (const o of OPTIONS as readonly OptionSpec[]) {
    if (o.yamlOnly) continue;
    const d = o.defaultText ?? (typeof o.default === 'function' ? undefined : o.default);
    const extra = [
      boundsText(o),
      d !== undefined ? `default ${d}` : '',
      o.repeatable ? `repeatable; ${envName(o.name)} takes a comma-separated list` : '',
    ].filter(Boolean);
    rows.push([`--${o.name} ${o.arg}`, `${o.help}${extra.length ? ` (${extra.join('; ')})` : ''}`]);
  }
  rows.push(
    [
      '--config FILE',
      'a YAML file with the same settings (statsd:, http:, flush_interval:, scrape: […], …); scrape items there may set their own interval, timeout, format and heartbeat; exporters:, alerts: and notify: are set there only: docs/agent-config.md, docs/agent-alerts.md',
    ],
    ['--help', 'this text'],
    ['--version', 'the version'],
  );
  const body = rows
    .map(([left, text]) => {
      const first = `  ${left}`;
      const pad = first.length < col - 1 ? first.padEnd(col) : `${first}  `;
      const lines = wrap(text, 118 - col);
      return [pad + (lines[0] ?? ''), ...lines.slice(1).map((l) => ' '.repeat(col) + l)].join('\n');
    })
    .join('\n');
  return `ekg-agent: receives StatsD and pushes from apps, aggregates them per window.

Usage: ekg-agent [options]
       ekg-agent run [options] -- <command…>   start the agent and an app reporting into it (see ekg-agent run --help)

${body}

Each option can also be set as EKG_AGENT_<NAME> (e.g. EKG_AGENT_STATSD=0.0.0.0:8125) and as <name> in the YAML file
(with _ for -). Flags win over env vars, which win over the config file. Reference: docs/agent-config.md.
`;
}

/** The settings table of docs/agent-config.md (Markdown), from the table. */
export function docTable(): string {
  const rows = ['| flag | env | YAML key | default | |', '|---|---|---|---|---|'];
  for (const o of OPTIONS as readonly OptionSpec[]) {
    const flag = o.yamlOnly ? '—' : `\`--${o.name} ${o.arg}\`${o.repeatable ? ' (repeatable)' : ''}`;
    const env = o.yamlOnly ? '—' : (o.envDoc ?? `\`${envName(o.name)}\`${o.repeatable ? ' (comma-separated)' : ''}`);
    const key = `\`${yamlKey(o.name)}\`${o.repeatable || o.kind === 'list' ? ' (list)' : ''}`;
    const d = o.defaultText ?? (typeof o.default === 'string' ? `\`${o.default}\`` : '—');
    const bounds = boundsText(o, (v) => `\`${v}\``);
    rows.push(`| ${flag} | ${env} | ${key} | ${d} | ${o.doc}${bounds ? ` (${bounds})` : ''} |`);
  }
  return `${rows.join('\n')}\n`;
}

export const DOC_BEGIN = '<!-- options:begin (made from packages/agent/src/options.ts by `npm run docs`; edit there) -->';
export const DOC_END = '<!-- options:end -->';

/** docs/agent-config.md with the table between its markers made again from the option table. */
export function docWithTable(page: string): string {
  const a = page.indexOf(DOC_BEGIN);
  const b = page.indexOf(DOC_END);
  if (a === -1 || b < a) throw new Error(`docs/agent-config.md lacks the markers ${DOC_BEGIN} … ${DOC_END}`);
  return `${page.slice(0, a + DOC_BEGIN.length)}\n\n${docTable()}\n${page.slice(b)}`;
}
