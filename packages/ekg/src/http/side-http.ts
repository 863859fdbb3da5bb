import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { clientErrorResponse, SIDE_SERVER } from './contract.js';

/**
 * The side server's HTTP server, the same in the main thread and in the watchdog's: the contract's
 * limits, and bytes that are not HTTP answered 400/408/431 naming the problem, then closed; each
 * refusal and each connection dropped past the limit is counted (`ekg.limits.sideServer` in /stats).
 */
export function createSideServer(
  onRequest: (req: IncomingMessage, res: ServerResponse) => void,
  count: (what: 'refused' | 'dropped') => void,
): Server {
  const { maxConnections, ...options } = SIDE_SERVER;
  const server = createServer(options, onRequest);
  server.maxConnections = maxConnections;
  // A client may send its request and half-close at once (`printf … | nc`): the answer, which in
  // the watchdog's thread can come a moment later, still goes out before the connection closes.
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  // past maxConnections (Node closes the connection at accept)
  server.on('drop', () => count('dropped'));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    count('refused');
    // a reset, or an answer already under way: nothing more to say on this connection
    if (err.code === 'ECONNRESET' || !socket.writable || (socket as Duplex & { _httpMessage?: unknown })._httpMessage) {
      socket.destroy();
      return;
    }
    socket.end(clientErrorResponse(err.code));
  });
  return server;
}
