import { createServer, type Server } from 'node:http';
import { isMain, makeEkg, PORT, printUrls } from './shared.js';

export function start(port = PORT): Promise<Server> {
  const ekg = makeEkg();
  const ops = ekg.node();
  const server = createServer((req, res) => {
    ops(req, res, () => {
      res.setHeader('content-type', 'text/plain');
      res.end('hello from node:http\n');
    });
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

if (isMain(import.meta.url)) start().then((s) => printUrls('node:http', (s.address() as { port: number }).port));
