import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from 'ekg-agent';
import { parseAllDocuments } from 'yaml';

/**
 * Docs that execute: every fenced block in README.md and docs/*.md is run here, in the form a user types it,
 * or is marked in its fence's info string as not run. See docs/CONTRIBUTING.md for the rules; in short:
 *
 * - ```sh / ```console: each command runs in bash against the real bins (`ekg`, `ekg-agent`; `npx <bin>` runs the
 *   same bin, as does `npx -p ekg-vitals ekg`), in a fresh directory holding a small app (`app.js`, `worker.js`, `server.js`: a node:http server on
 *   `$PORT`). A command that keeps running (an agent, an app) is started, waited for (its start line) and stopped.
 *   The ports ekg documents (3000, 5000, 8125, 8787, 9100, 9125) are replaced by free ones, the same within a block;
 *   paths under /run/ekg, /var/lib/ekg-agent and /etc/ekg by paths in that directory. A block that starts no
 *   agent or app talks to one the test runs: an agent on "8787", an app with ekg at /ops on "3000".
 *   What a command prints is checked where the doc shows it: lines after `$ cmd` in a transcript, or a `# …` line
 *   right under a command (`# 202 {"accepted":2}` under a curl: status, then body). Numbers match any number.
 * - ```yaml: loaded by the agent's own config loader, as `ekg-agent --config FILE` does.
 * - ```json: parsed. ```js: run with node (a `// SomeError [CODE]: …` line is the error it must throw; a block
 *   that listens is probed and stopped; a `// ekg: CODE: …` line is one it must print on stderr). Names it uses but does not define (db, pool, app, options, …) come
 *   from the prelude below.
 * - ```procfile: the command after `name:` runs as a sh line.
 * - the info-string word `illustrative` (```sh illustrative) means not run: placeholders, outside systems
 *   (kubectl, Mackerel) or sample output; `fragment` (yaml, json) means a piece of a larger file: parsed only.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const pkg = (p: string) => JSON.parse(readFileSync(join(ROOT, p, 'package.json'), 'utf8')) as { name: string; bin: Record<string, string> };
const LIB = pkg('packages/ekg');
const AGENT = pkg('packages/agent');
const BINS: Record<string, string> = {};
for (const [p, j] of [['packages/ekg', LIB] as const, ['packages/agent', AGENT] as const])
  for (const [name, file] of Object.entries(j.bin)) BINS[name] = join(ROOT, p, file);
const PORTS = [3000, 5000, 8125, 8787, 9100, 9125];
const PATHS: Array<[RegExp, string]> = [
  [/\/run\/ekg\//g, 'run/ekg/'],
  [/\/var\/lib\/ekg-agent/g, 'var/lib/ekg-agent'],
  [/\/etc\/ekg\//g, 'etc/ekg/'],
];

export interface Block {
  file: string;
  line: number;
  lang: string;
  marks: string[];
  body: string;
  /** the nearest YAML block above it in the same file: `agent.yaml` in a shell block */
  yaml?: string;
}

/** Every fenced block of a markdown text, with its info string split into a language and marks. */
export function blocks(file: string, text: string): Block[] {
  const out: Block[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*(.*)$/.exec(lines[i] as string);
    if (!open) continue;
    const [, indent, fence, info] = open as unknown as [string, string, string, string];
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !(lines[j] as string).trim().startsWith(fence); j++)
      body.push((lines[j] as string).startsWith(indent) ? (lines[j] as string).slice(indent.length) : (lines[j] as string));
    const [lang = '', ...marks] = info.trim().split(/\s+/).filter(Boolean);
    const yaml = out.findLast((b) => b.lang === 'yaml' && !b.marks.includes('fragment'))?.body;
    out.push({ file, line: i + 1, lang, marks, body: body.join('\n'), ...(yaml ? { yaml } : {}) });
    i = j;
  }
  return out;
}

