import { readConfigFile } from './config-file.js';
import { type Endpoint, parseEndpoint } from './ingest/listeners.js';
import { type ScrapeSpec, type ScrapeTarget, targetOf } from './ingest/scrape.js';

export interface AgentConfig {
  statsdUdp: Endpoint | undefined;
  statsdTcp: Endpoint | undefined;
  statsdUnix: string | undefined;
  http: Endpoint | undefined;
  data: string;
  flushInterval: number;
  recvBuffer: number;
  maxSeries: number;
  idleWindows: number;
  console: 'off' | 'summary' | 'verbose';
  /** ekg /stats or Prometheus /metrics targets, each with its schedule and probe */
  scrape: ScrapeTarget[];
}

export class ConfigError extends Error {}

export const HELP = `ekg-agent: receives StatsD and pushes from apps, aggregates them per window.

Usage: ekg-agent [options]

  --statsd [HOST:]PORT     StatsD over UDP and TCP (default 127.0.0.1:8125; "off" to disable)
  --statsd-unix PATH       StatsD over a Unix stream socket
  --http [HOST:]PORT       HTTP: /heartbeat, /metrics, /api/v1/self, POST /v1/push (default 127.0.0.1:8787)
  --data DIR               data directory (default ./.ekg-agent)
  --flush-interval DUR     window length, e.g. 10s, 1m (default 10s)
  --recv-buffer BYTES      UDP receive buffer (default 8388608)
  --max-series N           cardinality cap (default 100000)
  --console MODE           console sink: off, summary or verbose (default summary)
  --scrape URL             scrape an ekg /stats JSON or Prometheus /metrics URL and probe its /heartbeat
                           (repeatable; EKG_AGENT_SCRAPE takes a comma-separated list)
  --scrape-interval DUR    how often (default 10s)
  --scrape-timeout DUR     per request (default 5s)
  --config FILE            a YAML file with the same settings (statsd:, http:, flush_interval:, scrape: […], …);
                           scrape items there may set their own interval, timeout, format and heartbeat
  --help                   this text

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
  'console',
  'scrape',
  'scrape-interval',
  'scrape-timeout',
] as const;
type Flag = (typeof FLAGS)[number];

export function duration(s: string, field: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const n = m ? Number(m[1]) * (unit[m[2] ?? 's'] ?? Number.NaN) : Number.NaN;
  if (!(n >= 100)) throw new ConfigError(`${field}: "${s}" is not a duration of at least 100ms (like 10s)`);
  return n;
}

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
  /** flag → `config FILE:LINE` while the value is still the file's */
  const fromFile = new Map<string, string>();
  if (file) {
    const f = readConfigFile(file);
    Object.assign(values, f.values);
    fileScrape = f.scrape;
    for (const [k, line] of Object.entries(f.lines)) fromFile.set(k, `config ${file}:${line}`);
  }
  for (const f of FLAGS) {
    const v = env[`EKG_AGENT_${f.toUpperCase().replace(/-/g, '_')}`];
    if (v !== undefined && v !== '') {
      values[f] = v;
      fromFile.delete(f);
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
    // --scrape repeats; the others take the last value
    values[name as Flag] =
      name === 'scrape' && values.scrape !== undefined && argv.includes(a) && fromFlags.has('scrape') ? `${values.scrape},${v}` : v;
    fromFlags.add(name);
    fromFile.delete(name);
  }
  try {
    return build(values, fileScrape);
  } catch (err) {
    // a bad value from the file names its line too
    const field = err instanceof ConfigError ? /^([a-z-]+):/.exec(err.message)?.[1] : undefined;
    const at = field && fromFile.get(field);
    if (at) throw new ConfigError(`${at}: ${(err as Error).message}`);
    throw err;
  }
}

function build(values: Partial<Record<Flag, string>>, fileScrape: ScrapeSpec[] | undefined): AgentConfig {
  const ep = (field: string, v: string, dflt: string): Endpoint | undefined => {
    if (v === 'off') return undefined;
    const e = parseEndpoint(v, dflt);
    if (!e) throw new ConfigError(`${field}: "${v}" is not [HOST:]PORT`);
    return e;
  };
  const statsd = ep('statsd', values.statsd ?? '127.0.0.1:8125', '127.0.0.1');
  const consoleMode = values.console ?? 'summary';
  if (!['off', 'summary', 'verbose'].includes(consoleMode))
    throw new ConfigError(`console: "${consoleMode}" must be off, summary or verbose`);
  const schedule = {
    interval: duration(values['scrape-interval'] ?? '10s', 'scrape-interval'),
    timeout: duration(values['scrape-timeout'] ?? '5s', 'scrape-timeout'),
  };
  // targets from flags or env replace the file's list
  const specs: ScrapeSpec[] = values.scrape !== undefined ? scrapeUrls(values.scrape).map((url) => ({ url })) : (fileScrape ?? []);
  return {
    statsdUdp: statsd,
    statsdTcp: statsd,
    statsdUnix: values['statsd-unix'],
    http: ep('http', values.http ?? '127.0.0.1:8787', '127.0.0.1'),
    data: values.data ?? '.ekg-agent',
    flushInterval: duration(values['flush-interval'] ?? '10s', 'flush-interval'),
    recvBuffer: int(values['recv-buffer'] ?? String(8 << 20), 'recv-buffer', 4096),
    maxSeries: int(values['max-series'] ?? '100000', 'max-series', 1),
    idleWindows: 30,
    console: consoleMode as AgentConfig['console'],
    scrape: specs.map((s) => targetOf(s, schedule)),
  };
}

function configPath(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--config') return argv[i + 1];
    if (a.startsWith('--config=')) return a.slice(9);
  }
  return undefined;
}

function scrapeUrls(v: string): string[] {
  return v
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => {
      let u: URL;
      try {
        u = new URL(t);
      } catch {
        throw new ConfigError(`scrape: "${t}" is not a URL`);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`scrape: "${t}" must be an http:// or https:// URL`);
      return u.href;
    });
}
