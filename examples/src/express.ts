import { createServer, type Server } from 'node:http';
import express from 'express';
import { isMain, makeEkg, PORT, printUrls } from './shared.js';

export function start(port = PORT): Promise<Server> {
  const ekg = makeEkg();
  const app = express();
  app.use(ekg.express());
  app.get('/', (_req, res) => {
    res.type('text').send('hello from Express\n');
  });
  app.get('/slow', (_req, res) => {
    setTimeout(() => res.send('slow\n'), 200);
  });
  const server = createServer(app);
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

if (isMain(import.meta.url)) start().then((s) => printUrls('Express', (s.address() as { port: number }).port));
