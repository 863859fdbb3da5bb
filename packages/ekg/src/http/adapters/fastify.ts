import type { IncomingHttpHeaders } from 'node:http';
import { markOwn } from '../../vitals/http.js';
import { ROUTES } from '../contract.js';
import type { Mountable, Router, RouterOptions } from '../router.js';

interface FastifyRequestLike {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}
interface FastifyReplyLike {
  raw: object;
  code(status: number): FastifyReplyLike;
  headers(h: Record<string, string>): FastifyReplyLike;
  send(body: string | Uint8Array): FastifyReplyLike;
}
interface FastifyLike {
  route(options: {
    method: string[];
    url: string;
    exposeHeadRoute?: boolean;
    handler: (req: FastifyRequestLike, reply: FastifyReplyLike) => unknown;
  }): unknown;
}

export type FastifyPlugin = ((instance: FastifyLike, opts: unknown, done: (err?: Error) => void) => void) & {
  [key: symbol]: unknown;
};

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];

const readHeader = (req: FastifyRequestLike, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
};

/** Fastify 5: `fastify.register(ekg.fastify())`. Routes are added unencapsulated, at the prefix. */
export function create(router: Router): FastifyPlugin {
  const handler = async (req: FastifyRequestLike, reply: FastifyReplyLike) => {
    const r = (await router.handle(req.method, req.url, req, readHeader)) ?? {
      status: 404,
      headers: { 'content-type': 'text/plain; charset=utf-8' },
      body: 'not found\n',
    };
    markOwn(reply.raw);
    return reply.code(r.status).headers(r.headers).send(r.body);
  };
  const plugin = ((fastify: FastifyLike, _opts: unknown, done: (err?: Error) => void) => {
    try {
      const p = router.prefix;
      for (const r of ROUTES) {
        fastify.route({ method: METHODS, url: `${p}/${r.name}`, exposeHeadRoute: false, handler });
      }
      if (p !== '') fastify.route({ method: METHODS, url: `${p}/*`, exposeHeadRoute: false, handler });
      done();
    } catch (err) {
      done(err as Error);
    }
  }) as FastifyPlugin;
  // fastify-plugin's markers, without depending on it: do not encapsulate, name it in errors.
  plugin[Symbol.for('skip-override')] = true;
  plugin[Symbol.for('fastify.display-name')] = 'ekg';
  return plugin;
}

/** Fastify 5: `await app.register(mount(ekg))` (`ekg-vitals/fastify`). `options.prefix` overrides the instance's prefix. */
export function mount(ekg: Mountable, options?: RouterOptions): FastifyPlugin {
  return create(ekg.router(options));
}

export type { Mountable, RouterOptions };
