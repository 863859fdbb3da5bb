import type { Router } from '../router.js';
import { create as createNode, type NodeMiddleware } from './node.js';

/**
 * Express 5 and Connect: the node middleware as it is. It reads `req.originalUrl`, so
 * `app.use(ekg.express())` and `app.use('/ops', ekg.express())` both answer at the prefix.
 */
export function create(router: Router): NodeMiddleware {
  return createNode(router);
}
