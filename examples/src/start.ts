/**
 * `npm start`: the most complete chain that exists so far. ekg-agent (StatsD on udp+tcp 8125, HTTP and
 * its dashboard on 8787) receives every window from the Express example (ekg at /ops, reporting over
 * StatsD) and keeps it in its SQLite store under .ekg-agent/, and a little traffic keeps the numbers
 * moving. Windows are 2 s here (10 s by default) so the dashboard moves at once. Ctrl-C stops both;
 * the agent flushes its open window.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const STATSD = process.env.EKG_AGENT_STATSD ?? '127.0.0.1:8125';
const HTTP = process.env.EKG_AGENT_HTTP ?? '127.0.0.1:8787';
const WINDOW = process.env.EKG_INTERVAL ?? '2s';
const cli = fileURLToPath(new URL('../../packages/agent/dist/cli.js', import.meta.url));

const agent: ChildProcess = spawn(
  process.execPath,
  [cli, '--statsd', STATSD, '--http', HTTP, '--flush-interval', WINDOW, '--console', 'off'],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
let stopping = false;
/** what the agent really bound, read off its start line (any form of EKG_AGENT_STATSD / EKG_AGENT_HTTP works) */
let bound = { statsd: 'udp://127.0.0.1:8125', http: 'http://127.0.0.1:8787' };
const loopback = (hostPort: string) => hostPort.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:');
await new Promise<void>((resolve) => {
  let pending = '';
  agent.stdout?.on('data', (d: Buffer) => {
    pending += d;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      console.log(`[agent] ${line}`);
      if (line.startsWith('ekg-agent: statsd')) {
        const udp = /\bstatsd (?:udp\+tcp|udp) (\S+?)[,\s]/.exec(line)?.[1];
        const tcp = /\btcp (\S+?)[,\s]/.exec(line)?.[1];
        const http = /\bhttp (http:\/\/\S+?),/.exec(line)?.[1];
        bound = {
          statsd: udp ? `udp://${loopback(udp)}` : tcp ? `tcp://${loopback(tcp)}` : bound.statsd,
          http: http ? `http://${loopback(http.slice('http://'.length))}` : bound.http,
        };
        resolve();
      }
    }
  });
  agent.on('exit', (code) => {
    if (!stopping) console.log(`(ekg-agent exited with ${code}; the app runs without it)`);
    resolve();
  });
});
process.env.EKG_STATSD = bound.statsd;
const AGENT = bound.http;
process.env.EKG_INTERVAL = WINDOW;

const { start } = await import('./express.js');
const { PORT, printUrls } = await import('./shared.js');
const server = await start(PORT);
const port = (server.address() as { port: number }).port;
printUrls('Express', port);
console.log(`\n  ▶ the dashboard: ${AGENT}/#/?range=15m   (the demo's vital signs, live)`);
console.log(`\nekg-agent receives every window: ${AGENT}/metrics and ${AGENT}/api/v1/self`);
console.log(`and keeps them in .ekg-agent/ekg.db (history survives restarts):`);
console.log(`  ${AGENT}/api/v1/instances`);
console.log(`  ${AGENT}/api/v1/query?name=runtime.eventloop.delay.p99&from=now-1h&by=service&agg=max`);
console.log(`ekg closes a window every ${WINDOW}; /ops/stats and /ops/metrics show the last one.`);

const traffic = setInterval(() => {
  fetch(`http://127.0.0.1:${port}/${Math.random() < 0.2 ? 'slow' : ''}`).catch(() => {});
}, 250);
traffic.unref();

const stop = () => {
  stopping = true;
  console.log('\nstopping');
  server.close();
  server.closeAllConnections();
  agent.once('exit', () => process.exit(0));
  agent.kill('SIGTERM');
  setTimeout(() => process.exit(0), 3000).unref();
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
