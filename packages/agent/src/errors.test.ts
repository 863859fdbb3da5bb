import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { codes, report } from './errors.js';

const src = fileURLToPath(new URL('../src/', import.meta.url));
const agentBin = fileURLToPath(new URL('../bin/ekg-agent.js', import.meta.url));

/** The agent's sources (not its tests), as path → text; empty where the sources are not shipped. */
function sources(dir = src, out = new Map<string, string>()): Map<string, string> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) out.set(p, readFileSync(p, 'utf8'));
  }
  return out;
}

test('every agent error code is documented in docs/errors.md, and every documented code exists', () => {
  const page = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const documented = [...page.matchAll(/^### (EKG_AGENT_ERR_[A-Z_]+)$/gm)].map((m) => m[1]);
  assert.deepEqual([...documented].sort(), Object.keys(codes).sort());
});

test('every code used in the source is declared, and every declared code is used', () => {
  const files = sources();
  // ConfigError's default code, for every bad value
  const used = new Set<string>(['EKG_AGENT_ERR_BAD_OPTION']);
  for (const [f, text] of files) {
    if (f.endsWith('errors.ts')) continue;
    for (const m of text.matchAll(/EKG_AGENT_ERR_[A-Z_]+/g)) {
      assert.ok(m[0] in codes, `${f} uses undeclared ${m[0]}`);
      used.add(m[0]);
    }
  }
  if (files.size > 0) assert.deepEqual([...used].sort(), Object.keys(codes).sort(), 'a declared code no source uses');
});

test('a bad setting exits 2 with its code at the end of the line; an unknown flag has its own', () => {
  const bad = spawnSync(process.execPath, [agentBin, '--flush-interval', 'soon'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^ekg-agent: --flush-interval: "soon" is not a duration.* \(EKG_AGENT_ERR_BAD_OPTION\)\n$/);
  const unknown = spawnSync(process.execPath, [agentBin, '--flush', '1s'], { encoding: 'utf8' });
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /^ekg-agent: unknown option --flush; see ekg-agent --help \(EKG_AGENT_ERR_UNKNOWN_OPTION\)\n$/);
});

test('nothing in the agent writes to stderr but errors.ts: every error line goes through report() with its code', () => {
  const direct = /\bprocess\.stderr\b(?!\.on\()|\bconsole\.[a-z]+\s*\(/g;
  const found: string[] = [];
  for (const [f, text] of sources()) {
    if (f.endsWith(`${join('src', 'errors.ts')}`)) continue;
    text.split('\n').forEach((line, i) => {
      if (direct.test(line)) found.push(`${f.slice(src.length)}:${i + 1}: ${line.trim()}`);
      direct.lastIndex = 0;
    });
  }
  assert.deepEqual(found, [], 'write the line with report(code, message) (or notice() for a line that is no error) from errors.ts');
});

test('report() prints `ekg-agent: <message> (<CODE>)`, one line', () => {
  const write = process.stderr.write;
  const lines: string[] = [];
  process.stderr.write = ((l: string) => lines.push(String(l)) > 0) as typeof process.stderr.write;
  try {
    report('EKG_AGENT_ERR_SCRAPE', 'scrape http://x/: failing (HTTP 500)');
    report('EKG_AGENT_ERR_RUN_COMMAND', 'no command', 'ekg-agent run');
  } finally {
    process.stderr.write = write;
  }
  assert.deepEqual(lines, [
    'ekg-agent: scrape http://x/: failing (HTTP 500) (EKG_AGENT_ERR_SCRAPE)\n',
    'ekg-agent run: no command (EKG_AGENT_ERR_RUN_COMMAND)\n',
  ]);
});

test('an address in use exits 1 with EKG_AGENT_ERR_LISTEN; a data directory that cannot be made, with EKG_AGENT_ERR_DATA_DIR', async () => {
  const held = createServer();
  await new Promise<void>((r) => held.listen(0, '127.0.0.1', () => r()));
  const port = (held.address() as import('node:net').AddressInfo).port;
  try {
    const r = spawnSync(
      process.execPath,
      [agentBin, '--statsd', 'off', '--store', 'off', '--console', 'off', '--http', `127.0.0.1:${port}`],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^ekg-agent: cannot start: listen EADDRINUSE.* \(EKG_AGENT_ERR_LISTEN\)\n$/);
  } finally {
    held.close();
  }
  const dir = mkdtempSync(join(tmpdir(), 'ekg-errors-'));
  try {
    // a file where the data directory should be
    writeFileSync(join(dir, 'data'), '');
    const r = spawnSync(process.execPath, [agentBin, '--statsd', 'off', '--http', 'off', '--console', 'off', '--data', join(dir, 'data')], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^ekg-agent: cannot start: cannot create the data directory .* \(EKG_AGENT_ERR_DATA_DIR\)\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ekg-agent run without a command exits 2 with EKG_AGENT_ERR_RUN_COMMAND', () => {
  const r = spawnSync(process.execPath, [agentBin, 'run', '--console', 'off'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^ekg-agent run: no command: .* \(EKG_AGENT_ERR_RUN_COMMAND\)\n$/);
});

test('an error nothing expected stops the agent with one EKG_AGENT_ERR_CRASH line and exit 1', () => {
  // a throw in the agent's process once it has started (its start line written): what a bug in the agent would do
  const boom = `data:text/javascript,${encodeURIComponent(
    "const w = process.stdout.write.bind(process.stdout); process.stdout.write = (s, ...a) => { if (String(s).startsWith('ekg-agent: ')) setImmediate(() => { throw new Error('boom'); }); return w(s, ...a); };",
  )}`;
  const r = spawnSync(
    process.execPath,
    ['--import', boom, agentBin, '--statsd', 'off', '--http', 'off', '--store', 'off', '--console', 'off'],
    {
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^ekg-agent: stopped by an unexpected error: Error: boom \| at .* \(EKG_AGENT_ERR_CRASH\)\n$/);
});
