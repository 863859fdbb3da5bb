import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/ekg-agent.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ekg-run-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Every `ekg-agent run` started here leads a process group of its own (it, its agent, the app): whatever a test
 * ends with (a failed wait, a timeout), the group is killed, so no child outlives the file and holds it open.
 */
const groups: number[] = [];
after(() => {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // the group is gone already
    }
  }
});

/** `ekg-agent run` with a fresh data dir and free ports, running `node -e <app>`. */
function run(
  app: string,
  extra: string[] = [],
  env: Record<string, string> = {},
): { proc: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const proc = spawn(
    process.execPath,
    [
      BIN,
      'run',
      '--statsd',
      '127.0.0.1:0',
      '--http',
      '127.0.0.1:0',
      '--console',
      'off',
      '--data',
      mkdtempSync(join(dir, 'd')),
      ...extra,
      '--',
      process.execPath,
      '-e',
      app,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, EKG_INTERVAL: '1s', ...env }, detached: true },
  );
  groups.push(proc.pid as number);
  let out = '';
  proc.stdout?.on('data', (d) => (out += d));
  proc.stderr?.on('data', (d) => (out += d));
  return { proc, out: () => out, exited: new Promise((r) => proc.once('exit', (code) => r(code))) };
}

/**
 * Polls `fn` until it holds; `ms` bounds a failure on a busy machine, it is not the expected wait. A timeout says
 * where `pid`'s processes were (Linux): a run that stopped answering is diagnosed from the failure alone.
 */
