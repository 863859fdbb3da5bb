import { Aggregator, type FlushResult } from '../aggregate/aggregator.js';
import { parsePacket } from '../ingest/statsd-parse.js';

/** Each packet of StatsD text through the real parser and aggregator, one 10 s window per packet. */
export function statsdWindows(...packets: string[]): FlushResult[] {
  const agg = new Aggregator();
  let t = 1_795_000_000_000;
  agg.flush(t);
  return packets.map((p) => {
    parsePacket(p, { sample: (s) => agg.add(s), bad: () => {} });
    t += 10_000;
    return agg.flush(t);
  });
}
