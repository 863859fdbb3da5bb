/**
 * A series' tags. On the wire and in the store they are one string, `k:v` pairs sorted and joined by `,`
 * (the series key's part); in code they are a `Tags` record. A bare tag (`#flag` in DogStatsD) is the key with
 * the value `''`, everywhere: what an exporter does with an empty value is its format's business (Prometheus
 * and remote write leave it out, OTLP keeps `""`). This module is the one parse and format of that string; it
 * has no Node imports, so the dashboard loads it too.
 */
export type Tags = Readonly<Record<string, string>>;

/** `a:1,b,c:3` → sorted, sanitised `a:1,b,c:3`; undefined when a tag is empty. */
export function normalizeTags(raw: string): string | undefined {
  if (raw === '') return '';
  const tags = raw.split(',');
  for (let i = 0; i < tags.length; i++) {
    const t = (tags[i] as string).trim().replace(/[|\s]/g, '_');
    if (t === '') return undefined;
    tags[i] = t;
  }
  return tags.sort().join(',');
}

/** `a:1,b` → [['a', '1'], ['b', '']], in order, a repeated key kept each time. */
export function tagEntries(tags: string): Array<[string, string]> {
  if (!tags) return [];
  return tags.split(',').map((t) => {
    const i = t.indexOf(':');
    return i === -1 ? [t, ''] : [t.slice(0, i), t.slice(i + 1)];
  });
}

/** `a:1,b` → { a: '1', b: '' } (a repeated key: the last value). */
export function parseTags(tags: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of tagEntries(tags)) out[k] = v;
  return out;
}

/** { a: '1', b: '' } → `a:1,b`: the normalised string (sorted), the inverse of parseTags. */
export function formatTags(tags: Tags): string {
  return (
    normalizeTags(
      Object.entries(tags)
        .map(([k, v]) => (v === '' ? k : `${k}:${v}`))
        .join(','),
    ) ?? ''
  );
}
