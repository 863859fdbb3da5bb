import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const agentBin = fileURLToPath(new URL('../bin/ekg-agent.js', import.meta.url));
const agentPkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
const ekgPkgPath = createRequire(import.meta.url).resolve('ekg/package.json');
const ekgPkg = JSON.parse(readFileSync(ekgPkgPath, 'utf8')) as { name: string; version: string };
const ekgBin = fileURLToPath(new URL('./bin/ekg.js', `file://${ekgPkgPath}`));

test('ekg-agent --version and ekg --version print the package name and version', () => {
  assert.equal(execFileSync(process.execPath, [agentBin, '--version'], { encoding: 'utf8' }), `${agentPkg.name} ${agentPkg.version}\n`);
  assert.equal(execFileSync(process.execPath, [ekgBin, '--version'], { encoding: 'utf8' }), `${ekgPkg.name} ${ekgPkg.version}\n`);
  assert.match(execFileSync(process.execPath, [agentBin, '--help'], { encoding: 'utf8' }), /--version/);
});
