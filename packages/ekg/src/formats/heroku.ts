import type { Snapshot } from '../snapshot.js';
import { GC_KINDS } from '../vitals/runtime.js';

export interface HerokuPayload {
  counters: Record<string, number>;
  gauges: Record<string, number>;
}

/**
 * Heroku's Node.js language-metrics names, exactly as its collector sends them: GC collections and
 * pause (ns) over the window as counters, event-loop usage (percent) and delay (ms) as gauges.
 */
export function herokuPayload(s: Snapshot): HerokuPayload {
  const gc = s.runtime.gc.window;
  let count = 0;
  let pause = 0;
  for (const k of GC_KINDS) {
    count += gc[k].count;
    pause += gc[k].pause;
  }
  const ns = (ms: number) => Math.round(ms * 1e6);
  const d = s.runtime.eventloop.delay;
  const r3 = (n: number) => Math.round(n * 1000) / 1000;
  return {
    counters: {
      'node.gc.collections': count,
      'node.gc.pause.ns': ns(pause),
      'node.gc.old.collections': gc.major.count,
      'node.gc.old.pause.ns': ns(gc.major.pause),
      'node.gc.young.collections': gc.minor.count,
      'node.gc.young.pause.ns': ns(gc.minor.pause),
    },
    gauges: {
      'node.eventloop.usage.percent': r3(s.runtime.eventloop.utilization * 100),
      'node.eventloop.delay.ms.median': r3(d.p50),
      'node.eventloop.delay.ms.p95': r3(d.p95),
      'node.eventloop.delay.ms.p99': r3(d.p99),
      'node.eventloop.delay.ms.max': r3(d.max),
    },
  };
}
