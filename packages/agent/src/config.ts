import { readFileSync } from 'node:fs';
import { parseDuration } from 'ekg';
import { SET_DEFAULTS } from './aggregate/aggregator.js';
import { type NotifierSpec, type Rule, type RuleDraft, resolveRules } from './alert/rules.js';
import { readConfigFile } from './config-file.js';
import { ConfigError } from './errors.js';
import type { ExporterSpec } from './export/spec.js';
import { defaultMaxConnections, type Endpoint, LISTEN_FORMS, parseListen, STATSD_FORMS } from './ingest/listeners.js';
import { type ScrapeSpec, type ScrapeTarget, targetOf } from './ingest/scrape.js';
import { bytes, duration } from './options.js';
import { QUERY_MAX_POINTS, QUERY_TIMEOUT } from './store/budget.js';

export { ConfigError } from './errors.js';
export { bytes, duration } from './options.js';

export interface AgentConfig {
  statsdUdp: Endpoint | undefined;
  statsdTcp: Endpoint | undefined;
  statsdUnix: string | undefined;
  /** why StatsD listens where it does, when it is not what the options say (Heroku mode) */
  statsdNote?: string;
  http: Endpoint | undefined;
  data: string;
  flushInterval: number;
  recvBuffer: number;
  /** StatsD TCP and Unix socket connections held at once */
  statsdMaxConnections: number;
  /** a silent StatsD connection is closed after this long, ms (0: never) */
  statsdIdleTimeout: number;
  /** per set, per window: distinct members and their bytes */
  setMaxMembers: number;
  setMaxBytes: number;
  maxSeries: number;
  idleWindows: number;
  console: 'off' | 'summary' | 'verbose';
  /** ekg /stats or Prometheus /metrics targets, each with its schedule and probe */
  scrape: ScrapeTarget[];
  /** where windows are kept and queries read: the SQLite file under `data`, a Prometheus-compatible API, or nowhere */
  store: 'sqlite' | 'prometheus' | 'off';
  /** the Prometheus-compatible query API (store: prometheus), e.g. http://127.0.0.1:8428 */
  storeUrl: string | undefined;
  retention: { raw: number; m1: number; h1: number };
  /** a cap on the SQLite file, bytes (0: none) */
  storeMaxBytes: number;
  /** Prometheus remote-write endpoints each window is sent to */
  remoteWrite: string[];
  /** exporters from the YAML file (and HEROKU_METRICS_URL), each with its own spool */
  exporters: ExporterSpec[];
  /** alert rules (the built-ins, overridden or added to by `alerts:` in the YAML file) and where to notify (`notify:`) */
  alerts: Rule[];
  notify: NotifierSpec[];
  /** points (series × steps) one API request may read, across its queries (docs/limits.md) */
  queryMaxPoints: number;
  /** ms one API request's queries may run */
  queryTimeout: number;
  /** when set, every HTTP path but /heartbeat and the dashboard's static files needs `Authorization: Bearer <token>` */
  token: string | undefined;
}

