/**
 * Hostile input against the library's two ways of serving: a router mounted in the app's own
 * server and the side server (EKG_PORT) in the watchdog's thread. Over 100k requests with broken
 * request lines, URLs, headers, methods and framing, over raw sockets, from a seeded generator;
 * the app must stay up and /heartbeat must answer all along.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { run } from './testing/child.js';
import { exchange, malformed, parseable, rng, type SocketResult } from './testing/fuzz.js';

const TOKEN = 'fuzz-s3cret';
const SEED = Number(process.env.EKG_FUZZ_SEED ?? 20_261_202);
/** pipelined requests per connection */
const BATCH = 100;
/** connections of pipelined requests, per target */
const BATCHES = 500;
/** connections carrying one malformed request each, per target */
const SINGLES = 2500;
const CONCURRENCY = 6;

interface Tally {
  requests: number;
  answers: number;
  closedEarly: number;
  byStatus: Record<number, number>;
  problems: string[];
}

async function pool(n: number, jobs: Array<() => Promise<void>>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < jobs.length) await (jobs[next++] as () => Promise<void>)();
    }),
  );
}

function record(t: Tally, what: string, r: SocketResult, sent: number): void {
  t.requests += sent;
  t.answers += r.statuses.length;
  for (const s of r.statuses) t.byStatus[s] = (t.byStatus[s] ?? 0) + 1;
  if (r.hung) t.problems.push(`${what}: no answer and no close within 30 s`);
  if (r.internalError) t.problems.push(`${what}: ekg internal error`);
  if (r.statuses.some((s) => s >= 500)) t.problems.push(`${what}: a 5xx (${r.statuses.join(',')})`);
  if (r.statuses.length < sent) {
    // the server may close a connection, but only after saying why (a 4xx), or on bytes it cannot answer
    t.closedEarly++;
  }
}

