import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
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

test('a 3 s block in burnCpu: one stall, its stack names burnCpu with file and line, in stderr, /stats and /metrics', {
  timeout: 20_000,
}, async () => {
  const r = await runApp(3000);
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
