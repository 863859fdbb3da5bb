const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses `10s`, `500ms`, `1.5m`, `2h` or a bare number of milliseconds. Returns NaN when it cannot. */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? input : Number.NaN;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(input);
  if (!m) return Number.NaN;
  return Number(m[1]) * (units[m[2] ?? 'ms'] ?? 1);
}