function docs(): Block[] {
  const files = [
    'README.md',
    ...readdirSync(join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  return files.flatMap((f) => blocks(f, readFileSync(join(ROOT, f), 'utf8')));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function until<T>(f: () => T | Promise<T>, ms: number, what: () => string): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const v = await f();
      if (v) return v as NonNullable<T>;
    } catch {}
    if (Date.now() > end) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const APP = `import { createServer } from 'node:http';
const server = createServer((req, res) => res.end('ok\\n'));
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', async () => {
  // with EKG_PORT set, ready once ekg's side server answers (or it was refused: a bad value is one stderr line)
  const side = Number(process.env.EKG_PORT);
  if (side > 0) for (let i = 0; i < 400; i++) { try { await fetch('http://127.0.0.1:' + side + '/'); break; } catch { await new Promise((r) => setTimeout(r, 50)); } }
  console.log('app: listening on ' + server.address().port);
});
`;
const OPS_APP = `import { createServer } from 'node:http';
import { createEkg } from '${LIB.name}';
const ekg = createEkg();
const server = createServer(ekg.node({ prefix: '/ops' })).listen(0, '127.0.0.1', () => console.log('app: listening on ' + server.address().port));
`;
const PRELUDE = `import { createEkg, registered } from '${LIB.name}';
globalThis.createEkg = createEkg;
globalThis.registered = registered;
const vital = (name) => ({ name, check: async () => ({ ok: true }), stats: () => ({ size: 10, busy: 3 }) });
globalThis.db = { ping: async () => true, poolStats: () => ({ size: 10, busy: 3 }), close: async () => {} };
globalThis.pool = { totalCount: 10, idleCount: 7, waitingCount: 0, query: async () => ({ rows: [] }) };
globalThis.dbVital = vital('db');
globalThis.queueVital = vital('queue');
globalThis.options = {};
let ekg;
Object.defineProperty(globalThis, 'ekg', { configurable: true, get: () => (ekg ??= createEkg()) });
`;

/** A fresh directory for one block: the apps, the paths docs name, and node_modules so `ekg-vitals/register` resolves. */
function workdir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ekg-docs-'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  for (const f of ['app.js', 'worker.js', 'server.js']) writeFileSync(join(dir, f), APP);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', scripts: { start: 'node app.js' } }));
  writeFileSync(join(dir, 'prelude.mjs'), PRELUDE);
  for (const d of ['run/ekg', 'var/lib/ekg-agent', 'etc/ekg', 'bin']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'etc/ekg/mackerel-api-key'), 'test-key\n');
  for (const [name, file] of Object.entries(BINS)) {
    writeFileSync(join(dir, 'bin', name), `#!/bin/sh\nexec "${process.execPath}" "${file}" "$@"\n`);
    chmodSync(join(dir, 'bin', name), 0o755);
  }
  return dir;
}

interface Proc {
  cmd: string;
  proc: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
  /** set once it has closed */
  done: boolean;
}

function start(cmd: string, dir: string, env: Record<string, string | undefined> = {}): Proc {
  const proc = spawn('bash', ['-c', cmd], {
    cwd: dir,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: Object.fromEntries(
      Object.entries({ ...process.env, ...env, PATH: `${join(dir, 'bin')}:${process.env.PATH}`, NODE_OPTIONS: '' }).filter(
        ([, v]) => v !== undefined,
      ),
    ),
  });
  let out = '';
  proc.stdout?.on('data', (d) => {
    out += d;
  });
  proc.stderr?.on('data', (d) => {
    out += d;
  });
  // 'close', not 'exit': all of its output is in by then
  const p: Proc = { cmd, proc, out: () => out, exited: Promise.resolve(null), done: false };
  p.exited = new Promise<number | null>((r) =>
    proc.once('close', (code) => {
      p.done = true;
      r(code);
    }),
  );
  return p;
}

async function stop(p: Proc): Promise<void> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return;
  try {
    process.kill(-(p.proc.pid as number), 'SIGTERM');
  } catch {}
  await p.exited;
}

/** A process that keeps running is up when an agent or an app has said so. */
const UP = /^([\w-]+: .*\bwindow \d|app: listening on \d+)/m;