async function until(fn: () => boolean, ms: number, what: string, pid?: number): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${pid ? `\n${processTree(pid)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `pid` and its descendants from /proc: command, state, and each thread's state, kernel wait and syscall. */
function processTree(pid: number, depth = 0): string {
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8').trim();
    } catch {
      return '?';
    }
  };
  const pad = '  '.repeat(depth);
  let s = `${pad}pid ${pid}: ${read(`/proc/${pid}/cmdline`).replaceAll('\0', ' ').slice(0, 160)}\n`;
  let kids: string[] = [];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const d = `/proc/${pid}/task/${t}`;
      const state = read(`${d}/stat`).split(') ')[1]?.split(' ')[0];
      s += `${pad}  thread ${t} ${read(`${d}/comm`)} ${state} wchan ${read(`${d}/wchan`)} syscall ${read(`${d}/syscall`).split(' ').slice(0, 2).join(' ')}\n`;
      kids = kids.concat(
        read(`${d}/children`)
          .split(/\s+/)
          .filter((k) => /^\d+$/.test(k)),
      );
    }
  } catch {
    return `${s}${pad}  (gone, or no /proc)\n`;
  }
  for (const k of kids) s += processTree(Number(k), depth + 1);
  return s;
}

test('the app gets ekg attached and the agent address; run exits with the app code, after draining the agent', {
  timeout: 120_000,
}, async () => {
  const r = run("console.log('env', process.env.EKG_STATSD, process.env.NODE_OPTIONS); setTimeout(() => process.exit(3), 300)");
  assert.equal(await r.exited, 3, r.out());
  assert.match(r.out(), /env udp:\/\/127\.0\.0\.1:\d+ --import file:\/\/\S+register\.js/);
  assert.match(r.out(), /ekg-agent: SIGTERM: flushing the open window/, 'the agent was drained');
  const ok = run('setTimeout(() => {}, 100)');
  assert.equal(await ok.exited, 0);
});

test('the app reports into the agent with no code of its own', { timeout: 180_000 }, async () => {
  const r = run(
    "require('node:http').createServer((q, s) => s.end('ok')).listen(0); process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000)",
    ['--flush-interval', '1s'],
  );
  await until(() => /http http:\/\/127\.0\.0\.1:\d+/.test(r.out()), 60_000, 'the agent start line');
  const http = /http (http:\/\/127\.0\.0\.1:\d+)/.exec(r.out())?.[1] as string;
  let seen = false;
  const end = Date.now() + 60_000;
  while (!seen && Date.now() < end) {
    const inst = (await (await fetch(`${http}/api/v1/instances`)).json()) as { instances: unknown[] };
    seen = inst.instances.length > 0;
    await new Promise((res) => setTimeout(res, 200));
  }
  assert.ok(seen, `the app appears as an instance: ${r.out()}`);
  r.proc.kill('SIGTERM');
  assert.equal(await r.exited, 0);
});

test('SIGTERM goes to the app; an app that ignores it is killed after --kill-after', { timeout: 180_000 }, async () => {
  const polite = run(
    "process.on('SIGTERM', () => { console.log('got SIGTERM'); process.exit(0); }); setInterval(() => {}, 1000); console.log('ready')",
  );
  await until(() => polite.out().includes('ready'), 60_000, 'the app');
  polite.proc.kill('SIGTERM');
  assert.equal(await polite.exited, 0);
  assert.match(polite.out(), /got SIGTERM/);

  const stubborn = run("process.on('SIGTERM', () => console.log('ignoring')); setInterval(() => {}, 1000); console.log('ready')", [
    '--kill-after',
    '500ms',
  ]);
  await until(() => stubborn.out().includes('ready'), 60_000, 'the app');
  stubborn.proc.kill('SIGTERM');
  assert.equal(await stubborn.exited, 137);
  assert.match(stubborn.out(), /has not exited 0\.5 s after SIGTERM: killing it/);
});

test('an agent that dies is started again on the same StatsD port; the app goes on', { timeout: 300_000 }, async () => {
  // the app runs until the test is done with the agent (a timed app could end first on a busy machine)
  const r = run("process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000); console.log('app up')");
  await until(() => /agent started \(pid \d+\)/.test(r.out()), 120_000, `the agent: ${r.out()}`, r.proc.pid);
  const [, pid, port] = /agent started \(pid (\d+)\), StatsD on (\S+)/.exec(r.out()) as RegExpExecArray;
  process.kill(Number(pid), 'SIGKILL');
  await until(() => (r.out().match(/agent started/g) ?? []).length >= 2, 120_000, `the agent started again: ${r.out()}`, r.proc.pid);
  const again = [...r.out().matchAll(/agent started \(pid (\d+)\), StatsD on (\S+)/g)].at(-1) as RegExpExecArray;
  assert.notEqual(again[1], pid);
  assert.equal(again[2], port, 'the same port, so the app keeps reporting to it');
  assert.match(r.out(), /agent exited \(SIGKILL\); starting it again/);
  assert.match(r.out(), /app up/);
  assert.equal(r.proc.exitCode, null, 'the app went on');
  r.proc.kill('SIGTERM');
  assert.equal(await r.exited, 0);
});

test('no command, or a bad agent option, is refused with a line saying why', async () => {
  const none = spawn(process.execPath, [BIN, 'run', '--console', 'off'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  none.stderr?.on('data', (d) => (err += d));
  assert.equal(await new Promise((r) => none.once('exit', r)), 2);
  assert.match(err, /no command/);
  const bad = spawn(process.execPath, [BIN, 'run', '--flush-interval', 'soon', '--', 'true'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err2 = '';
  bad.stderr?.on('data', (d) => (err2 += d));
  assert.equal(await new Promise((r) => bad.once('exit', r)), 2);
  assert.match(err2, /flush-interval: "soon"/);
});

test('with HEROKU_METRICS_URL, only the agent posts there, in Heroku names; the app reports to the agent; run says so', {
  timeout: 180_000,
}, async () => {
  const posts: Array<{ agent: string; body: { counters?: Record<string, number>; gauges?: Record<string, number> } }> = [];
  const sink = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      posts.push({ agent: String(req.headers['user-agent']), body: JSON.parse(body) });
      res.end();
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(sink.address() as { port: number }).port}/metrics?token=t`;
  const yaml = join(mkdtempSync(join(dir, 'c')), 'agent.yaml');
  writeFileSync(yaml, `exporters:\n  - type: heroku\n    url: ${url}\n    period: 1s\n`);
  const r = run(
    "console.log('app sees HEROKU_METRICS_URL:', process.env.HEROKU_METRICS_URL ?? 'unset'); let keep = []; setInterval(() => { keep = Array.from({ length: 5e4 }, (_, i) => ({ i })); }, 20); process.on('SIGTERM', () => process.exit(0))",
    ['--config', yaml, '--flush-interval', '1s'],
    { HEROKU_METRICS_URL: url },
  );
  try {
    await until(() => posts.some((p) => p.body.counters?.['node.gc.collections'] !== undefined), 120_000, "the app's GC in a post");
    assert.match(r.out(), /HEROKU_METRICS_URL: the agent posts, every 1 s; the app reports to the agent over StatsD/);
    assert.match(r.out(), /app sees HEROKU_METRICS_URL: unset/);
    assert.ok(
      posts.every((p) => p.agent.startsWith('ekg-agent')),
      `one poster: ${posts.map((p) => p.agent).join(', ')}`,
    );
    const p = posts.find((x) => x.body.counters?.['node.gc.collections'] !== undefined)?.body;
    const c = p?.counters ?? {};
    // Counters are spread over the interval the app's window covers, so a period may hold a fraction of one; the
    // parts are summed in another order than the whole, hence equal up to float rounding.
    const parts = (c['node.gc.old.collections'] ?? 0) + (c['node.gc.young.collections'] ?? 0);
    const all = c['node.gc.collections'] ?? Number.NaN;
    assert.ok(Math.abs(parts - all) <= 1e-9 * Math.max(1, all), `old + young = all: ${parts} vs ${all}`);
    const usage = p?.gauges?.['node.eventloop.usage.percent'];
    assert.ok(usage !== undefined && usage >= 0 && usage <= 1, `usage is a fraction: ${usage}`);
    assert.ok((p?.gauges?.['node.eventloop.delay.ms.median'] ?? 0) >= 9, 'the median delay includes the 10 ms resolution');
  } finally {
    r.proc.kill('SIGTERM');
    await r.exited;
    sink.close();
  }
});
