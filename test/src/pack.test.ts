import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

// What users install is the packed tarball, not this monorepo: pack each package as `npm publish` would, check what
// it carries, install the library into a project outside the repository, and use it the ways the README says.

const root = fileURLToPath(new URL('../../', import.meta.url));
const lib = join(root, 'packages/ekg');
const agent = join(root, 'packages/agent');
const nameOf = (dir: string) => (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string; version: string }).name;
const npm = (args: string[], cwd: string) =>
  execFileSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' }, timeout: 120_000 });

interface PackInfo {
  filename: string;
  files: Array<{ path: string }>;
}
const pack = (dir: string, dest: string): PackInfo =>
  (JSON.parse(npm(['pack', '--json', '--pack-destination', dest], dir)) as PackInfo[])[0] as PackInfo;

test('each package packs with its build, bin, licence and README, and without tests', () => {
  const dest = mkdtempSync(join(tmpdir(), 'ekg-pack-'));
  try {
    for (const [dir, must] of [
      [lib, ['bin/ekg.js', 'dist/index.js', 'dist/index.d.ts', 'dist/register.js', 'LICENSE', 'README.md', 'package.json']],
      [agent, ['bin/ekg-agent.js', 'dist/cli.js', 'dist/index.d.ts', 'ui/static/index.html', 'LICENSE', 'package.json']],
    ] as const) {
      const files = pack(dir, dest).files.map((f) => f.path);
      for (const f of must) assert.ok(files.includes(f), `${nameOf(dir)} lacks ${f}`);
      assert.deepEqual(
        files.filter((f) => /\.test\.|\/testing\//.test(f)),
        [],
        `${nameOf(dir)} ships tests`,
      );
    }
  } finally {
    rmSync(dest, { recursive: true, force: true });
  }
});

test('the packed library installs into an outside project: import, --import …/register, and its bin', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ekg-outside-'));
  try {
    const name = nameOf(lib);
    const tgz = join(dir, pack(lib, dir).filename);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'outside-app', private: true, type: 'module' }));
    // the library has no dependencies: nothing is fetched
    npm(['install', '--offline', '--no-audit', '--no-fund', tgz], dir);
    writeFileSync(
      join(dir, 'app.mjs'),
      `import { createEkg } from '${name}';\nconst ekg = createEkg({ signals: false, watchdog: false });\nconst s = await ekg.flush();\nconsole.log(JSON.stringify({ seq: s.info?.seq ?? s.window?.seq ?? 1, ok: typeof ekg.node === 'function' }));\nawait ekg.close();\n`,
    );
    assert.match(execFileSync(process.execPath, ['app.mjs'], { cwd: dir, encoding: 'utf8' }), /"ok":true/);
    writeFileSync(join(dir, 'job.mjs'), "console.log('job done');\n");
    // a bad EKG_INTERVAL is the register's one stderr line: it proves the installed register ran, and the job still ran
    const r = spawnSync(process.execPath, ['--import', `${name}/register`, 'job.mjs'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, EKG_INTERVAL: 'bogus', NODE_OPTIONS: '' },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /job done/);
    assert.match(r.stderr, /^ekg: EKG_ERR_BAD_ENV: EKG_INTERVAL="bogus"/m);
    assert.match(
      execFileSync(join(dir, 'node_modules/.bin/ekg'), ['--version'], { cwd: dir, encoding: 'utf8' }),
      new RegExp(`^${name} \\d`),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const SUBPATHS = ['node', 'express', 'fastify', 'koa', 'hono', 'fetch'] as const;

test('each framework subpath (ekg-vitals/express, …) imports from the packed library, mounts, and type-checks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ekg-subpaths-'));
  try {
    const name = nameOf(lib);
    const exportsMap = (JSON.parse(readFileSync(join(lib, 'package.json'), 'utf8')) as { exports: Record<string, unknown> }).exports;
    for (const s of SUBPATHS) assert.ok(exportsMap[`./${s}`], `package.json exports ./${s}`);
    const tgz = join(dir, pack(lib, dir).filename);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'outside-app', private: true, type: 'module' }));
    npm(['install', '--offline', '--no-audit', '--no-fund', tgz], dir);
    // every subpath loads and mounts; node and fetch (no framework to install) also answer a real request
    writeFileSync(
      join(dir, 'app.mjs'),
      [
        `import { createServer } from 'node:http';`,
        `import { createEkg } from '${name}';`,
        ...SUBPATHS.map((s) => `import * as ${s} from '${name}/${s}';`),
        `const ekg = createEkg({ signals: false, watchdog: false, interval: '1h' });`,
        `await ekg.ready();`,
        `const kinds = {};`,
        `for (const [k, m] of Object.entries({ ${SUBPATHS.join(', ')} })) kinds[k] = typeof m.mount(ekg);`,
        `const handler = fetch.mount(ekg);`,
        `const viaFetch = (await handler(new Request('http://app/ops/heartbeat'))).status;`,
        `const server = createServer(node.mount(ekg)).listen(0, '127.0.0.1');`,
        `await new Promise((r) => server.once('listening', r));`,
        `const res = await globalThis.fetch('http://127.0.0.1:' + server.address().port + '/ops/ready');`,
        `const viaNode = res.status + ' ' + (await res.text());`,
        `server.close();`,
        `await ekg.close();`,
        `console.log(JSON.stringify({ kinds, viaFetch, viaNode }));`,
      ].join('\n'),
    );
    const out = JSON.parse(execFileSync(process.execPath, ['app.mjs'], { cwd: dir, encoding: 'utf8', timeout: 60_000 }));
    assert.deepEqual(out, {
      kinds: Object.fromEntries(SUBPATHS.map((s) => [s, 'function'])),
      viaFetch: 200,
      viaNode: '200 ready:ok',
    });
    // the subpaths are typed: a strict TypeScript project resolving through the exports map accepts each mount
    writeFileSync(
      join(dir, 'check.mts'),
      [
        `import { createEkg } from '${name}';`,
        ...SUBPATHS.map((s) => `import { mount as ${s} } from '${name}/${s}';`),
        `const ekg = createEkg();`,
        `const n: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, next?: () => void) => void = node(ekg);`,
        `const f: (req: Request) => Promise<Response> = fetch(ekg, { prefix: '/ops' });`,
        `export const all = [n, f, express(ekg), fastify(ekg), koa(ekg), hono(ekg)];`,
        `// @ts-expect-error a mount takes an ekg instance`,
        `express('not an instance');`,
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          strict: true,
          noEmit: true,
          types: ['node'],
          typeRoots: [join(root, 'node_modules/@types')],
        },
        files: ['check.mts'],
      }),
    );
    const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', dir], { cwd: dir, encoding: 'utf8' });
    assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