/** The ports and paths a block names, mapped to free ones and to its own directory. */
class Subst {
  ports = new Map<number, number>();
  constructor(
    readonly dir: string,
    readonly shared: Map<number, number>,
  ) {}
  async prepare(text: string, own: boolean): Promise<void> {
    for (const p of PORTS)
      if (new RegExp(`(^|[^\\d.])${p}(?!\\d)`).test(text) && !this.ports.has(p))
        this.ports.set(p, (!own && this.shared.get(p)) || (await freePort()));
  }
  apply(text: string): string {
    let t = text;
    for (const [from, to] of this.ports) t = t.replace(new RegExp(`(^|[^\\d.])${from}(?!\\d)`, 'g'), `$1${to}`);
    for (const [re, to] of PATHS) t = t.replace(re, join(this.dir, to).replace(/\/?$/, to.endsWith('/') ? '/' : ''));
    // `npx <bin>` and `npx -p <our package> <bin>` of our own bins are that bin (npx outside the repo would ask the registry)
    const pkgs = `(?:(?:-p|--package)[ =](?:${LIB.name}|${AGENT.name}) )?`;
    return t.replace(new RegExp(`(^|[\\s;&|(])npx ${pkgs}(?=(${Object.keys(BINS).join('|')})(\\s|$))`, 'g'), '$1');
  }
}

/** Expected output: numbers match any number, `…` anything. */
function pattern(line: string): RegExp {
  const esc = line.trim().replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(esc.replace(/\d+(\\\.\d+)?/g, '\\d+(\\.\\d+)?').replace(/…/g, '.*'));
}

interface Cmd {
  text: string;
  expect: string[];
}

/** A shell block's commands, each with the output the doc shows for it. */
export function commands(body: string): { transcript: boolean; cmds: Cmd[] } {
  const lines = body.split('\n');
  const transcript = lines.some((l) => l.startsWith('$ '));
  const cmds: Cmd[] = [];
  for (let i = 0; i < lines.length; i++) {
    let l = lines[i] as string;
    if (transcript) {
      if (!l.startsWith('$ ')) {
        if (l.trim() && cmds.length) cmds[cmds.length - 1]?.expect.push(l);
        continue;
      }
      l = l.slice(2);
    } else if (!l.trim() || l.startsWith('#')) {
      continue;
    }
    let text = l;
    while (text.endsWith('\\') && i + 1 < lines.length) text = `${text.slice(0, -1)} ${(lines[++i] as string).trim()}`;
    const cmd: Cmd = { text, expect: [] };
    if (!transcript) while (lines[i + 1]?.startsWith('# ')) cmd.expect.push((lines[++i] as string).slice(2));
    cmds.push(cmd);
  }
  return { transcript, cmds };
}

