import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

const REGISTER = import.meta.resolve('../register.js');
const INDEX = import.meta.resolve('../index.js');
const dir = mkdtempSync(join(tmpdir(), 'ekg-watchdog-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** An app that blocks its event loop in `burnCpu` for `ms`, then prints ekg's stall stats and metrics. */
const APP = (ms: number) => `
import { registered } from '${INDEX}';
function burnCpu(ms) {
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) x += Math.sqrt(x + 1);
  return x;
}
setTimeout(() => burnCpu(${ms}), 300);
setTimeout(async () => {
  const e = registered();
  const s = await e.snapshot();
  console.log('STATS ' + JSON.stringify(e.statsObject(s).stats.ekg.stalls));
  console.log(e.metricsText(s).split('\\n').filter((l) => l.startsWith('ekg_eventloop_stall')).join('\\n'));
  process.exit(0);
}, ${ms} + 1500);
`;

function runApp(
  ms: number,
  execArgv: string[] = [],
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string; err: string; file: string }> {
  const file = join(dir, `app-${ms}-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, APP(ms));
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [...execArgv, '--import', REGISTER, file], {
      env: { ...process.env, EKG_INTERVAL: '500ms', NODE_PATH: '', ...env },
      cwd: new URL('../../', import.meta.url).pathname,
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ code, out, err, file }));
  });
}

test('a 3 s block in burnCpu: one stall, its stack names burnCpu with file and line, in stderr, /stats, /metrics and a StatsD event', {
  timeout: 20_000,
}, async () => {
  const udp = createSocket('udp4');
  const packets: string[] = [];
  udp.on('message', (m) => packets.push(String(m)));
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  after(() => udp.close());
  const r = await runApp(3000, [], { EKG_STATSD: `udp://127.0.0.1:${udp.address().port}` });
  assert.equal(r.code, 0, r.err);
  // the stderr line comes from the watchdog's thread while the main thread is still blocked
  const line = r.err.split('\n').find((l) => l.includes('has been blocked'));
  assert.ok(line, r.err);
  assert.match(line, /ekg: EKG_STALL the event loop has been blocked for \d+ ms, at burnCpu \(file:\/\/\S+app-3000-\w+\.mjs:[4-7]:\d+\)/);
  assert.match(r.err, /ekg: EKG_STALL the event loop ran again after \d+ ms/);
  const stats = JSON.parse((/STATS (.*)/.exec(r.out) as RegExpExecArray)[1] as string) as {
    count: number;
    totalMs: number;
    last: Array<{ duration: number; at: string }>;
  };
  assert.equal(stats.count, 1, 'counted once');
  assert.ok(Math.abs((stats.last[0]?.duration ?? 0) - 3000) < 400, `about 3 s: ${stats.last[0]?.duration}`);
  assert.match(stats.last[0]?.at ?? '', /^burnCpu \(file:.*:[4-7]:\d+\)$/, 'a line inside burnCpu');
  assert.match(r.out, /^ekg_eventloop_stalls_total 1$/m);
  assert.match(r.out, /^ekg_eventloop_stall_duration_seconds_bucket\{le="2\.5"\} 0$/m);
  assert.match(r.out, /^ekg_eventloop_stall_duration_seconds_bucket\{le="5"\} 1$/m);
  assert.match(r.out, /^ekg_eventloop_stall_duration_seconds_count 1$/m);
  const event = packets.find((p) => p.startsWith('_e{'));
  assert.ok(event, 'a DogStatsD event');
  assert.match(event, /^_e\{18,\d+\}:event loop stalled\|blocked for \d+ ms at burnCpu \(file:\S+\)\|d:\d+\|t:warning\|#.*pid:\d+/);
});

test('short blocks are not stalls; EKG_WATCHDOG=0 turns the watchdog off', { timeout: 20_000 }, async () => {
  const short = await runApp(400);
  assert.doesNotMatch(short.err, /EKG_STALL/);
  assert.match(short.out, /STATS \{"count":0,"totalMs":0,"last":\[\]\}/);
  const off = await runApp(1500, [], { EKG_WATCHDOG: '0' });
  assert.doesNotMatch(off.err, /EKG_STALL/);
  assert.match(off.out, /STATS undefined/);
});

test('with the inspector already open (--inspect), a stall is still reported and nothing crashes', { timeout: 20_000 }, async () => {
  const r = await runApp(1500, ['--inspect=127.0.0.1:0']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /EKG_STALL the event loop has been blocked for \d+ ms/);
  assert.match(r.out, /"count":1/);
});

test('the watchdog keeps no process alive', { timeout: 10_000 }, async () => {
  const t0 = Date.now();
  const code = await new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', REGISTER, '-e', 'setTimeout(() => {}, 100)'], { stdio: 'ignore' });
    p.on('close', resolve);
  });
  assert.equal(code, 0);
  assert.ok(Date.now() - t0 < 3000);
});

test('the side server answers from the watchdog thread during a stall: /ready 503 at once, /live after liveFailAfter, /stats from the last window', {
  timeout: 30_000,
}, async () => {
  const port = 20000 + Math.floor(Math.random() * 30000);
  const file = join(dir, 'side.mjs');
  writeFileSync(
    file,
    `
function burnCpu(ms) {
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) x += Math.sqrt(x + 1);
  return x;
}
setTimeout(() => { process.stdout.write('BLOCK ' + Date.now() + '\\n'); burnCpu(3500); process.stdout.write('FREE\\n'); }, 1500);
setTimeout(() => process.exit(0), 8000);
`,
  );
  const p = spawn(process.execPath, ['--import', REGISTER, file], {
    env: { ...process.env, EKG_PORT: String(port), EKG_PREFIX: '/ops', EKG_INTERVAL: '500ms', EKG_LIVE_FAIL_AFTER: '2s' },
  });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  const exited = new Promise((r) => p.on('close', r));
  const get = async (path: string) => {
    const r = await fetch(`http://127.0.0.1:${port}/ops${path}`, {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(3000),
    });
    return { status: r.status, body: await r.text(), stalled: r.headers.get('x-ekg-stalled-ms') };
  };
  try {
    for (let i = 0; i < 100 && (await get('/ready').catch(() => ({ status: 0 }))).status !== 200; i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal((await get('/ready')).status, 200, 'ready before the block');
    while (!out.includes('BLOCK')) await new Promise((r) => setTimeout(r, 20));
    const start = Number(/BLOCK (\d+)/.exec(out)?.[1]);
    let first503 = 0;
    while (!first503 && Date.now() - start < 3000) {
      const r = await get('/ready');
      if (r.status === 503) {
        first503 = Date.now();
        const body = JSON.parse(r.body) as { status: string; state: string; stalledFor: number; at?: string };
        assert.equal(body.status, 'NG');
        assert.equal(body.state, 'stalled');
        assert.ok(body.stalledFor >= 1000);
      } else await new Promise((res) => setTimeout(res, 50));
    }
    assert.ok(first503, '/ready answered 503 during the block');
    assert.ok(first503 - start < 1500, `within 1.5 s of the block (${first503 - start} ms)`);
    const liveEarly = await get('/live');
    if (Date.now() - start < 1900) assert.equal(liveEarly.status, 200, 'alive until liveFailAfter');
    const stats = await get('/stats');
    assert.equal(stats.status, 200);
    assert.ok(Number(stats.stalled) >= 1000, 'marked as read during a stall');
    assert.ok(JSON.parse(stats.body).runtime, 'the last window');
    while (Date.now() - start < 2600) await new Promise((res) => setTimeout(res, 50));
    const live = await get('/live');
    assert.equal(live.status, 503, 'past liveFailAfter');
    assert.match(JSON.parse(live.body).at ?? '', /^burnCpu /);
    while (!out.includes('FREE')) await new Promise((res) => setTimeout(res, 50));
    await new Promise((res) => setTimeout(res, 300));
    assert.equal((await get('/ready')).status, 200, 'ready again after the block');
    assert.equal((await get('/live')).status, 200);
  } finally {
    p.kill('SIGKILL');
    await exited;
  }
});

test('with source maps on, the stall record names the TypeScript source, not the compiled JavaScript', { timeout: 20_000 }, async () => {
  const ts = (await import('typescript')).default;
  const source = [
    'import { registered } from "INDEX";',
    'function burnCpu(ms: number): number {',
    '  const end: number = Date.now() + ms;',
    '  let x = 0;',
    '  while (Date.now() < end) x += Math.sqrt(x + 1);',
    '  return x;',
    '}',
    'setTimeout(() => burnCpu(1500), 300);',
    'setTimeout(async () => {',
    '  const e = registered() as any;',
    '  const s = await e.snapshot();',
    '  console.log("STATS " + JSON.stringify(e.statsObject(s).stats.ekg.stalls));',
    '  process.exit(0);',
    '}, 2500);',
  ]
    .join('\n')
    .replace('INDEX', INDEX);
  const out = ts.transpileModule(source, {
    fileName: 'burn.ts',
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: true },
  });
  writeFileSync(join(dir, 'burn.ts'), source);
  writeFileSync(join(dir, 'burn.mjs'), out.outputText.replace('burn.js.map', 'burn.mjs.map'));
  writeFileSync(join(dir, 'burn.mjs.map'), (out.sourceMapText as string).replace('"burn.js"', '"burn.mjs"'));
  const r = await new Promise<string>((resolve) => {
    const p = spawn(process.execPath, ['--enable-source-maps', '--import', REGISTER, join(dir, 'burn.mjs')], {
      env: { ...process.env, EKG_INTERVAL: '500ms' },
    });
    let o = '';
    p.stdout.on('data', (d) => (o += d));
    p.on('close', () => resolve(o));
  });
  const stats = JSON.parse((/STATS (.*)/.exec(r) as RegExpExecArray)[1] as string) as { last: Array<{ at: string }> };
  // the while loop is line 5 of burn.ts
  assert.match(stats.last[0]?.at ?? '', /^burnCpu \(\S*burn\.ts:5:\d+\)$/);
});
