import type { Flushed } from '../aggregate/aggregator.js';

/**
 * A series' values as flat measurements for exporters without a summary type (Graphite, InfluxDB,
 * Mackerel, Heroku JSON): `['', v]` for a counter's window sum, a gauge or a set; a distribution's
 * count, sum, min, max and percentiles under their own suffixes. Non-finite values are left out.
 */
export function measurements(f: Flushed): Array<[string, number]> {
  // a non-finite value (a counter past 1.8e308) is left out: no text protocol or JSON body can carry it
  if (f.kind !== 'distribution') return Number.isFinite(f.value) ? [['', f.value]] : [];
  const out: Array<[string, number]> = [
    ['count', f.count ?? f.value],
    ['sum', f.sum ?? 0],
  ];
  if ((f.count ?? 0) > 0) {
    out.push(['min', f.min ?? 0], ['max', f.max ?? 0]);
    for (const [k, v] of Object.entries(f.quantiles ?? {})) out.push([k, v]);
  }
  return out.filter(([, v]) => Number.isFinite(v));
}

/** `a:1,b:2` → [['a','1'],['b','2']] (a bare tag `x` → ['x','']): the model's one parse. */
export { tagEntries as tagPairs } from '../model/tags.js';
