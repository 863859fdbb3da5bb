// An etsy StatsD backend (CommonJS, as StatsD loads backends with require) that appends each
// flush as one JSON line to the file named by the `jsonOut` config key.
import fs = require('node:fs');

interface Metrics {
  counters: Record<string, number>;
  gauges: Record<string, number>;
}
interface Events {
  on(event: 'flush', fn: (ts: number, metrics: Metrics) => void): void;
}

function init(_startup: number, config: { jsonOut: string }, events: Events): boolean {
  events.on('flush', (ts, metrics) => {
    fs.appendFileSync(config.jsonOut, `${JSON.stringify({ ts, counters: metrics.counters, gauges: metrics.gauges })}\n`);
  });
  return true;
}

export = { init };
