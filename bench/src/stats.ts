export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/** Half the range as a percentage of the median: the ± a reader can trust. */
export const spread = (xs: number[]) => {
  const m = median(xs);
  return m ? ((Math.max(...xs) - Math.min(...xs)) / 2 / m) * 100 : 0;
};

export function table(head: string[], rows: Array<Array<string | number>>): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const w = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(w[i] as number)).join(' | ')} |`;
  return [line(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map((r) => line(r.map(String)))].join('\n');
}

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** A measurement over rounds: its median and range. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** The median and range of `xs` (NaN for none). */
export function spreadOf(xs: number[]): Spread {
  if (xs.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN };
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

/** One table cell: `median (min–max)`, e.g. `0.973× (0.95–0.99)`; the range with `rangeDigits`. */
export const withRange = (s: Spread, digits = 0, unit = '', rangeDigits = digits) =>
  `${fmt(s.median, digits)}${unit} (${fmt(s.min, rangeDigits)}–${fmt(s.max, rangeDigits)})`;
