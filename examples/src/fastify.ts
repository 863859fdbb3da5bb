import type { Server } from 'node:http';
import Fastify from 'fastify';
import { isMain, makeEkg, PORT, printUrls } from './shared.js';

export async function start(port = PORT): Promise<Server> {
  const ekg = makeEkg();
  const app = Fastify();
  await app.register(ekg.fastify());
  app.get('/', async () => 'hello from Fastify\n');
  await app.listen({ port, host: '127.0.0.1' });
  return app.server as Server;
}

if (isMain(import.meta.url)) start().then((s) => printUrls('Fastify', (s.address() as { port: number }).port));
