import { createEkg, type Ekg, type Vital } from 'ekg-vitals';

/** A custom vital as an app would write one: a job queue with its own health verdict. */
export function queueVital(): Vital {
  let depth = 0;
  const timer = setInterval(() => {
    depth = Math.max(0, depth + Math.round(Math.random() * 10 - 5));
  }, 1000);
  timer.unref();
  return {
    name: 'queue',
    stats: () => ({ depth, workers: { busy: Math.min(depth, 4), max: 4 } }),
    check: () => (depth < 1000 ? { ok: true } : { ok: false, detail: `queue depth ${depth} over 1000` }),
    close: () => clearInterval(timer),
  };
}

/** The examples report over StatsD when EKG_STATSD is set (npm start sets it to its local StatsD). */
export function makeEkg(): Ekg {
  const statsd = process.env.EKG_STATSD;
  const interval = process.env.EKG_INTERVAL;
  return createEkg({
    prefix: '/ops',
    vitals: [queueVital()],
    labels: { service: 'example' },
    ...(interval ? { interval } : {}),
    ...(statsd ? { report: { statsd } } : {}),
  });
}

export const PORT = Number(process.env.PORT ?? 3000);

export function printUrls(framework: string, port: number): void {
  const base = `http://127.0.0.1:${port}`;
  console.log(`${framework} example listening on ${base}`);
  for (const p of ['/', '/ops/heartbeat', '/ops/ready', '/ops/live', '/ops/stats', '/ops/metrics']) console.log(`  ${base}${p}`);
}

/** True when this module is the entry point (`node dist/express.js`). */
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && url.endsWith(process.argv[1].replace(/\\/g, '/'));
}
