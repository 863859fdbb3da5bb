import type { Server } from 'node:http';

/**
 * Closes each listening server gracefully: no new connections, idle keep-alive sockets closed as
 * they become idle, in-flight requests given `shutdownTimeout` ms before their connections are cut.
 */
export async function closeServers(servers: Iterable<Server>, shutdownTimeout: number): Promise<void> {
  await Promise.all(
    [...servers].map(
      (server) =>
        new Promise<void>((done) => {
          if (!server.listening) return done();
          const cut = setTimeout(() => {
            server.closeAllConnections?.();
          }, shutdownTimeout);
          cut.unref();
          // Keep-alive sockets with no request in flight would hold close() open until their
          // timeout; so would those that become idle when an in-flight request finishes.
          const sweep = setInterval(() => server.closeIdleConnections?.(), 50);
          sweep.unref();
          server.close(() => {
            clearTimeout(cut);
            clearInterval(sweep);
            done();
          });
          server.closeIdleConnections?.();
        }),
    ),
  );
}
