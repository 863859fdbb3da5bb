import type { Mountable, Reply, Router, RouterOptions } from '../router.js';

const readHeader = (req: Request, name: string): string | undefined => req.headers.get(name) ?? undefined;

export function toResponse(r: Reply, method: string): Response {
  return new Response(method === 'HEAD' ? null : r.body, { status: r.status, headers: r.headers });
}

/** Web-standard runtimes: `(Request) => Response`, or undefined for paths outside the prefix. */
export function handle(router: Router, req: Request): Response | Promise<Response> | undefined {
  const url = req.url;
  // the path and query of an absolute URL, without the cost of new URL()
  const start = url.indexOf('/', url.indexOf('//') + 2);
  const r = router.handle(req.method, start === -1 ? '/' : url.slice(start), req, readHeader);
  if (r === undefined) return undefined;
  return r instanceof Promise ? r.then((x) => toResponse(x, req.method)) : toResponse(r, req.method);
}

/** A complete fetch handler: ekg's endpoints, and 404 for everything else. */
export function create(router: Router): (req: Request) => Promise<Response> {
  return async (req) =>
    (await handle(router, req)) ?? new Response('not found\n', { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' } });
}

/** any fetch runtime: `const handler = mount(ekg)` answers ekg's paths and 404 for the rest (`ekg-vitals/fetch`). `options.prefix` overrides the instance's prefix. */
export function mount(ekg: Mountable, options?: RouterOptions): (req: Request) => Promise<Response> {
  return create(ekg.router(options));
}

export type { Mountable, RouterOptions };
