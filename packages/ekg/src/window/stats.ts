import type { Lifecycle, Stats } from '../types.js';
import { httpStats } from '../vitals/http.js';
import { runtimeStats } from '../vitals/runtime.js';
import type { Snapshot } from './snapshot.js';

export const VERSION = '0.1.0';

/**
 * What /stats says about ekg itself, besides the window: plain data, so that it can be posted with the
 * window to the watchdog's thread, which builds the pages there.
 */
export interface SelfState {
  state: Lifecycle;
  sampler: { interval: number; tickCost: number };
  failures: Readonly<Record<string, number>>;
  sideServer: { refused: number; dropped: number } | undefined;
  /** load shedding, when configured (health/pressure.ts's fields) */
  pressure: { reason: string | undefined; since: number | undefined; crossings: number } | undefined;
}

/** The /stats document of one window: `runtime`, `http`, one key per custom vital, and `ekg` about ekg itself. */
export function statsDocument(s: Snapshot, core: SelfState): { stats: Stats; failed: boolean } {
  const stats: Stats = { runtime: runtimeStats(s.runtime) };
  if (s.http) stats.http = httpStats(s.http);
  let failed = false;
  const errors: Stats = {};
  for (const v of s.vitals) {
    if (v.error) {
      failed = true;
      stats[v.name] = { error: v.error };
      errors[v.name] = v.error;
    } else if (v.stats) {
      stats[v.name] = v.stats;
    }
  }
  stats.ekg = {
    version: VERSION,
    state: core.state,
    window: { start: s.window.start, end: s.window.end, seconds: s.window.seconds, seq: s.window.seq },
    sampler: core.sampler,
    failed: errors,
  };
  (stats.ekg as Stats).limits = {
    vitalFailures: { ...core.failures },
    ...(core.sideServer ? { sideServer: core.sideServer } : {}),
  };
  const pressure = core.pressure;
  if (pressure) {
    (stats.ekg as Stats).pressure = {
      active: pressure.reason !== undefined,
      ...(pressure.reason ? { reason: pressure.reason, since: new Date(pressure.since as number).toISOString() } : {}),
      crossings: pressure.crossings,
    };
  }
  if (s.stalls) {
    (stats.ekg as Stats).stalls = {
      count: s.stalls.count,
      totalMs: s.stalls.totalMs,
      last: s.stalls.last.map((x) => ({
        start: new Date(x.start).toISOString(),
        duration: x.duration,
        at: x.stack?.[0] ? `${x.stack[0].fn} (${x.stack[0].file}:${x.stack[0].line}:${x.stack[0].column})` : (x.stackError ?? 'unknown'),
      })),
    } as unknown as Stats;
  }
  if (s.reporters.length > 0) {
    // keys are identifiers (`statsd`, `statsd_2`, `heroku`) so that flatteners (ekg json, mackerel-plugin-json) make
    // valid metric names of them; the address is an info string, and times are ISO text, not numeric metrics
    const reporters: Stats = {};
    for (const r of s.reporters) {
      const [kind = 'reporter', ...rest] = r.name.split(' ');
      let key = kind;
      for (let n = 2; key in reporters; n++) key = `${kind}_${n}`;
      const { lastSentAt, lastErrorAt, ...counts } = r.stats;
      reporters[key] = {
        target: rest.join(' '),
        ...counts,
        ...(lastSentAt !== undefined ? { lastSentAt: new Date(lastSentAt).toISOString() } : {}),
        ...(lastErrorAt !== undefined ? { lastErrorAt: new Date(lastErrorAt).toISOString() } : {}),
      } as Stats;
    }
    (stats.ekg as Stats).reporters = reporters;
  }
  return { stats, failed };
}
