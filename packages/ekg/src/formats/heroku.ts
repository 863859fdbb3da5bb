import { herokuOf } from '../catalogue.js';
import type { Measurement } from './measurements.js';

/** The Heroku JSON body; a section with nothing in it is left out, as agentmon leaves it out. */
export interface HerokuPayload {
  counters?: Record<string, number>;
  gauges?: Record<string, number>;
}

/** The monitor's resolution when a window does not say (monitorEventLoopDelay's default, and Heroku's). */
const DEFAULT_RESOLUTION = 10;

/**
 * Heroku's Node.js language metrics over one post, built from ekg's windows. Names and meanings come
 * from the catalogue (`herokuOf`): counters add up over the windows (and over the paths sharing a name:
 * major, incremental and weakcb are all `node.gc.old`); usage and delay percentiles are averaged over
 * the windows weighted by their length, the max delay is the max. When a post is one window — what
 * ekg-vitals/register arranges on Heroku — every value is that window's, as Heroku's collector measures it.
 */
export class HerokuPeriod {
  private counters = new Map<string, number>();
  private gauges = new Map<string, { sum: number; weight: number; max: number; combine: 'max' | 'mean' | 'sum' }>();
  /** ms covered so far */
  elapsed = 0;

  add(window: readonly Measurement[], windowMs: number): void {
    const weight = Math.max(windowMs, 1);
    const res = window.find((m) => m.name === 'runtime.eventloop.resolution')?.value ?? DEFAULT_RESOLUTION;
    for (const m of window) {
      const h = herokuOf(m.name);
      if (!h) continue;
      const v = m.value * h.scale + (h.plusResolution ? res : 0);
      if (h.counter) this.counters.set(h.name, (this.counters.get(h.name) ?? 0) + v);
      else {
        const g = this.gauges.get(h.name) ?? { sum: 0, weight: 0, max: Number.NEGATIVE_INFINITY, combine: h.combine };
        g.sum += v * weight;
        g.weight += weight;
        if (v > g.max) g.max = v;
        this.gauges.set(h.name, g);
      }
    }
    this.elapsed += windowMs;
  }

  /** The payload so far (keys in byte order, as agentmon's Go encoder writes them); starts a new period. */
  take(): HerokuPayload {
    const out: HerokuPayload = {};
    const r = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;
    const counters = [...this.counters].sort(([a], [b]) => (a < b ? -1 : 1));
    const gauges = [...this.gauges].sort(([a], [b]) => (a < b ? -1 : 1));
    if (counters.length > 0) out.counters = Object.fromEntries(counters.map(([k, v]) => [k, Math.round(v)]));
    if (gauges.length > 0)
      out.gauges = Object.fromEntries(gauges.map(([k, g]) => [k, r(g.combine === 'max' ? g.max : g.sum / g.weight, 6)]));
    this.counters = new Map();
    this.gauges = new Map();
    this.elapsed = 0;
    return out;
  }
}

/** One window alone in Heroku's names and meanings. */
export function herokuPayload(window: readonly Measurement[], windowMs = 1): HerokuPayload {
  const p = new HerokuPeriod();
  p.add(window, windowMs);
  return p.take();
}

/** How many measurements a payload carries (the `Measurements-Count` header). */
export function herokuCount(p: HerokuPayload): number {
  return Object.keys(p.counters ?? {}).length + Object.keys(p.gauges ?? {}).length;
}