export const HELP = `ekg-agent: receives StatsD and pushes from apps, aggregates them per window.

Usage: ekg-agent [options]
       ekg-agent run [options] -- <command…>   start the agent and an app reporting into it (see ekg-agent run --help)

  --statsd [HOST:]PORT     StatsD over UDP and TCP (default 127.0.0.1:8125; "off" to disable);
                           udp://HOST:PORT or tcp://HOST:PORT for one of them only. On Heroku (HEROKU_METRICS_URL
                           and PORT set) the default is UDP only on 127.0.0.1:$PORT, where agentmon listens
  --statsd-unix PATH       StatsD over a Unix stream socket
  --http [HOST:]PORT       HTTP: /heartbeat, /metrics, /api/v1/self, POST /v1/push (default 127.0.0.1:8787)
  --data DIR               data directory (default ./.ekg-agent)
  --flush-interval DUR     window length, e.g. 10s, 1m (default 10s)
  --recv-buffer SIZE       UDP receive buffer (default 8m)
  --max-series N           cardinality cap (default 100000)
  --statsd-max-connections N  StatsD TCP and Unix connections held at once (default: a quarter of the
                           open-file limit, at most 1000); more are closed at once and counted
  --statsd-idle-timeout DUR   close a StatsD connection silent this long (default 5m; 0 never)
  --set-max-members N      distinct members a set keeps per window (default 100000); more are counted drops
  --set-max-bytes BYTES    bytes of members a set keeps per window (default 1m); more are counted drops
  --console MODE           console sink: off, summary or verbose (default summary)
  --scrape URL             scrape an ekg /stats JSON or Prometheus /metrics URL and probe its /heartbeat
                           (repeatable; EKG_AGENT_SCRAPE takes a comma-separated list)
  --scrape-interval DUR    how often (default 10s)
  --scrape-timeout DUR     per request (default 5s)
  --store KIND             sqlite (a file under --data, the default), prometheus (read from --store-url), or off
  --store-url URL          a Prometheus-compatible query API, e.g. http://127.0.0.1:8428 (VictoriaMetrics)
  --retention-raw DUR      how long raw windows are kept (default 24h)
  --retention-1m DUR       1-minute rollups (default 15d)
  --retention-1h DUR       1-hour rollups (default 1y)
  --store-max-size BYTES   a cap on the SQLite file (e.g. 2g; default none)
  --query-max-points N     points (series × steps) one API request may read (default ${QUERY_MAX_POINTS})
  --query-timeout DUR      wall time one API request's queries may take (default ${QUERY_TIMEOUT / 1000}s)
  --remote-write URL       send every window to a Prometheus remote-write endpoint (repeatable)
  --token-file FILE        a bearer token (the file's first line) for the API, /metrics and pushes;
                           or EKG_AGENT_TOKEN. The dashboard asks for it once. /heartbeat stays open
  --config FILE            a YAML file with the same settings (statsd:, http:, flush_interval:, scrape: […], …);
                           scrape items there may set their own interval, timeout, format and heartbeat;
                           alerts: and notify: (rules and where they go) are set there only: docs/agent-alerts.md
  --help                   this text
  --version                the version

Each option can also be set as EKG_AGENT_<NAME> (e.g. EKG_AGENT_STATSD=0.0.0.0:8125). Flags win over env vars,
which win over the config file. Reference: docs/agent-config.md.
`;

const FLAGS = [
  'statsd',
  'statsd-unix',
  'http',
  'data',
  'flush-interval',
  'recv-buffer',
  'max-series',
  'statsd-max-connections',
  'statsd-idle-timeout',
  'set-max-members',
  'set-max-bytes',
  'console',
  'scrape',
  'scrape-interval',
  'scrape-timeout',
  'store',
  'store-url',
  'retention-raw',
  'retention-1m',
  'retention-1h',
  'store-max-size',
  'query-max-points',
  'query-timeout',
  'remote-write',
  'token-file',
] as const;
type Flag = (typeof FLAGS)[number];

function int(s: string, field: string, min: number): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`${field}: "${s}" must be a whole number ≥ ${min}`);
  return n;
}

/** Flags win over EKG_AGENT_* env vars, which win over defaults. Throws ConfigError naming the field. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): AgentConfig | 'help' {
  const values: Partial<Record<Flag, string>> = {};
  const file = configPath(argv) ?? env.EKG_AGENT_CONFIG;
  let fileScrape: ScrapeSpec[] | undefined;
  let fileExporters: ExporterSpec[] = [];
  let fileAlerts: RuleDraft[] = [];
  let fileNotify: NotifierSpec[] = [];
  /** flag → where its value came from: `config FILE:LINE`, `EKG_AGENT_X` or `--x`, for error messages */
  const fromFile = new Map<string, string>();
  if (file) {
    const f = readConfigFile(file);
    Object.assign(values, f.values);
    fileScrape = f.scrape;
    fileExporters = f.exporters ?? [];
    fileAlerts = f.alerts ?? [];
    fileNotify = f.notify ?? [];
    for (const [k, line] of Object.entries(f.lines)) fromFile.set(k, `config ${file}:${line}`);
  }
  for (const f of FLAGS) {
    const v = env[`EKG_AGENT_${f.toUpperCase().replace(/-/g, '_')}`];
    if (v !== undefined && v !== '') {
      values[f] = v;
      fromFile.set(f, `EKG_AGENT_${f.toUpperCase().replace(/-/g, '_')}`);
    }
  }
  const fromFlags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--help' || a === '-h') return 'help';
    const eq = a.indexOf('=');
    const name = (eq === -1 ? a : a.slice(0, eq)).replace(/^--/, '');
    if (name === 'config') {
      if (eq === -1) i++;
      continue;
    }
    if (!a.startsWith('--') || !(FLAGS as readonly string[]).includes(name))
      throw new ConfigError(`unknown option ${a}; see ekg-agent --help`);
    const v = eq === -1 ? argv[++i] : a.slice(eq + 1);
    if (v === undefined) throw new ConfigError(`--${name} needs a value`);
    // --scrape and --remote-write repeat; the others take the last value
    const repeats = name === 'scrape' || name === 'remote-write';
    values[name as Flag] = repeats && values[name as Flag] !== undefined && fromFlags.has(name) ? `${values[name as Flag]},${v}` : v;
    fromFlags.add(name);
    fromFile.set(name, `--${name}`);
  }
  let c: AgentConfig;
  try {
    c = build(values, fileScrape, env);
    c.exporters = fileExporters;
    // on Heroku, the metrics URL is the Heroku exporter's default target, as it is agentmon's
    if (env.HEROKU_METRICS_URL && !c.exporters.some((e) => e.type === 'heroku'))
      c.exporters.push({ type: 'heroku', url: urls(env.HEROKU_METRICS_URL, 'HEROKU_METRICS_URL')[0] as string });
  } catch (err) {
    // a bad value names where it came from: the file and its line, the env var or the flag
    const field = err instanceof ConfigError ? /^([a-z-]+):/.exec(err.message)?.[1] : undefined;
    const at = field && fromFile.get(field);
    if (at?.startsWith('config ')) throw new ConfigError(`${at}: ${(err as Error).message}`);
    if (at && field) throw new ConfigError(`${at}${(err as Error).message.slice(field.length)}`);
    throw err;
  }
  // `for` is checked against the window, which flags and env may have changed
  c.alerts = resolveRules(fileAlerts, c.flushInterval, fileNotify);
  c.notify = fileNotify;
  return c;
}

