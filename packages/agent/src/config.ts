import { readFileSync } from 'node:fs';
import { type NotifierSpec, type Rule, type RuleDraft, resolveRules } from './alert/rules.js';
import { readConfigFile } from './config-file.js';
import { ConfigError } from './errors.js';
import type { ExporterSpec } from './export/spec.js';
import type { Endpoint } from './ingest/listeners.js';
import { type ScrapeSpec, type ScrapeTarget, targetOf } from './ingest/scrape.js';
import { choiceOf, defaultOf, envName, FLAGS, type FlagName, helpText, listenOf, numberOf, optionOf, urls, valueForms } from './options.js';

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
  /** HTTP connections held at once; past it the oldest idle one is evicted */
  httpMaxConnections: number;
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
  /** ms an instance may be silent before it is gone (docs/time-model.md) */
  instanceRetention: number;
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

/** `ekg-agent --help`, made from the option table (options.ts). */
export const HELP = helpText();

type Flag = FlagName;

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
    const v = env[envName(f)];
    if (v !== undefined && v !== '') {
      values[f] = v;
      fromFile.set(f, envName(f));
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
      throw new ConfigError(`unknown option ${a}; see ekg-agent --help`, 'EKG_AGENT_ERR_UNKNOWN_OPTION');
    const v = eq === -1 ? argv[++i] : a.slice(eq + 1);
    if (v === undefined) throw new ConfigError(`--${name} needs a value: ${valueForms(name)}`);
    // --scrape and --remote-write repeat; the others take the last value
    const repeats = optionOf(name)?.repeatable === true;
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
    const code = (err as ConfigError).code;
    if (at?.startsWith('config ')) throw new ConfigError(`${at}: ${(err as Error).message}`, code);
    if (at && field) throw new ConfigError(`${at}${(err as Error).message.slice(field.length)}`, code);
    throw err;
  }
  // `for` is checked against the window, which flags and env may have changed
  c.alerts = resolveRules(fileAlerts, c.flushInterval, fileNotify);
  c.notify = fileNotify;
  return c;
}

function build(values: Partial<Record<Flag, string>>, fileScrape: ScrapeSpec[] | undefined, env: NodeJS.ProcessEnv): AgentConfig {
  let statsdNote: string | undefined;
  let statsdValue = values.statsd;
  if (statsdValue === undefined && env.HEROKU_METRICS_URL && env.PORT) {
    // Heroku: barnes sends UDP to 127.0.0.1:$PORT and agentmon listens there, UDP only (the web app has the TCP port)
    if (!/^\d{1,5}$/.test(env.PORT.trim()))
      throw new ConfigError(`statsd: PORT="${env.PORT}" is not a port (Heroku mode listens on UDP 127.0.0.1:$PORT); set --statsd`);
    statsdValue = `udp://127.0.0.1:${env.PORT.trim()}`;
    statsdNote = `Heroku mode (HEROKU_METRICS_URL and PORT set): StatsD on UDP 127.0.0.1:${env.PORT.trim()} only, as agentmon`;
  }
  const statsd = listenOf('statsd', statsdValue ?? (defaultOf('statsd') as string));
  const http = listenOf('http', values.http ?? (defaultOf('http') as string));
  const consoleMode = choiceOf<AgentConfig['console']>('console', values.console);
  const schedule = {
    interval: numberOf('scrape-interval', values['scrape-interval']),
    timeout: numberOf('scrape-timeout', values['scrape-timeout']),
  };
  const storeKind = choiceOf<AgentConfig['store']>('store', values.store);
  const storeUrl = values['store-url'] ? urls(values['store-url'], 'store-url')[0] : undefined;
  if (storeKind === 'prometheus' && !storeUrl)
    throw new ConfigError('store-url: store prometheus needs the query API, e.g. --store-url http://127.0.0.1:8428');
  const flushInterval = numberOf('flush-interval', values['flush-interval']);
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
    data: values.data ?? (defaultOf('data') as string),
    flushInterval,
    recvBuffer: numberOf('recv-buffer', values['recv-buffer']),
    statsdMaxConnections: numberOf('statsd-max-connections', values['statsd-max-connections']),
    httpMaxConnections: numberOf('http-max-connections', values['http-max-connections']),
    statsdIdleTimeout: numberOf('statsd-idle-timeout', values['statsd-idle-timeout']),
    setMaxMembers: numberOf('set-max-members', values['set-max-members']),
    setMaxBytes: numberOf('set-max-bytes', values['set-max-bytes']),
    maxSeries: numberOf('max-series', values['max-series']),
    idleWindows: 30,
    console: consoleMode,
    scrape: specs.map((s) => targetOf(s, schedule)),
    store: storeKind,
    storeUrl,
    retention: retentionOf(values, flushInterval),
    instanceRetention: numberOf('instance-retention', values['instance-retention']),
    storeMaxBytes: numberOf('store-max-size', values['store-max-size']),
    queryMaxPoints: numberOf('query-max-points', values['query-max-points']),
    queryTimeout: numberOf('query-timeout', values['query-timeout']),
    remoteWrite: values['remote-write'] ? urls(values['remote-write'], 'remote-write') : [],
    token: tokenOf(values['token-file'], env),
    exporters: [],
    alerts: [],
    notify: [],
  };
}

/**
 * Retention per resolution: raw keeps at least an hour (an hour's rollup is made from it) and at least ten windows;
 * each coarser resolution keeps at least as long as the finer one it is rolled up from.
 */
function retentionOf(values: Partial<Record<Flag, string>>, flushInterval: number): AgentConfig['retention'] {
  const text = {
    raw: values['retention-raw'] ?? (defaultOf('retention-raw') as string),
    m1: values['retention-1m'] ?? (defaultOf('retention-1m') as string),
    h1: values['retention-1h'] ?? (defaultOf('retention-1h') as string),
  };
  const raw = numberOf('retention-raw', text.raw);
  const m1 = numberOf('retention-1m', text.m1);
  const h1 = numberOf('retention-1h', text.h1);
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
      throw new ConfigError(`token-file: cannot read ${file}: ${(err as Error).message}`, 'EKG_AGENT_ERR_SECRET');
    }
    if (!t?.trim()) throw new ConfigError(`token-file: ${file} is empty; put the token on its first line`, 'EKG_AGENT_ERR_SECRET');
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
