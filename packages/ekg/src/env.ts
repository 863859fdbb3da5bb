import { DURATION_FORMS, parseDuration, parseSwitch, SWITCH_FORMS } from './duration.js';
import { warn } from './log.js';

/** What `ekg-vitals/register` reads from the environment. Each bad value turns off only its feature. */
export interface EnvConfig {
  disabled: boolean;
  port: number | undefined;
  host: string;
  prefix: string;
  token: string | undefined;
  interval: number | undefined;
  watchdog: boolean;
  /** ms of stall after which the side server's /live fails (EKG_LIVE_FAIL_AFTER) */
  liveFailAfter?: number;
  service: string | undefined;
  tags: Record<string, string>;
  statsd: string[];
  statsdPrefix: string | undefined;
  statsdTags: boolean;
  maxPacket: number | undefined;
  push: string[];
}

/**
 * Heroku's post interval, read as its Node.js collector reads it: `METRICS_INTERVAL_OVERRIDE` in ms
 * (`parseInt`, so `15000ms` is 15000), at least 10 s; 20 s when unset or not a number. `problem`
 * says what was wrong with the value and what is used instead, for the one stderr line.
 */
export function herokuInterval(env: NodeJS.ProcessEnv = process.env): { ms: number; problem?: [string, string] } {
  const v = env.METRICS_INTERVAL_OVERRIDE;
  if (!v) return { ms: 20_000 };
  const n = Number.parseInt(v, 10);
  if (Number.isNaN(n)) return { ms: 20_000, problem: ['milliseconds such as 20000', 'the default 20 s is used'] };
  if (n < 10_000) return { ms: 10_000, problem: ["at least 10000 ms (Heroku's floor)", '10 s is used'] };
  return { ms: n };
}

function bad(name: string, value: string, expected: string, consequence: string): void {
  warn('EKG_ERR_BAD_ENV', `${name}=${JSON.stringify(value)} is not valid: expected ${expected}; ${consequence}`);
}

/** A switch variable: unset or empty gives `dflt`; a value outside SWITCH_FORMS is one stderr line and `dflt`. */
function switchOf(env: NodeJS.ProcessEnv, name: string, dflt: boolean): boolean {
  const v = env[name];
  if (v === undefined || v.trim() === '') return dflt;
  const b = parseSwitch(v);
  if (b !== undefined) return b;
  bad(name, v, SWITCH_FORMS, `the default (${dflt ? 'on' : 'off'}) is used`);
  return dflt;
}

export function readEnv(env: NodeJS.ProcessEnv = process.env): EnvConfig {
  const out: EnvConfig = {
    disabled: switchOf(env, 'EKG_DISABLE', false),
    port: undefined,
    host: env.EKG_HOST || '127.0.0.1',
    prefix: '',
    token: undefined,
    interval: undefined,
    watchdog: switchOf(env, 'EKG_WATCHDOG', true),
    service: env.EKG_SERVICE || undefined,
    tags: {},
    statsd: [],
    statsdPrefix: env.EKG_STATSD_PREFIX || undefined,
    statsdTags: switchOf(env, 'EKG_STATSD_TAGS', true),
    maxPacket: undefined,
    push: [],
  };
  for (const target of (env.EKG_STATSD ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)) {
    if (/^(udp|tcp):\/\/[^/]*$|^unix:\/\/\/.+/.test(target)) out.statsd.push(target);
    else bad('EKG_STATSD', target, 'udp://host:port, tcp://host:port or unix:///path', 'this target is off');
  }
  // On Heroku the platform's metrics URL wins: ekg then stands where Heroku's own collector stood.
  const pushUrl = env.HEROKU_METRICS_URL || env.EKG_PUSH_URL;
  const pushVar = env.HEROKU_METRICS_URL ? 'HEROKU_METRICS_URL' : 'EKG_PUSH_URL';
  if (pushUrl) {
    if (/^https?:\/\/[^\s]+$/.test(pushUrl)) out.push.push(pushUrl);
    else bad(pushVar, pushUrl.replace(/\?.*/, '?…'), 'an http:// or https:// URL', 'pushing is off');
  }
  const mp = env.EKG_STATSD_MAX_PACKET;
  if (mp) {
    const n = Number(mp);
    if (Number.isInteger(n) && n >= 64 && n <= 65507) out.maxPacket = n;
    else bad('EKG_STATSD_MAX_PACKET', mp, 'a whole number of bytes from 64 to 65507', 'the default 1432 is used');
  }
  const port = env.EKG_PORT;
  if (port !== undefined && port !== '') {
    const n = Number(port);
    if (Number.isInteger(n) && n >= 0 && n <= 65535) out.port = n;
    else bad('EKG_PORT', port, 'a port number 0-65535', 'the side server is off');
  }
  const prefix = env.EKG_PREFIX;
  if (prefix) {
    if (/^\/?[A-Za-z0-9._~\-/]*$/.test(prefix)) out.prefix = `/${prefix.replace(/^\/+|\/+$/g, '')}`.replace(/^\/$/, '');
    else bad('EKG_PREFIX', prefix, 'a URL path such as /ops', 'the endpoints are served at /');
  }
  const token = env.EKG_TOKEN;
  if (token !== undefined && token !== '') {
    if (/^[\x21-\x7e]+$/.test(token)) out.token = token;
    else {
      // Serving /stats and /metrics open when the user asked for a token would be a leak.
      bad('EKG_TOKEN', '<hidden>', 'printable ASCII without spaces', 'the side server is off');
      out.port = undefined;
    }
  }
  const lfa = env.EKG_LIVE_FAIL_AFTER;
  if (lfa !== undefined && lfa !== '') {
    const n = parseDuration(lfa);
    if (n >= 100) out.liveFailAfter = n;
    else bad('EKG_LIVE_FAIL_AFTER', lfa, `${DURATION_FORMS}, at least 100ms`, 'the default 10s is used');
  }
  const interval = env.EKG_INTERVAL;
  if (interval !== undefined && interval !== '') {
    const n = parseDuration(interval);
    if (n >= 100) out.interval = n;
    else bad('EKG_INTERVAL', interval, `${DURATION_FORMS}, at least 100ms`, 'the default 10s is used');
  }
  const heroku = herokuInterval(env);
  if (heroku.problem && out.push.length > 0) bad('METRICS_INTERVAL_OVERRIDE', env.METRICS_INTERVAL_OVERRIDE ?? '', ...heroku.problem);
  // On Heroku each window is one post, measured as Heroku's collector measures it (20 s unless
  // METRICS_INTERVAL_OVERRIDE says otherwise); EKG_INTERVAL still wins.
  if (env.HEROKU_METRICS_URL && out.push.length > 0 && out.interval === undefined) out.interval = heroku.ms;
  const tags = env.EKG_TAGS;
  if (tags) {
    for (const pair of tags.split(',')) {
      const m = /^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*:\s*(.+?)\s*$/.exec(pair);
      if (m) out.tags[m[1] as string] = m[2] as string;
      else if (pair.trim()) bad('EKG_TAGS', tags, 'k:v pairs separated by commas', `the pair ${JSON.stringify(pair)} is ignored`);
    }
  }
  return out;
}
