import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Agent } from '../agent.js';
import type { Endpoint } from '../ingest/listeners.js';
import { PushError, parsePush } from '../ingest/push.js';
import { handleApi } from './api.js';
import { isAsset, serveAsset } from './assets.js';
import { renderAgentMetrics } from './metrics.js';

const MAX_BODY = 1 << 20;

function send(res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'no-store', ...extra });
  res.end(body);
}

const json = (res: ServerResponse, status: number, body: unknown) =>
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body));

/** The app's identity for a push: `X-Ekg-*` headers or query parameters (service, instance, pid, host, worker). */
function identity(req: IncomingMessage, url: URL): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ['service', 'instance', 'pid', 'host', 'worker']) {
    const v = req.headers[`x-ekg-${k}`] ?? url.searchParams.get(k) ?? undefined;
    if (typeof v === 'string' && v) out[k] = v.slice(0, 200);
  }
  return out;
}

export function startWeb(agent: Agent, ep: Endpoint): Promise<Server> {
  const want = agent.config.token ? Buffer.from(`Bearer ${agent.config.token}`) : undefined;
  const authorized = (req: IncomingMessage): boolean => {
    if (!want) return true;
    const got = Buffer.from(String(req.headers.authorization ?? ''));
    return got.length === want.length && timingSafeEqual(got, want);
  };
  const server = createServer({ maxHeaderSize: 16 * 1024, requestTimeout: 30_000 }, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://agent');
    const path = url.pathname;
    // the dashboard's files carry no data: it loads, then asks for the token the API wants
    if (isAsset(path) && (req.method === 'GET' || req.method === 'HEAD') && serveAsset(req, res, path)) return;
    if (path !== '/heartbeat' && !authorized(req)) {
      agent.self.unauthorized++;
      return send(
        res,
        401,
        'application/json; charset=utf-8',
        JSON.stringify({ error: 'this agent needs Authorization: Bearer <token>' }),
        {
          'www-authenticate': 'Bearer realm="ekg-agent"',
        },
      );
    }
    if (path === '/heartbeat') {
      // a store that cannot write is reported, but with 200: restarting the agent would lose the
      // windows it holds in memory meanwhile, and would not free the disk
      const st = agent.store?.status;
      const body =
        st && !st.ok ? `heartbeat:degraded: store cannot write (${st.error}); ${st.windows_held} windows held in memory` : 'heartbeat:ok';
      return send(res, 200, 'text/plain; charset=utf-8', body);
    }
    if (path === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
      return send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', renderAgentMetrics(agent));
    }
    if (path === '/api/v1/self' && req.method === 'GET') {
      const m = process.memoryUsage();
      return json(res, 200, {
        ...agent.self,
        rss_bytes: m.rss,
        heap_used_bytes: m.heapUsed,
        heap_total_bytes: m.heapTotal,
        series_active: agent.aggregator.size,
        scrapes: agent.scraper?.scrapes ?? 0,
        scrape_failures: Object.fromEntries(agent.scraper?.failures ?? []),
        scrape_rounds: Object.fromEntries(agent.scraper?.rounds ?? []),
        ...(agent.store ? { store: agent.store.status } : {}),
        ...(agent.exporters.length > 0 ? { exporters: Object.fromEntries(agent.exporters.map((e) => [e.name, e.status])) } : {}),
      });
    }
    if (path === '/api/v1/alerts' && req.method === 'GET') {
      return json(res, 200, agent.alerts?.view() ?? { firing: [], rules: [], history: [], notifiers: [] });
    }
    if (path.startsWith('/api/v1/') && path !== '/api/v1/self') {
      if (req.method !== 'GET') return send(res, 405, 'text/plain; charset=utf-8', 'use GET\n', { allow: 'GET' });
      const reader = agent.reader;
      if (!reader) return json(res, 404, { error: 'no store: the agent runs with --store off' });
      handleApi(reader, path, url.searchParams).then(
        ([status, body]) => json(res, status, body),
        (err: Error) => json(res, 500, { error: err.message }),
      );
      return;
    }
    if (path === '/v1/push') {
      if (req.method !== 'POST') return send(res, 405, 'text/plain; charset=utf-8', 'use POST\n', { allow: 'POST' });
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > MAX_BODY) {
        agent.self.pushes_rejected++;
        res.setHeader('connection', 'close');
        return json(res, 413, { error: `body over ${MAX_BODY} bytes` });
      }
      const chunks: Buffer[] = [];
      let size = 0;
      let refused = false;
      req.on('data', (c: Buffer) => {
        if (refused) return;
        size += c.length;
        if (size > MAX_BODY) {
          refused = true;
          agent.self.pushes_rejected++;
          res.setHeader('connection', 'close');
          json(res, 413, { error: `body over ${MAX_BODY} bytes` });
          req.resume();
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => {
        if (refused) return;
        try {
          const samples = parsePush(Buffer.concat(chunks).toString('utf8'), identity(req, url));
          agent.ingestSamples(samples);
          agent.self.pushes_received++;
          json(res, 202, { accepted: samples.length });
        } catch (err) {
          agent.self.pushes_rejected++;
          const status = err instanceof PushError ? err.status : 400;
          json(res, status, { error: (err as Error).message });
        }
      });
      req.on('error', () => {});
      return;
    }
    send(
      res,
      404,
      'text/plain; charset=utf-8',
      'not found: the agent serves the dashboard at /, /heartbeat, /metrics, /api/v1/{self,instances,series,query} and POST /v1/push\n',
    );
  });
  server.on('clientError', (_e, socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(ep.port, ep.host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
