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
