import { EkgError } from '../errors.js';
import type { RuntimeSample } from '../vitals/runtime.js';

/**
 * Load shedding before the process collapses (what @fastify/under-pressure does, for any framework):
 * thresholds on the closed window's event-loop delay p99, event-loop utilization, heap used and RSS.
 * Crossing one turns /ready 503 with the reason and `Retry-After`; it turns back only once every
 * value is below its threshold by `hysteresis`, so a load balancer does not flap the instance.
 */
export interface PressureOptions {
  /** ms */
  eventLoopDelayP99?: number;
  /** 0..1, over the window (not since start) */
  eventLoopUtilization?: number;
  /** bytes, or a fraction (≤ 1) of the V8 heap limit */
  heapUsed?: number;
  /** bytes */
  rss?: number;
  /** how far below a threshold a value must fall to clear it (default 0.1: 10 %) */
  hysteresis?: number;
  /** seconds in `Retry-After` (default 10) */
  retryAfter?: number;
  /** answer the app's own requests 503 too while under pressure (default false: only /ready turns) */
  reject?: boolean;
}

const FIELDS = ['eventLoopDelayP99', 'eventLoopUtilization', 'heapUsed', 'rss'] as const;

export function checkPressureOptions(p: PressureOptions): PressureOptions {
  const bad = (field: string, want: string, got: unknown) =>
    new EkgError('EKG_ERR_BAD_OPTION', `option "pressure.${field}" must be ${want}, got ${JSON.stringify(got)}`);
  for (const f of FIELDS) {
    const v = p[f];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !(v > 0)) throw bad(f, 'a positive number', v);
    if (f === 'eventLoopUtilization' && v > 1) throw bad(f, 'a fraction from 0 to 1', v);
  }
  if (p.hysteresis !== undefined && !(p.hysteresis >= 0 && p.hysteresis < 1)) throw bad('hysteresis', 'from 0 to below 1', p.hysteresis);
  if (p.retryAfter !== undefined && !(Number.isInteger(p.retryAfter) && p.retryAfter >= 0))
    throw bad('retryAfter', 'whole seconds', p.retryAfter);
  if (!FIELDS.some((f) => p[f] !== undefined))
    throw bad('*', 'given at least one threshold (eventLoopDelayP99, eventLoopUtilization, heapUsed, rss)', p);
  return p;
}

export class Pressure {
  /** why the instance is under pressure, or undefined */
  reason: string | undefined;
  since: number | undefined;
  crossings = 0;

  constructor(readonly o: PressureOptions) {}

  /** Updates the verdict from a closed window. */
  update(r: RuntimeSample, now = Date.now()): void {
    const h = this.o.hysteresis ?? 0.1;
    const heapLimit = this.o.heapUsed !== undefined && this.o.heapUsed <= 1 ? this.o.heapUsed * r.memory.heapLimit : this.o.heapUsed;
    const values: Array<[string, number, number | undefined, (v: number) => string]> = [
      ['event-loop delay p99', r.eventloop.delay.p99, this.o.eventLoopDelayP99, (v) => `${v.toFixed(1)} ms`],
      ['event-loop utilization', r.eventloop.utilization, this.o.eventLoopUtilization, (v) => `${(v * 100).toFixed(0)} %`],
      ['heap used', r.memory.heapUsed, heapLimit, (v) => `${(v / 2 ** 20).toFixed(0)} MiB`],
      ['RSS', r.memory.rss, this.o.rss, (v) => `${(v / 2 ** 20).toFixed(0)} MiB`],
    ];
    const over = values.filter(([, v, t]) => t !== undefined && v > t);
    if (over.length > 0) {
      if (this.reason === undefined) {
        this.since = now;
        this.crossings++;
      }
      this.reason = over.map(([name, v, t, f]) => `${name} ${f(v)} over ${f(t as number)}`).join('; ');
      return;
    }
    // clear only once every value is below its threshold by the hysteresis
    if (this.reason !== undefined && values.every(([, v, t]) => t === undefined || v < t * (1 - h))) {
      this.reason = undefined;
      this.since = undefined;
    }
  }
}
