// An etsy StatsD backend (CommonJS, as StatsD loads backends with require) that appends each
// flush as one JSON line to the file named by the `jsonOut` config key.
import fs = require('node:fs');

interface Metrics {
  counters: Record<string, number>;
  gauges: Record<string, number>;
  sets?: Record<string, { size(): number }>;
  timer_data?: Record<string, Record<string, number>>;
}
interface Events {
  on(event: 'flush', fn: (ts: number, metrics: Metrics) => void): void;
}

function init(_startup: number, config: { jsonOut: string }, events: Events): boolean {
  events.on('flush', (ts, metrics) => {
    const sets: Record<string, number> = {};
    for (const [k, v] of Object.entries(metrics.sets ?? {})) sets[k] = v.size();
    const line = { ts, counters: metrics.counters, gauges: metrics.gauges, sets, timers: metrics.timer_data ?? {} };
    fs.appendFileSync(config.jsonOut, `${JSON.stringify(line)}\n`);
  });
  return true;
}

export = { init };
