import { isMap, isScalar, isSeq, type Node } from 'yaml';
import { ConfigError } from '../errors.js';
import { duration, url } from '../options.js';
import { AGGS, type Agg, IDENTITY } from '../store/reader.js';

/**
 * Alert rules and notifiers as the YAML file gives them (`alerts:` and `notify:`), checked field by
 * field; every error names the file, the line and the field (`alerts[2].for`).
 */

export const SEVERITIES = ['critical', 'warning'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const KINDS = ['counter', 'gauge', 'distribution', 'set'] as const;

/** The rules the agent runs unless told otherwise; a rule of the same name in `alerts:` overrides one. */
export const BUILTINS = ['instance-down', 'heartbeat-failing', 'event-loop-stall', 'agent-store', 'agent-exporter'] as const;
export type Builtin = (typeof BUILTINS)[number];

export interface Rule {
  name: string;
  /** set for a built-in rule: what it watches */
  builtin?: Builtin;
  /** threshold rules: the query, as /api/v1/query takes it */
  metric?: string;
  tags?: Record<string, string>;
  agg?: Agg;
  kind?: (typeof KINDS)[number];
  /** group by these tag keys ([] merges everything into one group); undefined keeps every series apart */
  by?: string[];
  above?: number;
  below?: number;
  /** ms the condition must hold before firing, and be gone before resolving */
  for: number;
  severity: Severity;
  /** ms between repeated notifications while firing (0: never) */
  renotify: number;
  enabled: boolean;
  /** instance-down: missed intervals before an instance counts as down */
  missed?: number;
  /** where the rule was written, for errors found later (`config FILE:LINE`); built-ins: `built-in` */
  source: string;
}

export const NOTIFIER_TYPES = ['webhook', 'slack', 'mackerel'] as const;
export type NotifierType = (typeof NOTIFIER_TYPES)[number];

export interface NotifierSpec {
  type: NotifierType;
  /** webhook and slack: where to POST; mackerel: the API's base (default https://api.mackerelio.com) */
  url?: string;
  /** mackerel: the host the check reports belong to, and its key (as the Mackerel exporter reads it) */
  host_id?: string;
  api_key_env?: string;
  api_key_file?: string;
  /** the dashboard's address in notifications (default: the agent's own --http address) */
  dashboard_url?: string;
  /** first retry delay and its ceiling, ms (default 1 s and 60 s) */
  backoff?: number;
  max_backoff?: number;
  spool_max_bytes?: number;
  /** only these rules (default: all) */
  alerts?: string[];
}

const NOTIFIER_FIELDS: Record<NotifierType, string[]> = {
  webhook: ['url', 'dashboard_url', 'backoff', 'max_backoff', 'spool_max_bytes', 'alerts'],
  slack: ['url', 'dashboard_url', 'backoff', 'max_backoff', 'spool_max_bytes', 'alerts'],
  mackerel: ['url', 'host_id', 'api_key_env', 'api_key_file', 'dashboard_url', 'backoff', 'max_backoff', 'spool_max_bytes', 'alerts'],
};

const THRESHOLD_FIELDS = ['name', 'metric', 'tags', 'agg', 'kind', 'by', 'above', 'below', 'for', 'severity', 'renotify', 'enabled'];
const COMMON_BUILTIN = ['name', 'enabled', 'for', 'severity', 'renotify'];
const BUILTIN_FIELDS: Record<Builtin, string[]> = {
  'instance-down': [...COMMON_BUILTIN, 'by', 'missed'],
  'heartbeat-failing': COMMON_BUILTIN,
  'event-loop-stall': [...COMMON_BUILTIN, 'by'],
  'agent-store': COMMON_BUILTIN,
  'agent-exporter': COMMON_BUILTIN,
};

/** A rule as read from the file, before the window is known (`for` is checked against it later). */
export type RuleDraft = Partial<Rule> & { name: string; source: string; forLine?: string };

type At = (node: Node | null | undefined) => number;

/** `alerts:` — a list of rules; a name from BUILTINS overrides that built-in. */
export function readAlerts(v: Node | null, file: string, line: number, at: At): RuleDraft[] {
  if (!isSeq(v)) throw new ConfigError(`${file}:${line}: field "alerts" must be a list of rules ({name, metric, above, …})`);
  const names = new Set<string>();
  return (v.items as Node[]).map((item, n) => {
    const f = (k: string) => `alerts[${n}].${k}`;
    if (!isMap(item)) throw new ConfigError(`${file}:${at(item)}: field "alerts[${n}]" must be a mapping with name:`);
    const raw = new Map<string, { node: Node | null; line: number }>();
    for (const p of item.items) {
      const k = isScalar(p.key) ? String(p.key.value) : '';
      raw.set(k, { node: p.value as Node | null, line: at(p.key as Node) });
    }
    const where = (k: string) => `${file}:${raw.get(k)?.line ?? at(item)}`;
    const err = (k: string, msg: string) => new ConfigError(`${where(k)}: field "${f(k)}": ${msg}`);
    const scalar = (k: string): unknown => {
      const e = raw.get(k);
      if (!e) return undefined;
      if (!isScalar(e.node)) throw err(k, 'must be a single value');
      return e.node.value;
    };
    const str = (k: string): string | undefined => {
      const x = scalar(k);
      if (x === undefined || x === null) return undefined;
      if (typeof x !== 'string' && typeof x !== 'number') throw err(k, 'must be a string');
      return String(x);
    };
    const num = (k: string): number | undefined => {
      const x = scalar(k);
      if (x === undefined) return undefined;
      if (typeof x !== 'number' || !Number.isFinite(x)) throw err(k, `"${String(x)}" must be a number`);
      return x;
    };
    const dur = (k: string): number | undefined => {
      const s = str(k);
      if (s === undefined) return undefined;
      try {
        return duration(s, f(k));
      } catch (e) {
        throw new ConfigError(`${where(k)}: field ${(e as Error).message.replace(/^([^:]+):/, '"$1":')}`);
      }
    };
    const list = (k: string): string[] | undefined => {
      const e = raw.get(k);
      if (!e) return undefined;
      if (!isSeq(e.node) || !(e.node.items as Node[]).every((x) => isScalar(x) && typeof x.value === 'string'))
        throw err(k, 'must be a list of tag keys, e.g. [service, pid] ([] for one group)');
      return (e.node.items as Array<{ value: string }>).map((x) => x.value);
    };

    const name = str('name');
    if (!name) throw new ConfigError(`${file}:${at(item)}: field "${f('name')}" is missing`);
    if (!/^[A-Za-z0-9._-]{1,100}$/.test(name)) throw err('name', `"${name}" must be letters, digits, ".", "_" or "-"`);
    if (names.has(name)) throw err('name', `"${name}" is used twice`);
    names.add(name);
    const builtin = (BUILTINS as readonly string[]).includes(name) ? (name as Builtin) : undefined;
    const known = builtin ? BUILTIN_FIELDS[builtin] : THRESHOLD_FIELDS;
    for (const k of raw.keys()) {
      if (!known.includes(k))
        throw new ConfigError(
          `${where(k)}: unknown field "${f(k)}"${builtin ? ` for the built-in rule ${builtin}` : ''}; known: ${known.join(', ')}`,
          'EKG_AGENT_ERR_UNKNOWN_OPTION',
        );
    }
    const rule: RuleDraft = { name, source: `${file}:${at(item)}` };
    if (builtin) rule.builtin = builtin;
    if (raw.has('for')) {
      rule.for = dur('for');
      rule.forLine = where('for');
    }
    const sev = str('severity');
    if (sev !== undefined) {
      if (!(SEVERITIES as readonly string[]).includes(sev)) throw err('severity', `"${sev}" must be critical or warning`);
      rule.severity = sev as Severity;
    }
    const re = dur('renotify');
    if (re !== undefined) rule.renotify = re;
    const en = scalar('enabled');
    if (en !== undefined) {
      if (typeof en !== 'boolean') throw err('enabled', 'must be true or false');
      rule.enabled = en;
    }
    const by = list('by');
    if (by !== undefined) rule.by = by;
    if (builtin) {
      const missed = num('missed');
      if (missed !== undefined) {
        if (!Number.isInteger(missed) || missed < 1 || missed > 1000)
          throw err('missed', `${missed} must be a whole number from 1 to 1000`);
        rule.missed = missed;
      }
      return rule;
    }
    const metric = str('metric');
    if (!metric)
      throw new ConfigError(`${file}:${at(item)}: field "${f('metric')}" is missing (the metric name, as /api/v1/query takes it)`);
    rule.metric = metric;
    const agg = str('agg');
    if (agg !== undefined) {
      if (!(AGGS as readonly string[]).includes(agg)) throw err('agg', `"${agg}" must be one of ${AGGS.join(', ')}`);
      rule.agg = agg as Agg;
    }
    const kind = str('kind');
    if (kind !== undefined) {
      if (!(KINDS as readonly string[]).includes(kind)) throw err('kind', `unknown metric kind "${kind}"; known: ${KINDS.join(', ')}`);
      rule.kind = kind as Rule['kind'];
    }
    const tags = raw.get('tags');
    if (tags) {
      if (!isMap(tags.node)) throw err('tags', 'must be a mapping of tag: value (value * for any)');
      rule.tags = Object.fromEntries(
        tags.node.items.map((p) => [
          String((p.key as { value: unknown }).value),
          String((p.value as { value: unknown } | null)?.value ?? ''),
        ]),
      );
    }
    const above = num('above');
    const below = num('below');
    if (above !== undefined && below !== undefined) throw err('below', 'a rule takes above or below, not both');
    if (above === undefined && below === undefined)
      throw new ConfigError(`${file}:${at(item)}: field "${f('above')}" or "${f('below')}" is missing`);
    if (above !== undefined) rule.above = above;
    if (below !== undefined) rule.below = below;
    return rule;
  });
}

/** `notify:` — a list of notifiers. */
export function readNotify(v: Node | null, file: string, line: number, at: At): NotifierSpec[] {
  if (!isSeq(v)) throw new ConfigError(`${file}:${line}: field "notify" must be a list of {type: webhook|slack|mackerel, …}`);
  return (v.items as Node[]).map((item, n) => {
    const f = (k: string) => `notify[${n}].${k}`;
    if (!isMap(item)) throw new ConfigError(`${file}:${at(item)}: field "notify[${n}]" must be a mapping with type:`);
    const raw: Record<string, Node | null> = {};
    const lineOf: Record<string, number> = {};
    for (const p of item.items) {
      const k = isScalar(p.key) ? String(p.key.value) : '';
      raw[k] = p.value as Node | null;
      lineOf[k] = at(p.key as Node);
    }
    const where = (k: string) => `${file}:${lineOf[k] ?? at(item)}`;
    const val = (k: string): string | undefined => {
      const x = raw[k];
      if (x === undefined) return undefined;
      if (!isScalar(x) || (typeof x.value !== 'string' && typeof x.value !== 'number'))
        throw new ConfigError(`${where(k)}: field "${f(k)}" must be a string`);
      return String(x.value);
    };
    const type = val('type');
    if (!type) throw new ConfigError(`${file}:${at(item)}: field "${f('type')}" is missing (webhook, slack or mackerel)`);
    if (!(NOTIFIER_TYPES as readonly string[]).includes(type))
      throw new ConfigError(`${where('type')}: field "${f('type')}": unknown notifier type "${type}"; known: ${NOTIFIER_TYPES.join(', ')}`);
    const fields = NOTIFIER_FIELDS[type as NotifierType];
    for (const k of Object.keys(raw)) {
      if (k === 'api_key')
        throw new ConfigError(`${where(k)}: field "${f(k)}": secrets are not read from the file; use api_key_env or api_key_file`);
      if (k !== 'type' && !fields.includes(k))
        throw new ConfigError(
          `${where(k)}: unknown field "${f(k)}" for ${type}; known: ${fields.join(', ')}`,
          'EKG_AGENT_ERR_UNKNOWN_OPTION',
        );
    }
    const spec: NotifierSpec = { type: type as NotifierType };
    for (const k of ['url', 'dashboard_url'] as const) {
      const u = val(k);
      if (u === undefined) continue;
      // the exporters' own check (options.ts), so a notifier takes exactly the URLs an exporter takes
      let href: string;
      try {
        href = url(u, `field "${f(k)}"`);
      } catch (err) {
        throw new ConfigError(`${where(k)}: ${(err as Error).message}`);
      }
      spec[k] = k === 'url' ? href : u.replace(/\/$/, '');
    }
    if (type !== 'mackerel' && !spec.url) throw new ConfigError(`${file}:${at(item)}: field "${f('url')}" is missing`);
    if (type === 'mackerel') {
      spec.host_id = val('host_id');
      if (!spec.host_id)
        throw new ConfigError(`${file}:${at(item)}: field "${f('host_id')}" is missing (Mackerel takes check reports for a host)`);
      spec.api_key_env = val('api_key_env');
      spec.api_key_file = val('api_key_file');
    }
    for (const k of ['backoff', 'max_backoff'] as const) {
      const d = val(k);
      if (d === undefined) continue;
      try {
        spec[k] = duration(d, f(k));
      } catch (e) {
        throw new ConfigError(`${where(k)}: field ${(e as Error).message.replace(/^([^:]+):/, '"$1":')}`);
      }
    }
    const sm = val('spool_max_bytes');
    if (sm !== undefined) {
      const m = /^\d+$/.exec(sm);
      if (!m) throw new ConfigError(`${where('spool_max_bytes')}: field "${f('spool_max_bytes')}": "${sm}" must be a number of bytes`);
      spec.spool_max_bytes = Number(sm);
    }
    if (raw.alerts !== undefined) {
      const a = raw.alerts;
      if (!isSeq(a) || !(a.items as Node[]).every((x) => isScalar(x) && typeof x.value === 'string'))
        throw new ConfigError(`${where('alerts')}: field "${f('alerts')}" must be a list of rule names`);
      spec.alerts = (a.items as Array<{ value: string }>).map((x) => x.value);
    }
    return spec;
  });
}

/**
 * The rules the agent runs: the built-ins (each overridden by a rule of its name) and the file's
 * threshold rules, with defaults filled in. `for` must cover at least one window: a value is a
 * window's aggregate, so a shorter `for` would promise what the data cannot show.
 */
export function resolveRules(drafts: RuleDraft[], window: number, notify: NotifierSpec[] = []): Rule[] {
  const byName = new Map(drafts.map((d) => [d.name, d]));
  const defaults: Record<Builtin, Omit<Rule, 'name' | 'source' | 'enabled' | 'renotify'>> = {
    'instance-down': {
      builtin: 'instance-down',
      for: window,
      severity: 'critical',
      by: ['service', 'host', 'worker', 'instance'],
      missed: 3,
    },
    'heartbeat-failing': { builtin: 'heartbeat-failing', for: window, severity: 'critical' },
    'event-loop-stall': { builtin: 'event-loop-stall', for: Math.max(window, 300_000), severity: 'warning', by: [...IDENTITY] },
    'agent-store': { builtin: 'agent-store', for: window, severity: 'critical' },
    'agent-exporter': { builtin: 'agent-exporter', for: Math.max(window, 60_000), severity: 'warning' },
  };
  const out: Rule[] = [];
  const check = (d: RuleDraft, r: Rule) => {
    if (d.for !== undefined && d.for < window)
      throw new ConfigError(
        `${d.forLine ?? d.source}: field "for" of alert ${d.name}: ${d.for} ms is shorter than the window (${window} ms); a value covers a whole window`,
      );
    return r;
  };
  for (const b of BUILTINS) {
    const d = byName.get(b);
    const r: Rule = { name: b, source: 'built-in', enabled: true, renotify: 0, ...defaults[b] };
    out.push(d ? check(d, { ...r, ...strip(d), source: d.source }) : r);
  }
  for (const d of drafts) {
    if (d.builtin) continue;
    out.push(check(d, { for: window, severity: 'critical', renotify: 0, enabled: true, ...strip(d) } as Rule));
  }
  const names = new Set(out.map((r) => r.name));
  notify.forEach((n, i) => {
    for (const a of n.alerts ?? [])
      if (!names.has(a)) throw new ConfigError(`notify[${i}].alerts: no rule is named "${a}"; rules: ${[...names].join(', ')}`);
  });
  return out;
}

function strip(d: RuleDraft): Partial<Rule> {
  const { forLine: _, ...rest } = d;
  return Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
}
