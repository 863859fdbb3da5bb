import cluster from 'node:cluster';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { isClusterPrimary } from '../cluster.js';
import type { Core } from '../core.js';
import { describe } from '../errors.js';
import { warn } from '../log.js';
import type { Snapshot } from '../window/snapshot.js';
import { create as nodeHandler, writeReply } from './adapters/node.js';
import { Routes } from './contract.js';
import { Router } from './router.js';
import { createSideServer } from './side-http.js';

export interface ListenOptions {
  port: number;
  /** default 127.0.0.1: the endpoints are for probes and scrapers on this host or pod */
  host?: string;
  /** default '' (the endpoints at /heartbeat, /metrics, …) */
  prefix?: string;
}

/**
 * A side server for apps that serve no HTTP of their own. It never keeps the process alive, and a
 * failure to listen is one stderr line, never an exception: the app runs on without it.
 */
export function listen(ekg: Core, options: ListenOptions): Promise<Server | undefined> {
  const router = new Router(ekg, { prefix: options.prefix ?? '' });
  if (ekg.watchdog) return listenInWatchdog(ekg, router, options);
  const handler = nodeHandler(router);
  // a side server has no app behind it: the rest is the contract's 404, as in the watchdog's thread
  const notFound = (req: IncomingMessage, res: ServerResponse) => writeReply(res, router.routes.notFound(Routes.path(req.url ?? '/')));
  const counts = { refused: 0, dropped: 0 };
  const server = createSideServer(
    (req, res) => handler(req, res, () => notFound(req, res)),
    (what) => counts[what]++,
  );
  ekg.sideServerCounts = () => ({ ...counts });
  const host = options.host ?? '127.0.0.1';
  return new Promise((resolve) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'the port is already in use' : describe(err);
      warn('EKG_ERR_LISTEN', `side server could not listen on ${host}:${options.port}: ${why}; the endpoints are off, the app runs on`);
      resolve(undefined);
    };
    server.once('error', onError);
    server.listen(options.port, host, () => {
      server.off('error', onError);
      // Later socket errors are the client's problem, never the app's.
      server.on('error', () => {});
      server.unref();
      ekg.track(server);
      resolve(server);
    });
  });
}

/**
 * The side server in the watchdog's thread, so that probes get an answer while the main thread is
 * stuck, and cost the main thread nothing per request while it runs (docs/watchdog.md).
 */
async function listenInWatchdog(ekg: Core, router: Router, options: ListenOptions): Promise<undefined> {
  const wd = ekg.watchdog as NonNullable<Core['watchdog']>;
  const host = options.host ?? '127.0.0.1';
  // The worker answers from what is posted here: each closed window, raw (the worker renders /stats
  // and /metrics from it), and the probes' replies whenever the health state may have changed (posted
  // only when they did). A cluster primary's pages are live: gathered from its workers per request.
  const postPages = (s: Snapshot) => wd.snapshot(s, ekg.selfState(), isClusterPrimary());
  let last = '';
  const postProbes = () => {
    const p = router.probes();
    const key = JSON.stringify(p);
    if (key === last) return;
    last = key;
    wd.probes(p);
  };
  ekg.onWindow(postPages);
  ekg.onHealthChange(postProbes);
  ekg.sideServerCounts = () => wd.sideCounts();
  postProbes();
  const now = ekg.peek();
  if (now) postPages(now);
  // a cluster primary's pages turn live (gathered per request) when its first worker comes online
  if (cluster.isPrimary) {
    const repost = () => {
      const s = ekg.peek();
      if (s) postPages(s);
    };
    cluster.on('online', repost);
    cluster.on('exit', repost);
  }
  try {
    await wd.serve({ port: options.port, host, prefix: options.prefix ?? '', token: ekg.options.token }, (method, url, headers) =>
      router.handle(method, url, headers, (h, name) => h[name]),
    );
  } catch (err) {
    const e = err as Error & { code?: string };
    const why = /EADDRINUSE/.test(e.message) ? 'the port is already in use' : e.message;
    warn('EKG_ERR_LISTEN', `side server could not listen on ${host}:${options.port}: ${why}; the endpoints are off, the app runs on`);
  }
  return undefined;
}
