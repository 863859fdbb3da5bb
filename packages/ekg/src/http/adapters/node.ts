import type { IncomingMessage, ServerResponse } from 'node:http';
import { markOwn } from '../../vitals/http.js';
import { rawHeader } from '../contract.js';
import type { Mountable, Reply, Router, RouterOptions } from '../router.js';

export type NodeMiddleware = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;

/**
 * Reads a header from rawHeaders: `req.headers` is built lazily by Node on first access, and a
 * probe answered without touching it stays as cheap as a hello world.
 */
export const readHeader = (req: IncomingMessage, name: string): string | undefined => rawHeader(req.rawHeaders, name);

export function writeReply(res: ServerResponse, r: Reply): void {
  if (res.headersSent || res.destroyed) return;
  markOwn(res);
  res.writeHead(r.status, r.headers);
  // Node omits the body of a HEAD response by itself; the Content-Length stays that of GET.
  res.end(r.body);
}

/**
 * node:http, Connect and Express: `(req, res, next?)`. Paths outside the prefix go to `next`,
 * or get a 404 when there is none (a bare `http.createServer(handler)`).
 */
export function create(router: Router): NodeMiddleware {
  return (req, res, next) => {
    const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    const r = router.handle(req.method ?? 'GET', url, req, readHeader);
    if (r === undefined) {
      if (next) next();
      else writeReply(res, { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'not found\n' });
      return;
    }
    if (r instanceof Promise) r.then((x) => writeReply(res, x));
    else writeReply(res, r);
  };
}

/** node:http, Connect: `createServer((req, res) => ops(req, res, () => app(req, res)))` with `const ops = mount(ekg)`. `options.prefix` overrides the instance's prefix. */
export function mount(ekg: Mountable, options?: RouterOptions): NodeMiddleware {
  return create(ekg.router(options));
}

export type { Mountable, RouterOptions };
