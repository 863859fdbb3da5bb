import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const agentBin = fileURLToPath(new URL('../bin/ekg-agent.js', import.meta.url));
const agentPkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
const ekgPkgPath = createRequire(import.meta.url).resolve('ekg-vitals/package.json');
const ekgPkg = JSON.parse(readFileSync(ekgPkgPath, 'utf8')) as { name: string; version: string };
const ekgBin = fileURLToPath(new URL('./bin/ekg.js', `file://${ekgPkgPath}`));

test('ekg-agent --version and ekg --version print the package name and version', () => {
  assert.equal(execFileSync(process.execPath, [agentBin, '--version'], { encoding: 'utf8' }), `${agentPkg.name} ${agentPkg.version}\n`);
  assert.equal(execFileSync(process.execPath, [ekgBin, '--version'], { encoding: 'utf8' }), `${ekgPkg.name} ${ekgPkg.version}\n`);
  assert.match(execFileSync(process.execPath, [agentBin, '--help'], { encoding: 'utf8' }), /--version/);
});

test('a YAML indentation error names its own line; a missing exporter secret exits 2 naming the variable', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ekg-agent-cli-'));
  try {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'statsd: 127.0.0.1:8125\nhttp: 127.0.0.1:8787\nflush_interval: 10s\nexporters:\n  - type: mackerel\n   api_key_env: X\n',
    );
    const r1 = spawnSync(process.execPath, [agentBin, '--config', bad], { encoding: 'utf8' });
    assert.equal(r1.status, 2);
    assert.match(r1.stderr, new RegExp(`^ekg-agent: config ${bad.replace(/[.\\/]/g, '\\$&')}:6: not valid YAML`));
    const noKey = join(dir, 'nokey.yaml');
    writeFileSync(
      noKey,
      `statsd: 'off'\nhttp: 'off'\nstore: 'off'\ndata: ${JSON.stringify(dir)}\nexporters:\n  - type: mackerel\n    service: web\n`,
    );
    const env = { ...process.env };
    delete env.MACKEREL_APIKEY;
    const r2 = spawnSync(process.execPath, [agentBin, '--config', noKey], { encoding: 'utf8', env, timeout: 30_000 });
    assert.equal(r2.status, 2, r2.stderr);
    assert.match(r2.stderr, /MACKEREL_APIKEY is not set/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
