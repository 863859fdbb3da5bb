import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { isMain, makeEkg, PORT, printUrls } from './shared.js';

export function start(port = PORT): Promise<Server> {
  const ekg = makeEkg();
  const app = new Hono();
  app.use(ekg.hono());
  app.get('/', (c) => c.text('hello from Hono\n'));
  return new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, () => resolve(s as Server));
  });
}

if (isMain(import.meta.url)) start().then((s) => printUrls('Hono', (s.address() as { port: number }).port));
