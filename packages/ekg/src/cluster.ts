/**
 * Cluster support: each worker answers the primary's `collect` message with its last window; the
 * primary's /stats and /metrics then show every worker, labelled by worker id. A worker that does
 * not answer within the timeout (stuck, dying) is reported as missing; the others still answer.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Core } from './core.js';
import { escapeLabel } from './formats/prometheus.js';
import type { Stats } from './types.js';

interface CollectRequest {
  ekg: 'collect';
  id: number;
}
interface CollectAnswer {
  ekg: 'collected';
  id: number;
  stats: Stats;
  metrics: string;
}

const kServed = Symbol.for('ekg.cluster.served');

/** In a cluster worker: answer the primary's collect requests from `ekg-vitals`'s last window. */
export function serveWorker(ekg: Core): void {
  const g = globalThis as { [kServed]?: boolean };
  if (!cluster.isWorker || !process.send || g[kServed]) return;
  g[kServed] = true;
  process.on('message', (m: unknown) => {
    const req = m as CollectRequest | null;
    if (req === null || typeof req !== 'object' || req.ekg !== 'collect') return;
    ekg
      .snapshot()
      .then((snap) => {
        const answer: CollectAnswer = { ekg: 'collected', id: req.id, stats: ekg.statsObject(snap).stats, metrics: ekg.metricsText(snap) };
        process.send?.(answer, undefined, undefined, () => {});
      })
      .catch(() => {});
  });
  // The channel is left as cluster set it: a worker lives while connected to its primary anyway,
  // and unref'ing it would let a worker exit in the middle of cluster's own listen handshake.
}

export interface Gathered {
  workers: Record<string, { stats: Stats; metrics: string }>;
  missing: Record<string, string>;
}

let nextId = 1;

/** True in a cluster primary that has workers: /stats and /metrics then speak for all of them. */
export function isClusterPrimary(): boolean {
  return cluster.isPrimary && cluster.workers !== undefined && Object.keys(cluster.workers).length > 0;
}

/** Asks every live worker for its last window, waiting at most `timeout` ms for each. */
export function gather(timeout = 1000): Promise<Gathered> {
  const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w?.isConnected() === true);
  const out: Gathered = { workers: {}, missing: {} };
  return Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((done) => {
          const id = nextId++;
          const key = String(w.id);
          const finish = () => {
            clearTimeout(timer);
            w.off('message', onMessage);
            w.off('exit', onExit);
            done();
          };
          const onMessage = (m: unknown) => {
            const a = m as CollectAnswer | null;
            if (a === null || typeof a !== 'object' || a.ekg !== 'collected' || a.id !== id) return;
            out.workers[key] = { stats: a.stats, metrics: a.metrics };
            finish();
          };
          const onExit = () => {
            out.missing[key] = 'exited while being asked';
            finish();
          };
          const timer = setTimeout(() => {
            out.missing[key] = `no answer within ${timeout} ms (event loop blocked, or ekg not loaded in the worker)`;
            finish();
          }, timeout);
          timer.unref();
          w.on('message', onMessage);
          w.on('exit', onExit);
          try {
            w.send({ ekg: 'collect', id } satisfies CollectRequest, undefined, (err: Error | null) => {
              if (err) {
                out.missing[key] = `could not be asked: ${err.message}`;
                finish();
              }
            });
          } catch (err) {
            out.missing[key] = `could not be asked: ${(err as Error).message}`;
            finish();
          }
        }),
    ),
  ).then(() => out);
}

/**
 * Merges exposition texts into one page: each family once, its samples from every source with a
 * `worker` label added (the primary's own as worker="primary").
 */
export function mergeMetrics(sources: Array<{ worker: string; text: string }>): string {
  const families = new Map<string, { help?: string; type?: string; samples: string[] }>();
  const familyOf = (sample: string, types: Map<string, string>) => {
    for (const suffix of ['_bucket', '_sum', '_count', '']) {
      if (suffix && !sample.endsWith(suffix)) continue;
      const base = suffix ? sample.slice(0, -suffix.length) : sample;
      if (types.has(base)) return base;
    }
    return sample;
  };
  for (const src of sources) {
    const types = new Map<string, string>();
    const label = `worker="${escapeLabel(src.worker)}"`;
    for (const line of src.text.split('\n')) {
      if (!line || line === '# EOF') continue;
      const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (meta) {
        const [, kind, name, rest] = meta as unknown as [string, string, string, string];
        const f = families.get(name) ?? { samples: [] };
        if (kind === 'HELP') f.help ??= rest;
        else {
          f.type ??= rest;
          types.set(name, rest);
        }
        families.set(name, f);
        continue;
      }
      if (line.startsWith('#')) continue;
      const brace = line.indexOf('{');
      const space = line.indexOf(' ');
      const nameEnd = brace !== -1 && brace < space ? brace : space;
      const name = line.slice(0, nameEnd);
      const labelled =
        brace !== -1 && brace < space ? `${name}{${label},${line.slice(brace + 1)}` : `${name}{${label}}${line.slice(space)}`;
      const fam = familyOf(name, types);
      const f = families.get(fam) ?? { samples: [] };
      f.samples.push(labelled);
      families.set(fam, f);
    }
  }
  const out: string[] = [];
  for (const [name, f] of families) {
    if (f.help !== undefined) out.push(`# HELP ${name} ${f.help}`);
    if (f.type !== undefined) out.push(`# TYPE ${name} ${f.type}`);
    out.push(...f.samples);
  }
  return `${out.join('\n')}\n`;
}
