/**
 * An instance: what reports (an app's process, or a scrape target). Its identity is the identity tags a series
 * carries, in this order; its key is `service=api,host=h,pid=1`, or `target=<url>` for a scrape target. The
 * agent and the dashboard both read this module (it has no Node imports).
 */
export const IDENTITY = ['service', 'host', 'pid', 'worker', 'instance'] as const;
export type IdentityTag = (typeof IDENTITY)[number];

export type InstanceFields = Partial<Record<IdentityTag | 'target', string>>;

/** The instance a series belongs to, from its tags; undefined when it carries no identity. */
export function instanceKey(tags: Readonly<Record<string, string>>): string | undefined {
  if (tags.target !== undefined && tags.service === undefined && tags.pid === undefined) return `target=${tags.target}`;
  if (tags.service === undefined && tags.pid === undefined && tags.instance === undefined) return undefined;
  const parts: string[] = [];
  for (const k of IDENTITY) if (tags[k] !== undefined) parts.push(`${k}=${tags[k]}`);
  return parts.join(',');
}

/** An instance key → its identity fields (`service=api,pid=1` → { service: 'api', pid: '1' }). */
export function instanceFields(key: string): InstanceFields {
  const out: Record<string, string> = {};
  if (key.startsWith('target=')) return { target: key.slice(7) };
  for (const p of key.split(',')) {
    const i = p.indexOf('=');
    out[p.slice(0, i)] = p.slice(i + 1);
  }
  return out;
}

/**
 * An instance's health: `up`/`down` as its probe answered, `reporting` while its samples arrive,
 * `stale` after STALE_INTERVALS of silence. In the order the overview sorts it: trouble first.
 */
export const HEALTHS = ['down', 'stale', 'up', 'reporting'] as const;
export type Health = (typeof HEALTHS)[number];

/** Healthy: its probe answers, or it reports. */
export const isHealthy = (h: Health): boolean => h === 'up' || h === 'reporting';

/** An instance is stale after this many of its intervals without a sample (docs/time-model.md). */
export const STALE_INTERVALS = 3;

/**
 * How long (ms) an instance may be silent, counted from the end of its last sample's interval (the
 * store's `last_seen`), before it is stale: 3 of its own intervals (`ekg.interval_ms`, a push's
 * stated interval, the time between scrapes), or of the agent's windows when those are longer or it
 * states none, plus a second for the flush to land. An app at 10 s windows reporting to an agent at
 * 1 s windows is stale after 31 s of silence, not 4 s, so it never flaps between reports.
 */
export function staleAfter(windowMs: number, intervalMs = 0): number {
  return STALE_INTERVALS * Math.max(windowMs, intervalMs) + 1000;
}
