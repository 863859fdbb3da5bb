// An etsy StatsD backend (CommonJS, as StatsD loads backends with require) that appends each
// flush as one JSON line to the file named by the `jsonOut` config key. It also answers the test
// from inside the server: which port the StatsD server got (it is asked for port 0, so two runs on
// one machine never collide) and how many metric lines it has taken in (the acknowledgement a
// corpus waits for before it is compared). Both are written to `<jsonOut>.ready` as JSON once the
// servers listen: `{"port": <statsd>, "ctl": <port answering "<received>\n" to each connection>}`.
import fs = require('node:fs');
import net = require('node:net');

interface Metrics {
  counters: Record<string, number>;
  gauges: Record<string, number>;
  sets?: Record<string, { size(): number }>;
  timer_data?: Record<string, Record<string, number>>;
}
interface Events {
  on(event: 'flush', fn: (ts: number, metrics: Metrics) => void): void;
  on(event: 'packet', fn: (msg: Buffer | string) => void): void;
}
interface Config {
  jsonOut: string;
  servers?: Array<{ server: string }>;
}
/** What etsy's servers/udp.js and servers/tcp.js keep on their module (`this.server = server`). */
type Listener = { address(): unknown; once(event: 'listening', fn: () => void): unknown };

function portOf(s: Listener): number | undefined {
  try {
    const a = s.address();
    return a && typeof a === 'object' && 'port' in a ? (a as { port: number }).port : undefined;
  } catch {
    return undefined; // a dgram socket not yet bound throws
  }
}

function init(_startup: number, config: Config, events: Events): boolean {
  let received = 0;
  // counted as etsy counts statsd.metrics_received: every non-empty line of a packet
  events.on('packet', (msg) => {
    for (const line of String(msg).split('\n')) if (line.length > 0) received++;
  });
  events.on('flush', (ts, metrics) => {
    const sets: Record<string, number> = {};
    for (const [k, v] of Object.entries(metrics.sets ?? {})) sets[k] = v.size();
    const line = { ts, counters: metrics.counters, gauges: metrics.gauges, sets, timers: metrics.timer_data ?? {} };
    fs.appendFileSync(config.jsonOut, `${JSON.stringify(line)}\n`);
  });
  // the same module objects etsy started (an absolute `server` path resolves to one cache entry)
  const servers = (config.servers ?? []).map((s) => (require(s.server) as { server: Listener }).server);
  const ctl = net.createServer((c) => c.end(`${received}\n`));
  const all: Listener[] = [...servers, ctl];
  let waiting = all.length;
  const onListening = () => {
    if (--waiting > 0) return;
    const ready = { port: portOf(servers[0] as Listener), ctl: portOf(ctl) };
    // written whole, then renamed: the test never reads half a file
    fs.writeFileSync(`${config.jsonOut}.ready.tmp`, JSON.stringify(ready));
    fs.renameSync(`${config.jsonOut}.ready.tmp`, `${config.jsonOut}.ready`);
  };
  for (const s of servers) {
    if (portOf(s) !== undefined) onListening();
    else s.once('listening', onListening);
  }
  ctl.listen(0, '127.0.0.1', onListening);
  return true;
}

export = { init };
