/**
 * The benchmark's server, one variant per process: `bare`, `ekg` (runtime + http vitals, mounted
 * at /ops) or `prom` (prom-client collectDefaultMetrics + an http_request_duration_seconds
 * histogram observed per request, the usual setup). Prints `ready <port>`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

const variant = process.argv[2] ?? 'bare';
const HELLO = 'hello world';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let handler: Handler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '11' });
  res.end(HELLO);
};

if (variant === 'ekg' || variant === 'ekg-watchdog' || variant === 'ekg1s' || variant === 'ekg1s-report') {
  const { createEkg } = await import('ekg');
  const report =
    variant === 'ekg1s-report'
      ? { statsd: `udp://127.0.0.1:${process.env.BENCH_UDP_PORT}`, push: `http://127.0.0.1:${process.env.BENCH_HTTP_PORT}/push` }
      : undefined;
  const ekg = createEkg({
    signals: false,
    ...(variant === 'ekg' || variant === 'ekg-watchdog' ? {} : { interval: 1000 }),
    ...(report ? { report } : {}),
    ...(variant === 'ekg-watchdog' ? { watchdog: true } : {}),
  });
  const ops = ekg.node();
  const hello = handler;
  handler = (req, res) => ops(req, res, () => hello(req, res));
} else if (variant === 'prom') {
  const client = await import('prom-client');
  const prom = client.default ?? client;
  prom.collectDefaultMetrics();
  const hist = new prom.Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration in seconds.',
    labelNames: ['method', 'route', 'code'],
  });
  const hello = handler;
  handler = (req, res) => {
    if (req.url === '/metrics') {
      prom.register.metrics().then((text) => {
        res.writeHead(200, { 'content-type': prom.register.contentType });
        res.end(text);
      });
      return;
    }
    const end = hist.startTimer({ method: req.method ?? 'GET', route: '/' });
    res.on('finish', () => end({ code: res.statusCode }));
    hello(req, res);
  };
}

const server = createServer((req, res) => handler(req, res));
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  console.log(`ready ${typeof a === 'object' && a ? a.port : 0}`);
});
process.on('message', (m) => {
  if (m === 'heap') {
    (globalThis as { gc?: () => void }).gc?.();
    process.send?.({ heap: process.memoryUsage().heapUsed });
  }
});
