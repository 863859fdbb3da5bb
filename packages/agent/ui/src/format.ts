/** Numbers with their units, as the catalogue gives them (ms for time, bytes for memory). */

export type Unit = 'ms' | 'bytes' | 'percent' | 'ratio' | 'per_second' | 'ms_per_second' | 'count' | '';

/**
 * How a series is drawn under an aggregation, from the unit the agent gives it (`/api/v1/series`: the catalogue's,
 * e.g. `ms`, `bytes`, `per second`): a rate of milliseconds is ms per second, a rate of anything else per second.
 */
export function displayUnit(unit: string | undefined, agg: string): Unit {
  if (agg === 'rate') return unit === 'ms' ? 'ms_per_second' : 'per_second';
  if (unit === 'ms' || unit === 'bytes' || unit === 'ratio' || unit === 'count') return unit;
  if (unit === 'per second') return 'per_second';
  return '';
}

const BYTES = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

function num(v: number, digits = 3): string {
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  return Number(v.toPrecision(digits)).toString();
}

export function format(v: number | null | undefined, unit: Unit | string | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  switch (unit) {
    case 'ms':
      if (Math.abs(v) >= 1000) return `${num(v / 1000)} s`;
      if (Math.abs(v) < 1 && v !== 0) return `${num(v * 1000)} µs`;
      return `${num(v)} ms`;
    case 'bytes': {
      let i = 0;
      let x = v;
      while (Math.abs(x) >= 1024 && i < BYTES.length - 1) {
        x /= 1024;
        i++;
      }
      return `${num(x)} ${BYTES[i]}`;
    }
    case 'percent':
      return `${num(v)} %`;
    case 'ratio':
      return `${num(v * 100)} %`;
    case 'per_second':
      return `${num(v)}/s`;
    case 'ms_per_second':
      return `${num(v)} ms/s`;
    default:
      return num(v);
  }
}

/** An axis tick: shorter than a value. */
export function tick(v: number, unit: Unit | string | undefined): string {
  if (unit === 'bytes') return format(v, unit).replace('.0 ', ' ');
  return format(v, unit);
}

export function ago(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}
