import { defOf } from '../catalogue.js';
import type { Stats } from '../types.js';

/** One number of one window, in the dotted /stats spelling. */
export interface Measurement {
  name: string;
  value: number;
  /** counter: a delta over the window; gauge: a level */
  type: 'counter' | 'gauge';
}

/** each path's verdict, info (skipped) included: the catalogue is read once per path */
const kinds = new Map<string, 'counter' | 'gauge' | null>();

/** counter (a window delta), gauge or, for info like pid and start time, skipped: the catalogue's kind; decided once per path. */
function kindOf(path: string): 'counter' | 'gauge' | undefined {
  const hit = kinds.get(path);
  if (hit !== undefined) return hit ?? undefined;
  const d = defOf(path);
  const kind = d?.kind === 'info' ? null : d?.kind === 'window' ? 'counter' : 'gauge';
  if (kinds.size < 10_000) kinds.set(path, kind);
  return kind ?? undefined;
}

/** Keeps a StatsD/Graphite-safe name: what etsy StatsD's sanitiser would keep, decided here. */
export function safeSegment(s: string): string {
  const hit = segments.get(s);
  if (hit !== undefined) return hit;
  const safe = sanitise(s);
  if (segments.size < 10_000) segments.set(s, safe);
  return safe;
}

/** the keys of /stats repeat every window: each is sanitised once (bounded, like the verdicts above) */
const segments = new Map<string, string>();

function sanitise(s: string): string {
  return s
    .replace(/\s+/g, '_')
    .replace(/\//g, '-')
    .replace(/[^a-zA-Z0-9_-]/g, '');
}

/**
 * Flattens the /stats document of one window into measurements: window deltas (GC collections,
 * CPU ms, requests by class) as counters, levels and percentiles as gauges, custom vitals as
 * gauges (booleans 0/1), strings and info left out.
 */
export function measurements(stats: Stats, skip: ReadonlySet<string> = new Set(['ekg'])): Measurement[] {
  const out: Measurement[] = [];
  const walk = (o: Stats, path: string) => {
    for (const [k, v] of Object.entries(o)) {
      const name = path ? `${path}.${safeSegment(k)}` : safeSegment(k);
      if (v !== null && typeof v === 'object') {
        walk(v, name);
        continue;
      }
      const value = typeof v === 'number' ? v : typeof v === 'boolean' ? (v ? 1 : 0) : undefined;
      if (value === undefined || !Number.isFinite(value)) continue;
      const type = kindOf(name);
      if (type) out.push({ name, value, type });
    }
  };
  for (const [k, v] of Object.entries(stats)) {
    if (skip.has(k) || v === null || typeof v !== 'object') continue;
    walk(v, safeSegment(k));
  }
  return out;
}
