/**
 * `npm start`: the Express example with ekg at /ops, a little traffic so the first windows have
 * something to show, and the URLs to open. (The agent and its dashboard join this chain when
 * they exist.) Ctrl-C stops it; SIGTERM shows the graceful shutdown.
 */
import { start } from './express.js';
import { PORT, printUrls } from './shared.js';

const server = await start(PORT);
const port = (server.address() as { port: number }).port;
printUrls('Express', port);
console.log('\nekg closes a window every 10 s; /ops/stats and /ops/metrics show the last one.');
const traffic = setInterval(() => {
  fetch(`http://127.0.0.1:${port}/${Math.random() < 0.2 ? 'slow' : ''}`).catch(() => {});
}, 250);
traffic.unref();
process.on('SIGINT', () => {
  console.log('\nstopping');
  server.close();
  server.closeAllConnections();
  process.exit(0);
});
