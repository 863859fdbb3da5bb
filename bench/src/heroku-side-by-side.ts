/**
 * Heroku's Node.js collector and ekg's Heroku reporter in one process, posting to one local server, so
 * their numbers can be compared window for window (docs/migrate-heroku.md):
 *
 *   METRICS_INTERVAL_OVERRIDE=10000 node bench/dist/heroku-side-by-side.js /path/to/metrics_collector.cjs [ms]
 *
 * The collector is heroku-buildpack-nodejs `metrics/metrics_collector.cjs`, fetched by whoever runs this
 * (it is not part of this repository). The process is kept ~88 % busy allocating young and old garbage.
 */
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { createEkg, herokuInterval } from 'ekg-vitals';

interface Post {
  t: number;
  body: { counters?: Record<string, number>; gauges?: Record<string, number> };
}

const collector = process.argv[2];
if (!collector) {
  process.stderr.write('usage: node bench/dist/heroku-side-by-side.js /path/to/metrics_collector.cjs [duration ms]\n');
  process.exit(2);
}
const duration = Number(process.argv[3] ?? 65_000);
const posts: Record<'heroku' | 'ekg', Post[]> = { heroku: [], ekg: [] };
const srv = createServer((req, res) => {
  let b = '';
  req.on('data', (d) => (b += d));
  req.on('end', () => {
    posts[req.url?.startsWith('/heroku') ? 'heroku' : 'ekg'].push({ t: Date.now(), body: JSON.parse(b) });
    res.end('ok');
  });
});
await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
const base = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
process.env.HEROKU_METRICS_URL = `${base}/heroku`;
// ekg as ekg-vitals/register sets it up on Heroku: the window is the Heroku interval
const ekg = createEkg({ signals: false, interval: herokuInterval().ms });
ekg.report({ push: `${base}/ekg` });
createRequire(import.meta.url)(resolve(collector));

const until = Date.now() + duration;
let keep: unknown[][] = [];
const tick = () => {
  const t0 = Date.now();
  while (Date.now() - t0 < 88) {
    const a: unknown[] = [];
    for (let i = 0; i < 2000; i++) a.push({ i, s: `x${i}` });
    keep.push(a);
    if (keep.length > 400) keep = keep.slice(200);
  }
  if (Date.now() < until) setTimeout(tick, 12);
  else setTimeout(finish, 500);
};
tick();

function finish(): void {
  const n = Math.min(posts.heroku.length, posts.ekg.length);
  const H = posts.heroku.slice(0, n);
  const E = posts.ekg.slice(0, n);
  const sum = (list: Post[], k: string) => list.reduce((a, p) => a + (p.body.counters?.[k] ?? 0), 0);
  console.log(`Node ${process.version}; ${n} posts each, every ${herokuInterval().ms / 1000} s`);
  console.log('| name | Heroku | ekg | difference |\n|---|---|---|---|');
  for (const k of ['node.gc.collections', 'node.gc.old.collections', 'node.gc.young.collections']) {
    const h = sum(H, k);
    const e = sum(E, k);
    console.log(`| ${k} | ${h} | ${e} | ${((100 * (e - h)) / h).toFixed(2)} % |`);
  }
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const g = (p: Post | undefined) => p?.body.gauges?.['node.eventloop.usage.percent'] ?? Number.NaN;
    worst = Math.max(worst, Math.abs(g(H[i]) - g(E[i])));
  }
  console.log(`| node.eventloop.usage.percent | | | at most ${worst.toFixed(4)} apart in a post |`);
  for (let i = 0; i < n; i++) {
    const g = (p: Post | undefined, k: string) => (p?.body.gauges?.[k] ?? Number.NaN).toFixed(2);
    console.log(
      `post ${i}: median ${g(H[i], 'node.eventloop.delay.ms.median')} vs ${g(E[i], 'node.eventloop.delay.ms.median')}, p99 ${g(H[i], 'node.eventloop.delay.ms.p99')} vs ${g(E[i], 'node.eventloop.delay.ms.p99')}`,
    );
  }
  void ekg.close();
  srv.close();
  process.exit(0);
}
