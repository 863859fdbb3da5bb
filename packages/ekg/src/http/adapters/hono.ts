import { markOwn } from '../../vitals/http.js';
import type { Mountable, Router, RouterOptions } from '../router.js';
import { handle } from './fetch.js';

interface HonoContextLike {
  req: { raw: Request };
  env?: { outgoing?: object } | unknown;
}

export type HonoMiddleware = (c: HonoContextLike, next: () => Promise<void>) => Promise<Response | undefined>;

/** Hono 4: `app.use(ekg.hono())`. Works on every runtime Hono runs on. */
export function create(router: Router): HonoMiddleware {
  return async (c, next) => {
    const r = handle(router, c.req.raw);
    if (r === undefined) {
      await next();
      return undefined;
    }
    // On @hono/node-server the Node response is reachable: mark it as ekg's own traffic.
    const outgoing = (c.env as { outgoing?: object } | undefined)?.outgoing;
    if (outgoing) markOwn(outgoing);
    return r;
  };
}

/** Hono 4: `app.use(mount(ekg))` (`ekg-vitals/hono`). `options.prefix` overrides the instance's prefix. */
export function mount(ekg: Mountable, options?: RouterOptions): HonoMiddleware {
  return create(ekg.router(options));
}

export type { Mountable, RouterOptions };
