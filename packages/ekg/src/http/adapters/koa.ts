import type { IncomingMessage, ServerResponse } from 'node:http';
import { markOwn } from '../../vitals/http.js';
import type { Mountable, Router, RouterOptions } from '../router.js';
import { readHeader } from './node.js';

interface KoaContextLike {
  method: string;
  originalUrl: string;
  req: IncomingMessage;
  res: ServerResponse;
  status: number;
  body: unknown;
  set(headers: Record<string, string>): void;
}

export type KoaMiddleware = (ctx: KoaContextLike, next: () => Promise<unknown>) => Promise<unknown>;

/** Koa 3: `app.use(ekg.koa())`. */
export function create(router: Router): KoaMiddleware {
  return async (ctx, next) => {
    const pending = router.handle(ctx.method, ctx.originalUrl, ctx.req, readHeader);
    if (pending === undefined) return next();
    const r = await pending;
    markOwn(ctx.res);
    ctx.status = r.status;
    ctx.set(r.headers);
    ctx.body = r.body;
  };
}

/** Koa 3: `app.use(mount(ekg))` (`ekg-vitals/koa`). `options.prefix` overrides the instance's prefix. */
export function mount(ekg: Mountable, options?: RouterOptions): KoaMiddleware {
  return create(ekg.router(options));
}

export type { Mountable, RouterOptions };
