import type { Mountable, Router, RouterOptions } from '../router.js';
import { create as createNode, type NodeMiddleware } from './node.js';

export type { NodeMiddleware };

/**
 * Express 5 and Connect: the node middleware as it is. It reads `req.originalUrl`, so
 * `app.use(ekg.express())` and `app.use('/ops', ekg.express())` both answer at the prefix.
 */
export function create(router: Router): NodeMiddleware {
  return createNode(router);
}

/** Express 5: `app.use(mount(ekg))` (`ekg-vitals/express`). `options.prefix` overrides the instance's prefix. */
export function mount(ekg: Mountable, options?: RouterOptions): NodeMiddleware {
  return create(ekg.router(options));
}

export type { Mountable, RouterOptions };