/** A mackerel-agent plugin's `command = [...]` lines whose program is one of ours, as sh lines (quoted). */
function tomlCommands(body: string): string {
  const argvs = [...body.matchAll(/^command\s*=\s*(\[.*\])\s*$/gm)].map((m) => JSON.parse(m[1] as string) as string[]);
  const quote = (a: string) => (/^[\w./:=@-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return argvs
    .filter((a) => BINS[a[0] as string])
    .map((a) => a.map(quote).join(' '))
    .join('\n');
}

/** Does this command start something that keeps running (an agent, an app), rather than ask something? */
const STARTS = new RegExp(`(^|\\s)(${Object.keys(AGENT.bin).join('|')}|node|npm start)(\\s|$)`);

async function runShell(b: Block, shared: Map<number, number>): Promise<void> {
  const dir = workdir();
  const running: Proc[] = [];
  try {
    const body = b.lang === 'procfile' ? b.body.replace(/^[\w-]+:\s*/gm, '') : b.lang === 'toml' ? tomlCommands(b.body) : b.body;
    const { transcript, cmds } = commands(body);
    const sub = new Subst(dir, shared);
    const own = cmds.some((c) => STARTS.test(c.text) && !/--help|--version/.test(c.text));
    // an agent started on its default ports gets free ones through its env (a flag or an inline VAR= wins)
    await sub.prepare(own ? `${b.body} 8125 8787` : b.body, own);
    const env = own ? { EKG_AGENT_STATSD: String(sub.ports.get(8125)), EKG_AGENT_HTTP: String(sub.ports.get(8787)) } : {};
    if (b.yaml) writeFileSync(join(dir, 'agent.yaml'), sub.apply(b.yaml));
    for (const c of cmds) {
      let text = sub.apply(c.text).trim();
      const background = /&$/.test(text);
      if (background) text = text.replace(/&$/, '').trim();
      const curlStatus = /^curl\s/.test(text) && /^\d{3}\b/.test(c.expect[0] ?? '');
      if (curlStatus) text += ` -s -w '\\n%{http_code}'`;
      // Heroku mode takes the StatsD port from PORT, and only when no address is given
      const heroku = /(^|\s)PORT=/.test(text) ? { EKG_AGENT_STATSD: undefined } : {};
      let p = start(text, dir, { ...env, ...heroku });
      const what = () => `${b.file}:${b.line} \`${text}\` (output: ${p.out() || 'none'})`;
      // in a transcript, a question to what an earlier line started is asked again until it answers as shown
      // (the agent has an instance only once the app's first window is in)
      if (transcript && running.length && c.expect.length && !STARTS.test(text))
        await until(
          async () => {
            if ((await p.exited) === 0 && c.expect.every((e) => pattern(sub.apply(e)).test(p.out()))) return true;
            p = start(text, dir, { ...env, ...heroku });
            return false;
          },
          30_000,
          what,
        );
      await until(() => p.done || UP.test(p.out()), 60_000, what);
      const code = p.done ? await p.exited : 'up';
      if (code === 'up') {
        running.push(p);
        for (const e of c.expect)
          await until(
            () => pattern(sub.apply(e)).test(p.out()),
            30_000,
            () => `${what()} to print ${e}`,
          );
        if (!transcript && !background) await stop(running.pop() as Proc);
        continue;
      }
      const out = p.out();
      if (curlStatus) {
        const [status = '', ...body] = (c.expect[0] as string).split(' ');
        const got = out.trimEnd().split('\n');
        assert.equal(got.at(-1), status, `${what()}: status`);
        // the body's last line (a text answer ends with a newline before curl's status line)
        const last = got.slice(0, -1).join('\n').trimEnd().split('\n').at(-1) ?? '';
        if (body.length) assert.match(last, pattern(sub.apply(body.join(' '))), `${what()}: body`);
        continue;
      }
      if (!c.expect.length) assert.equal(code, 0, `${what()} exits 0`);
      for (const e of c.expect) assert.match(out, pattern(sub.apply(e)), `${what()} prints ${e}`);
    }
  } finally {
    await Promise.all(running.map(stop));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runJs(b: Block): Promise<void> {
  const dir = workdir();
  try {
    const sub = new Subst(dir, new Map());
    await sub.prepare(b.body, true);
    const lines = b.body.split('\n');
    const throws = lines.map((l) => /^\/\/ (\w*Error \[\w+\]: .*)$/.exec(l)?.[1]).filter(Boolean) as string[];
    // `// ekg: CODE: message` is a line the block prints on stderr (docs/errors.md)
    const prints = lines.map((l) => /^\/\/ (ekg: \w+: .*)$/.exec(l)?.[1]).filter(Boolean) as string[];
    writeFileSync(join(dir, 'block.mjs'), sub.apply(b.body));
    const p = start(`node --import ./prelude.mjs block.mjs`, dir);
    const what = () => `${b.file}:${b.line} (output: ${p.out() || 'none'})`;
    const port = sub.ports.get(3000);
    if (/\.listen\(/.test(b.body) && port) {
      const path = /\/ops\//.test(b.body) ? '/ops/heartbeat' : '/';
      await until(
        async () => {
          if (p.done) return 'exited';
          const r = await fetch(`http://127.0.0.1:${port}${path}`);
          return (path === '/' || r.status === 200) && 'up';
        },
        60_000,
        what,
      ).then((state) => assert.equal(state, 'up', `${what()} keeps serving`));
      await stop(p);
      return;
    }
    await until(() => p.done, 60_000, what);
    const code = { c: await p.exited };
    if (throws.length) {
      assert.notEqual(code.c, 0, `${what()} throws`);
      // `Name [CODE]: message` as the docs write it; node prints `Name: message … { code: 'CODE' }`
      for (const t of throws) {
        const [, name, code, message] = /^(\w+) \[(\w+)\]: (.*)$/.exec(t) as unknown as [string, string, string, string];
        assert.match(p.out(), pattern(`${name}: ${message}`), `${what()} throws ${t}`);
        assert.ok(p.out().includes(`code: '${code}'`), `${what()} throws ${code}`);
      }
    } else assert.equal(code.c, 0, `${what()} runs`);
    for (const l of prints) assert.match(p.out(), pattern(l), `${what()} prints ${l}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A ```ts block declaring interfaces is type-checked: each must be the library's exported type of that name
 * (identical), so a field documented but gone, or added but not documented, fails.
 */
async function runTs(b: Block): Promise<void> {
  const dir = workdir();
  try {
    const dts = readFileSync(join(ROOT, 'packages/ekg/dist/index.d.ts'), 'utf8');
    const exported = new Set(
      [...dts.matchAll(/export (?:type )?\{([^}]*)\}/g)].flatMap((m) =>
        (m[1] as string).split(',').map(
          (n) =>
            n
              .trim()
              .replace(/^type /, '')
              .split(/\s+as\s+/)
              .pop() as string,
        ),
      ),
    );
    const declared = [...b.body.matchAll(/^(?:export )?interface (\w+)/gm)].map((m) => m[1] as string);
    const used = [...new Set(b.body.match(/\b[A-Z]\w*/g) ?? [])].filter((n) => exported.has(n) && !declared.includes(n));
    const lines = [
      `import type { ${[...used, ...declared.map((d) => `${d} as Lib${d}`)].join(', ')} } from '${LIB.name}';`,
      b.body,
      // identical, optional members too (mutual assignability would miss an undocumented optional field)
      'type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;',
      ...declared.map((d) => `export const same${d}: Same<${d}, Lib${d}> = true;`),
    ];
    writeFileSync(join(dir, 'block.ts'), lines.join('\n'));
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const args = '--noEmit --strict --skipLibCheck --module nodenext --moduleResolution nodenext --target es2022 --types node';
    const p = start(`node ${tsc} ${args} block.ts`, dir);
    assert.equal(await p.exited, 0, `${b.file}:${b.line}: the declared types are the library's: ${p.out()}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runYaml(b: Block): void {
  if (b.marks.includes('fragment')) {
    for (const d of parseAllDocuments(b.body)) assert.equal(d.errors.length, 0, `${b.file}:${b.line}: ${d.errors[0]?.message}`);
    return;
  }
  const dir = workdir();
  try {
    const file = join(dir, 'agent.yaml');
    writeFileSync(file, new Subst(dir, new Map()).apply(b.body));
    // as `ekg-agent --config agent.yaml` reads it; secrets a block names come from the environment
    const env = { MACKEREL_APIKEY: 'k', INFLUX_TOKEN: 't', HEROKU_METRICS_URL: 'https://metrics.example/ingest' };
    assert.doesNotThrow(() => loadConfig(['--config', file], env), `${b.file}:${b.line}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runJson(b: Block): void {
  const text = b.marks.includes('fragment') ? `{${b.body}}` : b.body;
  assert.doesNotThrow(() => JSON.parse(text), `${b.file}:${b.line}: JSON`);
}

const RUN: Record<string, (b: Block, shared: Map<number, number>) => void | Promise<void>> = {
  sh: runShell,
  bash: runShell,
  console: runShell,
  procfile: runShell,
  toml: runShell,
  js: runJs,
  ts: runTs,
  yaml: runYaml,
  json: runJson,
};

/** The docs' shell blocks ask with curl, as users do: without it the test is skipped here, and fails in CI. */
const NO_CURL = spawnSync('curl', ['--version']).status === 0 ? false : 'curl is not installed (apt-get install curl)';

test('docs: every block in README.md and docs/ runs as typed, or is marked illustrative', {
  timeout: 300_000,
  skip: process.env.CI === 'true' ? false : NO_CURL,
}, async (t) => {
  assert.equal(NO_CURL, false, "curl for the docs' shell blocks");
  const all = docs();
  const unmarked = all.filter((b) => !b.marks.includes('illustrative') && !RUN[b.lang]);
  assert.deepEqual(
    unmarked.map((b) => `${b.file}:${b.line} \`\`\`${b.lang}`),
    [],
    'blocks that are neither run (sh, console, procfile, toml, js, ts, yaml, json) nor marked illustrative (see docs/CONTRIBUTING.md)',
  );
  // the agent on "8787" and the app with ekg at /ops on "3000" that blocks starting neither talk to
  const dir = workdir();
  const agent = start(`${Object.keys(AGENT.bin)[0]} --statsd 127.0.0.1:0 --http 127.0.0.1:0 --console off`, dir);
  writeFileSync(join(dir, 'ops-app.mjs'), OPS_APP);
  const app = start('node ops-app.mjs', dir);
  const shared = new Map<number, number>();
  try {
    await until(
      () => UP.test(agent.out()),
      60_000,
      () => `the shared agent: ${agent.out()}`,
    );
    shared.set(8787, Number(/http http:\/\/127\.0\.0\.1:(\d+)/.exec(agent.out())?.[1]));
    shared.set(8125, Number(/statsd udp(?:\+tcp)? 127\.0\.0\.1:(\d+)/.exec(agent.out())?.[1]));
    await until(
      () => UP.test(app.out()),
      60_000,
      () => `the shared app: ${app.out()}`,
    );
    shared.set(3000, Number(/listening on (\d+)/.exec(app.out())?.[1]));
    // EKG_DOCS_FILES=docs/errors.md,README.md runs those files' blocks only (while writing them)
    const only = process.env.EKG_DOCS_FILES?.split(',');
    const run = all.filter((b) => !b.marks.includes('illustrative') && (!only || only.includes(b.file)));
    const counts = new Map<string, { run: number; illustrative: number }>();
    for (const b of all) {
      const c = counts.get(b.file) ?? { run: 0, illustrative: 0 };
      c[b.marks.includes('illustrative') ? 'illustrative' : 'run']++;
      counts.set(b.file, c);
    }
    t.diagnostic([...counts].map(([f, c]) => `${f}: ${c.run} run, ${c.illustrative} illustrative`).join('; '));
    // four at a time: each block has its own directory and ports
    const queue = [...run];
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let b = queue.shift(); b; b = queue.shift()) {
          const t0 = Date.now();
          try {
            await (RUN[b.lang] as (b: Block, s: Map<number, number>) => Promise<void>)(b, shared);
            if (process.env.EKG_DOCS_TIMES) t.diagnostic(`${b.file}:${b.line}: ${Date.now() - t0} ms`);
          } catch (err) {
            failures.push(`${b.file}:${b.line}: ${(err as Error).message}`);
          }
        }
      }),
    );
    assert.deepEqual(failures, []);
  } finally {
    await Promise.all([stop(agent), stop(app)]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('docs test: fences, marks, commands and the output shown under them are read as docs/CONTRIBUTING.md says', () => {
  const md = [
    '```sh',
    'a --x \\',
    '  1',
    '# 202 {"ok":1}',
    'b   # note',
    '```',
    '  ```yaml fragment',
    '  k: 1',
    '  ```',
    '```',
    'x',
    '```',
  ];
  const bs = blocks('t.md', md.join('\n'));
  assert.deepEqual(
    bs.map((b) => [b.line, b.lang, b.marks.join(' '), b.body]),
    [
      [1, 'sh', '', 'a --x \\\n  1\n# 202 {"ok":1}\nb   # note'],
      [7, 'yaml', 'fragment', 'k: 1'],
      [10, '', '', 'x'],
    ],
  );
  assert.deepEqual(commands((bs[0] as Block).body), {
    transcript: false,
    cmds: [
      { text: 'a --x  1', expect: ['202 {"ok":1}'] },
      { text: 'b   # note', expect: [] },
    ],
  });
  assert.deepEqual(commands('$ run &\n$ ask\nanswer 1\n'), {
    transcript: true,
    cmds: [
      { text: 'run &', expect: [] },
      { text: 'ask', expect: ['answer 1'] },
    ],
  });
  assert.match('OK: answered 200 in 14 ms', pattern('OK: answered 200 in 3 ms'));
  assert.doesNotMatch('OK: answered 200 heartbeat:ok', pattern('OK: answered 200 ready:ok'));
});

const literal = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The sections of a markdown page under `### TITLE` headings, by title. */
function sections(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(/^(?=#{2,3} )/m)) {
    const title = /^### (\S+)/.exec(part)?.[1];
    if (title) out.set(title, part);
  }
  return out;
}

test('docs/errors.md: every library code shows the line ekg prints for it — run by the docs test, or matching the source', () => {
  const page = sections(readFileSync(join(ROOT, 'docs/errors.md'), 'utf8'));
  const src = join(ROOT, 'packages/ekg/src');
  const code = readdirSync(src, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((f) => readFileSync(join(src, f), 'utf8'))
    .join('\n');
  const declared = [...code.matchAll(/^ {2}(EKG_ERR_\w+): /gm)].map((m) => m[1] as string);
  assert.ok(declared.length >= 12, `${declared.length} codes read from errors.ts`);
  for (const c of declared) {
    const section = page.get(c);
    assert.ok(section, `docs/errors.md has ### ${c}`);
    const shown = blocks('docs/errors.md', section).flatMap((b) =>
      b.body
        .split('\n')
        .filter((l) => l.includes(`[${c}]: `) || l.includes(`ekg: ${c}: `))
        .map((line) => ({ line, run: !b.marks.includes('illustrative') })),
    );
    assert.ok(shown.length, `docs/errors.md shows a line with ${c}`);
    for (const { line } of shown.filter((s) => !s.run)) {
      // a line the docs test cannot provoke: it must be one the source builds (`${…}` is anything, as `…` is)
      const calls = code.matchAll(new RegExp(`(?:warn|EkgError)\\(\\s*'${c}',\\s*\`([^\`]*)\``, 'g'));
      const template = (t: string) =>
        new RegExp(
          `^ekg: ${c}: ${t
            .split(/\$\{[^}]*\}/)
            .map(literal)
            .join('.+')}$`,
        );
      const templates = [...calls].map((m) => template(m[1] as string));
      assert.ok(templates.length, `the source prints ${c} from a template`);
      assert.ok(
        templates.some((t) => t.test(line.replace(/…/g, 'x'))),
        `docs/errors.md: ${line} is a line the source prints (${templates.join(', ')})`,
      );
    }
  }
});

/** The names in the first cell of each row of a markdown table ("| `a`, `b` | … |"), a trailing label set left out, `x_{a,b}` expanded. */
function firstCells(table: string): string[] {
  const expand = (n: string): string[] => {
    const m = /^(.*?)\{(\w+(?:,\w+)+)\}(.*)$/.exec(n);
    return m ? (m[2] as string).split(',').flatMap((x) => expand(`${m[1]}${x}${m[3]}`)) : [n];
  };
  return [...table.matchAll(/^\| ((?:[^|\\]|\\.)*?) \|/gm)]
    .flatMap((row) => [...(row[1] as string).matchAll(/`([^`]+)`/g)])
    .flatMap((n) => expand((n[1] as string).replace(/\{[^{}]*\}$/, '')));
}

/** The members an interface of the agent's source declares (optional ones too: they are emitted only at times). */
function members(file: string, name: string): string[] {
  const text = readFileSync(join(ROOT, 'packages/agent/src', file), 'utf8');
  const body = new RegExp(`export interface ${name} \\{([^}]*)\\}`).exec(text)?.[1];
  assert.ok(body, `${file} declares ${name}`);
  return [...body.matchAll(/^ {2}(\w+)\??:/gm)].map((m) => m[1] as string);
}

const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();

test('docs/agent-self.md names every field of /api/v1/self and every ekg_agent_ family of /metrics a running agent emits, and no other', {
  timeout: 120_000,
}, async () => {
  const dir = workdir();
  // an exporter (to a port where nothing listens) and the built-in alert rules: every conditional part is there
  writeFileSync(join(dir, 'agent.yaml'), 'exporters:\n  - type: graphite\n    address: 127.0.0.1:9\n');
  const agent = start(`${Object.keys(AGENT.bin)[0]} --config agent.yaml --statsd 127.0.0.1:0 --http 127.0.0.1:0 --console off`, dir);
  try {
    await until(
      () => UP.test(agent.out()),
      60_000,
      () => `the agent: ${agent.out()}`,
    );
    const base = `http://127.0.0.1:${/http http:\/\/127\.0\.0\.1:(\d+)/.exec(agent.out())?.[1]}`;
    const self = (await (await fetch(`${base}/api/v1/self`)).json()) as Record<string, unknown> & {
      store: Record<string, unknown>;
      exporters: Record<string, Record<string, unknown>>;
    };
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const page = readFileSync(join(ROOT, 'docs/agent-self.md'), 'utf8');
    const api = page.slice(page.indexOf('## GET /api/v1/self'), page.indexOf('## /metrics'));
    const [top = '', store = '', exporter = ''] = api.split(/^`(?:store|exporters\.<name>)` \(/m);
    assert.deepEqual(sorted(firstCells(top)), sorted(Object.keys(self)), 'the fields of /api/v1/self');
    assert.deepEqual(
      sorted(firstCells(store)),
      sorted([...Object.keys(self.store), ...members('store/sqlite.ts', 'StoreStatus')]),
      'the fields of store',
    );
    const exp = Object.values(self.exporters)[0] ?? {};
    assert.deepEqual(
      sorted(firstCells(exporter)),
      sorted([...Object.keys(exp), ...members('export/exporter.ts', 'ExporterStatus')]),
      'the fields of exporters.<name>',
    );
    const families = [...metrics.matchAll(/^# TYPE (ekg_agent_\w+) /gm)].map((m) => m[1] as string);
    assert.ok(families.includes('ekg_agent_alerts_firing') && families.includes('ekg_agent_exporter_queued_bytes'));
    assert.deepEqual(sorted(firstCells(page.slice(page.indexOf('## /metrics')))), sorted(families), 'the ekg_agent_ families of /metrics');
  } finally {
    await stop(agent);
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The environment variables the library's sources under `dirs` read (`env.X`, `env['X']`, `switchOf(env, 'X')`). */
function envRead(filter: (file: string) => boolean): string[] {
  const src = join(ROOT, 'packages/ekg/src');
  const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter(
    (f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !/^(testing|tools)\//.test(f) && filter(f),
  );
  const text = files.map((f) => readFileSync(join(src, f), 'utf8')).join('\n');
  return sorted(
    [...text.matchAll(/\benv(?:\.|\[')([A-Z][A-Z0-9_]+)|switchOf\(env, '([A-Z][A-Z0-9_]+)'/g)].map((m) => (m[1] ?? m[2]) as string),
  );
}

test('docs/env.md lists exactly the environment variables the library reads; docs/cli.md those the ekg command reads', () => {
  const lib = envRead((f) => !f.startsWith('cli/'));
  assert.ok(lib.includes('EKG_PORT') && lib.includes('EKG_DISABLE'), `read from the source: ${lib.join(', ')}`);
  const env = readFileSync(join(ROOT, 'docs/env.md'), 'utf8');
  const table = sorted(firstCells(env.slice(env.indexOf('| variable'))).filter((n) => /^[A-Z][A-Z0-9_]+$/.test(n)));
  assert.deepEqual(table, lib, 'the variables in the table of docs/env.md');
  const cli = readFileSync(join(ROOT, 'docs/cli.md'), 'utf8');
  for (const v of envRead((f) => f.startsWith('cli/'))) assert.ok(cli.includes(v), `docs/cli.md names ${v}`);
});