function build(values: Partial<Record<Flag, string>>, fileScrape: ScrapeSpec[] | undefined, env: NodeJS.ProcessEnv): AgentConfig {
  const listen = (field: 'statsd' | 'http', v: string) => {
    const a = parseListen(v, '127.0.0.1', { schemes: field === 'statsd' });
    if (a === undefined)
      throw new ConfigError(
        `${field}: "${v}" is not [HOST:]PORT or another listen address; the forms are ${field === 'statsd' ? STATSD_FORMS : LISTEN_FORMS}`,
      );
    return a === 'off' ? undefined : a;
  };
  let statsdNote: string | undefined;
  let statsdValue = values.statsd;
  if (statsdValue === undefined && env.HEROKU_METRICS_URL && env.PORT) {
    // Heroku: barnes sends UDP to 127.0.0.1:$PORT and agentmon listens there, UDP only (the web app has the TCP port)
    if (!/^\d{1,5}$/.test(env.PORT.trim()))
      throw new ConfigError(`statsd: PORT="${env.PORT}" is not a port (Heroku mode listens on UDP 127.0.0.1:$PORT); set --statsd`);
    statsdValue = `udp://127.0.0.1:${env.PORT.trim()}`;
    statsdNote = `Heroku mode (HEROKU_METRICS_URL and PORT set): StatsD on UDP 127.0.0.1:${env.PORT.trim()} only, as agentmon`;
  }
  const statsd = listen('statsd', statsdValue ?? '127.0.0.1:8125');
  const http = listen('http', values.http ?? '127.0.0.1:8787');
  const consoleMode = values.console ?? 'summary';
  if (!['off', 'summary', 'verbose'].includes(consoleMode))
    throw new ConfigError(`console: "${consoleMode}" must be off, summary or verbose`);
  const schedule = {
    interval: duration(values['scrape-interval'] ?? '10s', 'scrape-interval'),
    timeout: duration(values['scrape-timeout'] ?? '5s', 'scrape-timeout'),
  };
  const storeKind = (values.store ?? 'sqlite') as AgentConfig['store'];
  if (!['sqlite', 'prometheus', 'off'].includes(storeKind))
    throw new ConfigError(`store: "${storeKind}" must be sqlite, prometheus or off`);
  const storeUrl = values['store-url'] ? urls(values['store-url'], 'store-url')[0] : undefined;
  if (storeKind === 'prometheus' && !storeUrl)
    throw new ConfigError('store-url: store prometheus needs the query API, e.g. --store-url http://127.0.0.1:8428');
  const flushInterval = duration(values['flush-interval'] ?? '10s', 'flush-interval');
  if (storeKind === 'sqlite' && flushInterval < 1000)
    throw new ConfigError(`flush-interval: ${flushInterval}ms is under the store's one-second resolution; use 1s or more, or --store off`);
  // targets from flags or env replace the file's list
  const specs: ScrapeSpec[] = values.scrape !== undefined ? urls(values.scrape, 'scrape').map((url) => ({ url })) : (fileScrape ?? []);
  return {
    statsdUdp: statsd?.udp ? { host: statsd.host, port: statsd.port } : undefined,
    statsdTcp: statsd?.tcp ? { host: statsd.host, port: statsd.port } : undefined,
    statsdUnix: values['statsd-unix'],
    ...(statsdNote ? { statsdNote } : {}),
    http: http && { host: http.host, port: http.port },
    data: values.data ?? '.ekg-agent',
    flushInterval,
    recvBuffer: atLeast(bytes(values['recv-buffer'] ?? '8m', 'recv-buffer'), 4096, 'recv-buffer', '4k'),
    statsdMaxConnections: int(values['statsd-max-connections'] ?? String(defaultMaxConnections()), 'statsd-max-connections', 1),
    statsdIdleTimeout:
      parseDuration(values['statsd-idle-timeout'] ?? '5m') === 0
        ? 0
        : duration(values['statsd-idle-timeout'] ?? '5m', 'statsd-idle-timeout'),
    setMaxMembers: int(values['set-max-members'] ?? String(SET_DEFAULTS.maxSetMembers), 'set-max-members', 1),
    setMaxBytes: bytes(values['set-max-bytes'] ?? String(SET_DEFAULTS.maxSetBytes), 'set-max-bytes'),
    maxSeries: int(values['max-series'] ?? '100000', 'max-series', 1),
    idleWindows: 30,
    console: consoleMode as AgentConfig['console'],
    scrape: specs.map((s) => targetOf(s, schedule)),
    store: storeKind,
    storeUrl,
    retention: retentionOf(values, flushInterval),
    storeMaxBytes: bytes(values['store-max-size'] ?? '0', 'store-max-size'),
    queryMaxPoints: int(values['query-max-points'] ?? String(QUERY_MAX_POINTS), 'query-max-points', 1),
    queryTimeout: duration(values['query-timeout'] ?? `${QUERY_TIMEOUT}ms`, 'query-timeout'),
    remoteWrite: values['remote-write'] ? urls(values['remote-write'], 'remote-write') : [],
    token: tokenOf(values['token-file'], env),
    exporters: [],
    alerts: [],
    notify: [],
  };
}

