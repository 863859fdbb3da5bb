import { createServer, type Server } from 'node:http';
import Koa from 'koa';
import { isMain, makeEkg, PORT, printUrls } from './shared.js';

export function start(port = PORT): Promise<Server> {
  const ekg = makeEkg();
  const app = new Koa();
  app.use(ekg.koa());
  app.use(async (ctx) => {
    if (ctx.path === '/') ctx.body = 'hello from Koa\n';
  });
  const server = createServer(app.callback());
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

if (isMain(import.meta.url)) start().then((s) => printUrls('Koa', (s.address() as { port: number }).port));
