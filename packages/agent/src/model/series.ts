/** What a series is, once aggregated: StatsD's c → counter, g → gauge, ms/h/d → distribution, s → set. */
export type SeriesKind = 'counter' | 'gauge' | 'distribution' | 'set';

/** The quantiles a window's distribution reports, and the query API and exporters read: one list. */
export const QUANTILES = [
  { name: 'p50', q: 0.5 },
  { name: 'p90', q: 0.9 },
  { name: 'p95', q: 0.95 },
  { name: 'p99', q: 0.99 },
  { name: 'p999', q: 0.999 },
] as const;
export type QuantileName = (typeof QUANTILES)[number]['name'];
export type Quantiles = Record<QuantileName, number>;

/** Quantile values in QUANTILES' order → the record. */
export function quantilesOf(values: readonly number[]): Quantiles {
  const out = {} as Quantiles;
  QUANTILES.forEach(({ name }, i) => {
    out[name] = values[i] as number;
  });
  return out;
}

/** The aggregations a query may ask for: the window's own, then each quantile (of merged sketches). */
export const AGGS = ['avg', 'min', 'max', 'sum', 'last', 'rate', ...QUANTILES.map((q) => q.name)] as const;
export type Agg = 'avg' | 'min' | 'max' | 'sum' | 'last' | 'rate' | QuantileName;

/** A quantile aggregation → its q (0.99 for p99). */
export const PERCENTILES: Partial<Record<Agg, number>> = Object.fromEntries(QUANTILES.map(({ name, q }) => [name, q]));