function atLeast(n: number, min: number, field: string, shown: string): number {
  if (n < min) throw new ConfigError(`${field}: ${n} is under the minimum of ${shown}`);
  return n;
}

/**
 * Retention per resolution: raw keeps at least an hour (an hour's rollup is made from it) and at least ten windows;
 * each coarser resolution keeps at least as long as the finer one it is rolled up from.
 */
function retentionOf(values: Partial<Record<Flag, string>>, flushInterval: number): AgentConfig['retention'] {
  const text = { raw: values['retention-raw'] ?? '24h', m1: values['retention-1m'] ?? '15d', h1: values['retention-1h'] ?? '1y' };
  const raw = duration(text.raw, 'retention-raw');
  const m1 = duration(text.m1, 'retention-1m');
  const h1 = duration(text.h1, 'retention-1h');
  if (raw < Math.max(3_600_000, 10 * flushInterval))
    throw new ConfigError(`retention-raw: "${text.raw}" is too short: keep raw windows for at least 1h (and ten flush intervals)`);
  if (m1 < raw)
    throw new ConfigError(`retention-1m: "${text.m1}" is shorter than retention-raw ("${text.raw}"); a rollup is kept at least as long`);
  if (h1 < m1)
    throw new ConfigError(`retention-1h: "${text.h1}" is shorter than retention-1m ("${text.m1}"); a rollup is kept at least as long`);
  return { raw, m1, h1 };
}

/** The agent's token: EKG_AGENT_TOKEN, or the first line of --token-file (kept out of argv and YAML). */
function tokenOf(file: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  let t = env.EKG_AGENT_TOKEN;
  if (file) {
    try {
      t = readFileSync(file, 'utf8').split(/\r?\n/)[0];
    } catch (err) {
      throw new ConfigError(`token-file: cannot read ${file}: ${(err as Error).message}`);
    }
    if (!t?.trim()) throw new ConfigError(`token-file: ${file} is empty; put the token on its first line`);
  }
  t = t?.trim();
  if (t !== undefined && t !== '' && !/^[\x21-\x7e]{8,}$/.test(t))
    throw new ConfigError('token: must be at least 8 printable characters without spaces (EKG_AGENT_TOKEN or --token-file)');
  return t || undefined;
}

function configPath(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--config') return argv[i + 1];
    if (a.startsWith('--config=')) return a.slice(9);
  }
  return undefined;
}

function urls(v: string, field: string): string[] {
  return v
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => {
      let u: URL;
      try {
        u = new URL(t);
      } catch {
        throw new ConfigError(`${field}: "${t}" is not a URL`);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`${field}: "${t}" must be an http:// or https:// URL`);
      return u.href;
    });
}
