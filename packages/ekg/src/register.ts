/**
 * `node --import ekg-vitals/register app.js`: ekg with no code change. Reads EKG_* (docs/env.md); a bad
 * value is one stderr line and that feature off. Nothing here may stop the app from starting.
 */
import cluster from 'node:cluster';
import { isMainThread, workerData } from 'node:worker_threads';
import { createEkg } from './ekg.js';
import { readEnv } from './env.js';
import { describe } from './errors.js';
import { listen } from './http/server.js';
import { warn } from './log.js';
import { registered, setRegistered } from './registry.js';

/**
 * Package managers started with NODE_OPTIONS inherit `--import …/register` too (`NODE_OPTIONS=… npm start`): ekg stays
 * out of them, so the port, the probes and the instance belong to the program they start, which inherits the option.
 */
const PACKAGE_MANAGER =
  /[\\/](?:npm|npx|npm-cli|npx-cli|npm-prefix|yarn|yarnpkg|pnpm|pnpx|corepack)(?:\.c?js|\.mjs)?$|[\\/]node_modules[\\/](?:npm|yarn|pnpm|corepack)[\\/]/;

export function isPackageManager(script: string | undefined = process.argv[1]): boolean {
  return typeof script === 'string' && PACKAGE_MANAGER.test(script);
}

function start(): void {
  if (registered()) return; // imported twice (e.g. --import and NODE_OPTIONS)
  if (isMainThread && isPackageManager()) return;
  // ekg's own watchdog thread is not an app thread to watch
  if (!isMainThread && (workerData as { ekgWatchdog?: boolean } | null)?.ekgWatchdog) return;
  const env = readEnv();
  if (env.disabled) return;
  const labels: Record<string, string> = {};
  if (env.service) labels.service = env.service;
  for (const [k, v] of Object.entries(env.tags)) {
    const key = k.replace(/[^A-Za-z0-9_]/g, '_');
    if (/^[A-Za-z_]/.test(key) && !key.startsWith('__')) labels[key] = v;
  }
  const ekg = createEkg({
    prefix: env.prefix,
    interval: env.interval,
    token: env.token,
    labels,
    // the stall watchdog watches the main thread's loop (EKG_WATCHDOG=0 turns it off)
    watchdog: env.watchdog && isMainThread ? { liveFailAfter: env.liveFailAfter } : false,
    // signals reach the main thread only; a worker thread leaves them to it
    ...(isMainThread ? {} : { signals: false as const }),
  });
  setRegistered(ekg);
  const report = {
    prefix: env.statsdPrefix,
    dogstatsdTags: env.statsdTags,
    tags: env.tags,
    service: env.service,
    maxPacket: env.maxPacket,
  };
  for (const target of env.statsd) {
    try {
      ekg.report({ ...report, statsd: target });
    } catch (err) {
      warn('EKG_ERR_BAD_ENV', `EKG_STATSD=${JSON.stringify(target)}: ${describe(err)}; this target is off`);
    }
  }
  for (const target of env.push) {
    try {
      ekg.report({ ...report, push: target });
    } catch (err) {
      warn('EKG_ERR_BAD_ENV', `push URL: ${describe(err)}; pushing is off`);
    }
  }
  // One side server per process: cluster workers and worker threads leave the port to the primary
  // (whose /stats and /metrics then speak for every worker).
  if (env.port !== undefined && isMainThread && !cluster.isWorker) {
    void listen(ekg, { port: env.port, host: env.host, prefix: env.prefix });
  }
}

try {
  start();
} catch (err) {
  warn('EKG_ERR_BAD_ENV', `ekg-vitals/register could not start: ${describe(err)}; the app runs without ekg`);
}
