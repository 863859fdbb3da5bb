import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

// The launcher as a user starts it (npm's bin link runs the file itself): the memory settings it adds are read
// back from the kernel (/proc/<pid>/cmdline and environ: what Node and glibc started with), so Linux only.
const BIN = fileURLToPath(new URL('../bin/ekg-agent.js', import.meta.url));
const linux = { skip: process.platform !== 'linux' && 'reads /proc', timeout: 60_000 };
const dir = mkdtempSync(join(tmpdir(), 'ekg-bin-'));
const started: ChildProcess[] = [];
after(() => {
  for (const p of started) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** The bin with free ports and no store; resolves once the agent prints its start line. */
async function agent(env: Record<string, string | undefined> = {}): Promise<{ proc: ChildProcess; out: () => string }> {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env };
  // the settings under test come from `env` alone, not from whatever the test runner was started with
  for (const k of ['NODE_OPTIONS', 'GLIBC_TUNABLES', 'MALLOC_MMAP_THRESHOLD_', 'EKG_AGENT_MALLOC']) if (!(k in env)) delete e[k];
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete e[k];
  const proc = spawn(BIN, ['--statsd', '127.0.0.1:0', '--http', '127.0.0.1:0', '--store', 'off', '--console', 'off'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: e,
  });
  started.push(proc);
  let out = '';
  proc.stderr?.on('data', (d) => (out += d));
  await new Promise<void>((resolve, reject) => {
    proc.stdout?.on('data', (d) => {
      out += d;
      if (out.includes('ekg-agent: statsd')) resolve();
    });
    proc.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
  return { proc, out: () => out };
}

const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
const environ = (pid: number) =>
  Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
const exit = (p: ChildProcess) =>
  new Promise<[number | null, NodeJS.Signals | null]>((r) => {
    if (p.exitCode !== null || p.signalCode !== null) r([p.exitCode, p.signalCode]);
    else p.once('exit', (code, signal) => r([code, signal]));
  });

test('the bin starts Node itself (one process) with a 2 MB semi-space and a fixed mmap threshold', linux, async () => {
  const { proc } = await agent();
  const pid = proc.pid as number;
  const argv = cmdline(pid);
  assert.equal(basename(argv[0] as string), 'node', `the shell was replaced by Node: ${argv.join(' ')}`);
  assert.deepEqual(argv.slice(1, 3), ['--max-semi-space-size=2', BIN]);
  assert.equal(environ(pid).MALLOC_MMAP_THRESHOLD_, '131072');
  proc.kill('SIGTERM');
  assert.deepEqual(await exit(proc), [0, null]);
});

test("the user's NODE_OPTIONS, MALLOC_MMAP_THRESHOLD_ and GLIBC_TUNABLES win over the bin's", linux, async () => {
  const { proc } = await agent({ NODE_OPTIONS: '--max-semi-space-size=8', MALLOC_MMAP_THRESHOLD_: '262144' });
  const pid = proc.pid as number;
  assert.ok(!cmdline(pid).some((a) => a.startsWith('--max-semi-space-size')), cmdline(pid).join(' '));
  assert.equal(environ(pid).NODE_OPTIONS, '--max-semi-space-size=8');
  assert.equal(environ(pid).MALLOC_MMAP_THRESHOLD_, '262144');
  proc.kill('SIGKILL');
  const { proc: t } = await agent({ GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=65536' });
  const env = environ(t.pid as number);
  assert.equal(env.MALLOC_MMAP_THRESHOLD_, undefined, 'the tunable the user set is not set again by its other name');
  assert.equal(env.GLIBC_TUNABLES, 'glibc.malloc.mmap_threshold=65536');
  assert.ok(cmdline(t.pid as number).includes('--max-semi-space-size=2'));
  t.kill('SIGKILL');
});

test('signals reach the agent and its exit code is the exit code of the bin', linux, async () => {
  const { proc, out } = await agent();
  proc.kill('SIGINT');
  assert.deepEqual(await exit(proc), [0, null]);
  assert.match(out(), /SIGINT: flushing the open window/);
  // a bad option: the agent's exit 2, through the shell
  const bad = spawn(BIN, ['--flush-interval', 'soon'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  bad.stderr?.on('data', (d) => (err += d));
  assert.deepEqual(await exit(bad), [2, null]);
  assert.match(err, /EKG_AGENT_ERR_/);
  // killed outright there is no parent left behind: the pid the caller holds is the agent's
  const { proc: p } = await agent();
  p.kill('SIGKILL');
  assert.deepEqual(await exit(p), [null, 'SIGKILL']);
});

test('`ekg-agent run`: the agent gets the settings, the app does not inherit them', linux, async () => {
  const app = `console.log('APP ' + JSON.stringify({ o: process.env.NODE_OPTIONS, m: process.env.MALLOC_MMAP_THRESHOLD_ ?? null, e: process.env.EKG_AGENT_MALLOC ?? null, argv: process.execArgv })); setTimeout(() => {}, 60000)`;
  const e: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['NODE_OPTIONS', 'GLIBC_TUNABLES', 'MALLOC_MMAP_THRESHOLD_', 'EKG_AGENT_MALLOC']) delete e[k];
  const proc = spawn(
    BIN,
    [
      'run',
      '--statsd',
      '127.0.0.1:0',
      '--http',
      '127.0.0.1:0',
      '--console',
      'off',
      '--data',
      mkdtempSync(join(dir, 'd')),
      '--',
      'node',
      '-e',
      app,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: e },
  );
  started.push(proc);
  let out = '';
  const seen = new Promise<void>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`ekg-agent run exited ${code}: ${out}`)));
    const on = (d: Buffer) => {
      out += d;
      if (/APP \{.*\}\n/.test(out)) resolve();
    };
    proc.stdout?.on('data', on);
    proc.stderr?.on('data', on);
  });
  await seen;
  const agentPid = Number(/agent started \(pid (\d+)\)/.exec(out)?.[1]);
  assert.ok(agentPid > 0, out);
  assert.ok(cmdline(agentPid).includes('--max-semi-space-size=2'), cmdline(agentPid).join(' '));
  assert.equal(environ(agentPid).MALLOC_MMAP_THRESHOLD_, '131072');
  const seenByApp = JSON.parse(/APP (\{.*\})\n/.exec(out)?.[1] as string) as Record<string, unknown>;
  assert.deepEqual({ ...seenByApp, o: undefined, argv: undefined }, { o: undefined, m: null, e: null, argv: undefined });
  assert.ok(!(seenByApp.argv as string[]).some((a) => a.includes('semi-space')), String(seenByApp.argv));
  assert.doesNotMatch(String(seenByApp.o), /semi-space/);
  // the app dies of the SIGTERM run forwards it (128 + 15), the agent drains and is gone
  proc.kill('SIGTERM');
  assert.deepEqual(await exit(proc), [143, null]);
  assert.throws(() => process.kill(agentPid, 0), { code: 'ESRCH' });
});