test('fuzz: 100k+ hostile requests to a mounted router and the side server; the app stays up and /heartbeat answers', {
  timeout: 240_000,
}, async (t) => {
  const app = run('fuzz-app', { args: [TOKEN] });
  try {
    const m = await app.line(/ports (\d+) (\d+)/);
    const targets = { mounted: Number(m[1]), side: Number(m[2]) };
    const tallies: Record<string, Tally> = {};
    let fuzzing = true;
    const probes: Array<{ port: string; status: number; ms: number; starved?: number }> = [];
    // the app's main thread's CPU time (ms, from /proc; undefined elsewhere) at times of this process's clock
    const pid = app.proc.pid as number;
    const cpu = (): number | undefined => {
      try {
        const f = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
        return (Number(f[11]) + Number(f[12])) * 10;
      } catch {
        return undefined;
      }
    };
    const samples: Array<{ at: number; cpu: number | undefined }> = [];
    // probes all along: a load balancer's view of the app while it is attacked
    const prober = (async () => {
      while (fuzzing) {
        for (const [name, port] of Object.entries(targets)) {
          const t0 = performance.now();
          samples.push({ at: t0, cpu: cpu() });
          const r = await fetch(`http://127.0.0.1:${port}/ops/heartbeat`, { signal: AbortSignal.timeout(30_000) });
          await r.arrayBuffer();
          const at = performance.now();
          const probe: (typeof probes)[number] = { port: name, status: r.status, ms: at - t0 };
          // a 503 from the watchdog's thread says the loop has not turned for its threshold (x-ekg-stalled-ms):
          // right when the machine kept the main thread off the CPU (it ran under half of that time), wrong when
          // the app's own work held the loop
          const stalled = Number(r.headers.get('x-ekg-stalled-ms') ?? 0);
          const now = cpu();
          const from = samples.filter((x) => x.at <= at - stalled).at(-1);
          if (r.status === 503 && stalled > 0 && from?.cpu !== undefined && now !== undefined)
            probe.starved = 1 - (now - from.cpu) / (at - from.at);
          probes.push(probe);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    for (const [name, port] of Object.entries(targets)) {
      const tally: Tally = { requests: 0, answers: 0, closedEarly: 0, byStatus: {}, problems: [] };
      tallies[name] = tally;
      const r = rng(SEED + port);
      const jobs: Array<() => Promise<void>> = [];
      for (let i = 0; i < BATCHES; i++) {
        let batch = '';
        for (let k = 0; k < BATCH; k++) batch += parseable(r, '/ops', TOKEN);
        jobs.push(async () => record(tally, `${name} batch ${i}`, await exchange(port, batch, BATCH), BATCH));
      }
      for (let i = 0; i < SINGLES; i++) {
        const { bytes, answered } = malformed(r, '/ops');
        const what = `${name} malformed ${JSON.stringify(bytes.toString('latin1').slice(0, 60))}`;
        jobs.push(async () => {
          const got = await exchange(port, bytes);
          record(tally, what, got, 1);
          // refused bytes get a 4xx saying why; a request that parses gets its answer, even when
          // the client half-closes right after sending it
          if (answered && got.statuses.length === 0) tally.problems.push(`${what}: closed without an answer`);
        });
      }
      await pool(CONCURRENCY, jobs);
    }
    fuzzing = false;
    await prober;

    let total = 0;
    for (const [name, tally] of Object.entries(tallies)) {
      total += tally.requests;
      t.diagnostic(
        `${name}: ${tally.requests} requests, ${tally.answers} answers ${JSON.stringify(tally.byStatus)}, ${tally.closedEarly} connections closed early`,
      );
      assert.deepEqual(tally.problems.slice(0, 10), [], name);
      // most of the hostile requests are answered, not dropped
      assert.ok(tally.answers > tally.requests / 2, `${name}: ${tally.answers} answers to ${tally.requests}`);
    }
    assert.ok(total >= 100_000, `${total} requests`);
    const worst = Math.max(...probes.map((p) => p.ms));
    t.diagnostic(`${probes.length} heartbeat probes during the fuzz, slowest ${worst.toFixed(0)} ms`);
    assert.ok(probes.length >= 2, 'probed during the fuzz');
    const starved = probes.filter((p) => p.status === 503 && p.port === 'side' && (p.starved ?? 0) > 0.5);
    if (starved.length) t.diagnostic(`${starved.length} probes answered 503 while the busy machine kept the app's loop off the CPU`);
    assert.deepEqual(
      probes.filter((p) => p.status !== 200 && !starved.includes(p)),
      [],
      'every probe during the fuzz: 200 (or 503 from the side server while the machine, not the app, stalled the loop)',
    );
    // and after: alive, healthy, serving its own requests and ekg's
    assert.equal(app.proc.exitCode, null, `the app exited: ${app.stderr()}`);
    for (const port of Object.values(targets)) {
      const hb = await fetch(`http://127.0.0.1:${port}/ops/heartbeat`);
      assert.equal(hb.status, 200);
      assert.equal(await hb.text(), 'heartbeat:ok');
      const stats = await fetch(`http://127.0.0.1:${port}/ops/stats`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(stats.status, 200);
      await stats.arrayBuffer();
    }
    // every 400/408/431 the side server gave is counted (in /stats from the next window on)
    const side = tallies.side as Tally;
    const answered = (side.byStatus[400] ?? 0) + (side.byStatus[408] ?? 0) + (side.byStatus[431] ?? 0);
    let refused = -1;
    for (let i = 0; i < 200 && refused < answered; i++) {
      const r = await fetch(`http://127.0.0.1:${targets.side}/ops/stats`, { headers: { authorization: `Bearer ${TOKEN}` } });
      refused = ((await r.json()) as { ekg: { limits: { sideServer: { refused: number } } } }).ekg.limits.sideServer.refused;
      if (refused < answered) await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(refused >= answered, `${refused} counted, ${answered} answered`);
    assert.equal(await (await fetch(`http://127.0.0.1:${targets.mounted}/x`)).text(), 'app');
    assert.doesNotMatch(app.stderr(), /Error|EKG_ERR/, 'nothing on stderr');
  } finally {
    app.proc.kill('SIGKILL');
    await app.exit;
  }
});
