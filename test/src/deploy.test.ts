import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from 'ekg-agent';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Service } from 'kubernetes-models/v1/Service';
import { parseAllDocuments } from 'yaml';
import { listenedPorts } from '../../packages/ekg/dist/testing/ports.js';
import { until } from './interop/processes.js';

/**
 * deploy/: every Kubernetes manifest parses and validates against the Kubernetes schemas
 * (kubernetes-models), the DaemonSet overlay too once its patches are applied; the probes ask ekg for
 * paths and ports it serves — checked against a real app started with the manifest's own env.
 */
const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url));
const K8S = join(DEPLOY, 'kubernetes');
const REGISTER = import.meta.resolve('ekg-vitals/register');

type Obj = { apiVersion: string; kind: string; metadata: { name: string }; spec: any };
const MODELS: Record<string, new (o: any) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'apps/v1/DaemonSet': DaemonSet,
  'v1/Service': Service,
};

function load(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  for (const d of docs) assert.equal(d.errors.length, 0, `${file}: ${d.errors[0]?.message}`);
  return docs.map((d) => d.toJS() as Obj);
}

function validate(o: Obj, where: string): void {
  const M = MODELS[`${o.apiVersion}/${o.kind}`];
  assert.ok(M, `${where}: ${o.apiVersion} ${o.kind} has a model`);
  assert.doesNotThrow(() => new M(o).validate(), `${where}: ${o.kind} ${o.metadata?.name}`);
}

/** A kustomization's output, enough for these manifests: its resources (and bases), then its JSON 6902 patches. */
function build(dir: string): Obj[] {
  const k = load(join(dir, 'kustomization.yaml'))[0] as unknown as {
    resources?: string[];
    configMapGenerator?: Array<{ name: string; files: string[] }>;
    patches?: Array<{ target: { kind: string; name: string }; patch: string }>;
  };
  let out: Obj[] = [];
  for (const r of k.resources ?? []) {
    const p = join(dir, r);
    out.push(...(existsSync(join(p, 'kustomization.yaml')) ? build(p) : load(p)));
  }
  for (const g of k.configMapGenerator ?? [])
    for (const f of g.files) assert.ok(existsSync(join(dir, f)), `${dir}: configMapGenerator file ${f}`);
  for (const p of k.patches ?? []) {
    const target = out.find((o) => o.kind === p.target.kind && o.metadata.name === p.target.name);
    assert.ok(target, `${dir}: patch target ${p.target.kind}/${p.target.name}`);
    const ops = parseAllDocuments(p.patch)[0]?.toJS() as Array<{ op: string; path: string; value?: unknown }>;
    out = out.map((o) => (o === target ? applyPatch(o, ops) : o));
  }
  return out;
}

/** JSON Patch (RFC 6902) add, remove and replace. */
function applyPatch<T>(doc: T, ops: Array<{ op: string; path: string; value?: unknown }>): T {
  const copy = structuredClone(doc) as unknown as Record<string, unknown>;
  for (const { op, path, value } of ops) {
    const parts = path.split('/').slice(1);
    const last = parts.pop() as string;
    let at: any = copy;
    for (const p of parts) {
      at = at[p];
      assert.ok(at !== undefined, `patch path ${path} exists`);
    }
    if (Array.isArray(at)) {
      const i = last === '-' ? at.length : Number(last);
      if (op === 'add') at.splice(i, 0, value);
      else if (op === 'remove') at.splice(i, 1);
      else at[i] = value;
    } else if (op === 'remove') {
      assert.ok(last in at, `patch path ${path} exists`);
      delete at[last];
    } else at[last] = value;
  }
  return copy as unknown as T;
}

const containersOf = (objs: Obj[]) =>
  objs.filter((o) => o.spec?.template).flatMap((o) => (o.spec.template.spec.containers as any[]).map((c) => ({ o, c })));

/** The containerPort a probe's port (a name or a number) stands for. */
function portOf(c: any, port: string | number): number {
  if (typeof port === 'number') return port;
  const p = (c.ports as any[]).find((x) => x.name === port);
  assert.ok(p, `${c.name}: a port named ${port}`);
  return p.containerPort as number;
}

test('the base and the DaemonSet overlay validate against the Kubernetes schemas', () => {
  for (const dir of [join(K8S, 'base'), join(K8S, 'overlays', 'daemonset')]) {
    const objs = build(dir);
    for (const o of objs) validate(o, dir);
  }
  const base = build(join(K8S, 'base'));
  const overlay = build(join(K8S, 'overlays', 'daemonset'));
  assert.deepEqual(
    containersOf(base).map(({ c }) => c.name),
    ['app', 'ekg-agent'],
    'the base runs the agent as a sidecar',
  );
  assert.deepEqual(
    containersOf(overlay).map(({ o, c }) => `${o.kind}/${c.name}`),
    ['Deployment/app', 'DaemonSet/ekg-agent'],
    'the overlay runs it as a DaemonSet',
  );
  const env = containersOf(overlay)[0]?.c.env as Array<{ name: string; value?: string }>;
  const statsd = env.findIndex((e) => e.name === 'EKG_STATSD');
  assert.equal(env[statsd]?.value, 'udp://$(HOST_IP):8125');
  assert.ok(env.findIndex((e) => e.name === 'HOST_IP') < statsd, 'HOST_IP is defined before the variable that uses it');
  // a broken manifest is caught: the schema check is real
  const broken = structuredClone(base.find((o) => o.kind === 'Deployment') as Obj);
  delete broken.spec.template.spec.containers[0].name;
  assert.throws(() => new Deployment(broken as any).validate(), /name/);
});

test('resources, the grace period and the agent config in the ConfigMap are sound', () => {
  const base = build(join(K8S, 'base'));
  for (const { c } of containersOf(base)) {
    assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${c.name}: requests`);
    assert.ok(c.resources?.limits?.memory, `${c.name}: a memory limit`);
  }
  const dep = base.find((o) => o.kind === 'Deployment') as Obj;
  // ekg under Kubernetes: drainDelay 5 s, then shutdownTimeout 10 s for in-flight requests
  assert.ok(dep.spec.template.spec.terminationGracePeriodSeconds >= 5 + 10);
  const yaml = join(K8S, 'base', 'agent.yaml');
  const c = loadConfig(['--config', yaml], {});
  assert.ok(c !== 'help');
  assert.equal(c.http?.port, 8787);
  assert.deepEqual(
    c.exporters.map((e) => e.type),
    ['mackerel'],
  );
  const agent = containersOf(base).find(({ c: x }) => x.name === 'ekg-agent')?.c;
  const mounts = (agent.volumeMounts as Array<{ mountPath: string }>).map((m) => m.mountPath);
  assert.ok(mounts.includes('/run/secrets/mackerel'), 'the Mackerel key comes from the Secret');
  assert.equal((c.exporters[0] as { api_key_file?: string }).api_key_file, '/run/secrets/mackerel/apikey');
  for (const probe of ['readinessProbe', 'livenessProbe']) {
    assert.equal(agent[probe].httpGet.path, '/heartbeat');
    assert.equal(portOf(agent, agent[probe].httpGet.port), c.http?.port);
  }
});

test('the app probes ask for paths and a port ekg serves: a real app with the manifest env answers them', {
  timeout: 120_000,
}, async () => {
  const app = containersOf(build(join(K8S, 'base'))).find(({ c }) => c.name === 'app')?.c;
  const env = Object.fromEntries((app.env as Array<{ name: string; value: string }>).map((e) => [e.name, e.value]));
  const ekgPort = Number(env.EKG_PORT);
  for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
    const g = app[probe]?.httpGet;
    assert.ok(g, `${probe} is set`);
    assert.equal(portOf(app, g.port), ekgPort, `${probe} asks ekg's port`);
    assert.ok(String(g.path).startsWith(`${env.EKG_PREFIX}/`), `${probe} under EKG_PREFIX`);
  }
  // run ekg as the manifest does (on a port the kernel picks here), and ask each probe's path
  const proc = spawn(process.execPath, ['--import', REGISTER, '-e', 'setInterval(() => {}, 1000)'], {
    env: { ...process.env, EKG_PORT: '0', EKG_HOST: '127.0.0.1', EKG_PREFIX: env.EKG_PREFIX as string, EKG_SERVICE: 'shop' },
    stdio: 'ignore',
  });
  try {
    const [port] = await listenedPorts(proc);
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      const url = `http://127.0.0.1:${port}${app[probe].httpGet.path}`;
      // the startup probe may see 503 while ekg starts: each probe is asked until it answers 200
      const status = await until(
        async () => {
          const st = await fetch(url).then((r) => r.status);
          return st === 200 && st;
        },
        60_000,
        `${probe} ${url} to answer 200`,
      );
      assert.equal(status, 200, `${probe}: ${url}`);
    }
  } finally {
    proc.kill('SIGKILL');
  }
});

test('systemd unit, Procfile and Dockerfile run the agent with options it accepts', () => {
  const unit = readFileSync(join(DEPLOY, 'systemd', 'ekg-agent.service'), 'utf8');
  for (const key of ['[Unit]', '[Service]', '[Install]', 'ExecStart=', 'Restart=always', 'KillSignal=SIGTERM', 'StateDirectory=ekg-agent'])
    assert.ok(unit.includes(key), `the unit has ${key}`);
  const exec = /^ExecStart=\/usr\/bin\/env ekg-agent (.*)$/m.exec(unit)?.[1] as string;
  const opts = exec.split(/\s+/).filter((a, i, all) => a !== '--config' && all[i - 1] !== '--config');
  assert.doesNotThrow(() => loadConfig(opts, {}));
  const proc = readFileSync(join(DEPLOY, 'heroku', 'Procfile'), 'utf8');
  const web = /^web: npx ekg-agent run (.*) -- (.+)$/m.exec(proc);
  assert.ok(web, 'web: runs the app under ekg-agent run');
  assert.doesNotThrow(() => loadConfig((web[1] as string).split(/\s+/), {}));
  const docker = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
  const entry = /^ENTRYPOINT (\[.*\])$/m.exec(docker)?.[1] as string;
  const argv = JSON.parse(entry) as string[];
  // the bin itself, which starts Node with the agent's memory settings (docs/agent-store.md#memory)
  assert.equal(argv[0], '/app/node_modules/ekg-agent/bin/ekg-agent.js');
  assert.doesNotThrow(() => loadConfig(argv.slice(1), {}));
  assert.match(docker, /EXPOSE 8125\/udp 8125\/tcp 8787\/tcp/);
  assert.ok(readdirSync(K8S).includes('base'));
});

/** The ConfigMap file a kustomization gives the agent: the last generator named ekg-agent wins (behavior: replace). */
function agentYaml(dir: string): string {
  const k = load(join(dir, 'kustomization.yaml'))[0] as unknown as {
    resources?: string[];
    configMapGenerator?: Array<{ name: string; files: string[] }>;
  };
  const own = (k.configMapGenerator ?? []).filter((g) => g.name === 'ekg-agent').at(-1)?.files[0];
  if (own) return join(dir, own);
  const base = (k.resources ?? []).map((r) => join(dir, r)).find((p) => existsSync(join(p, 'kustomization.yaml')));
  assert.ok(base, `${dir}: an ekg-agent ConfigMap`);
  return agentYaml(base);
}

test('the YAML is authoritative: no entry point, container arg or unit flag overrides it; StatsD on the pod loopback unless the YAML says otherwise; the token from a Secret', () => {
  const docker = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
  const entry = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(docker)?.[1] as string) as string[];
  assert.deepEqual(entry.slice(1), [], 'the image adds no option to what the config says');
  // the image's own default config, found through EKG_AGENT_CONFIG: loopback, and the volume for data
  const copied = /^COPY deploy\/agent\.yaml (\S+)$/m.exec(docker)?.[1];
  assert.equal(/^ENV EKG_AGENT_CONFIG=(\S+)$/m.exec(docker)?.[1], copied);
  const image = loadConfig(entry.slice(1), { EKG_AGENT_CONFIG: join(DEPLOY, 'agent.yaml') });
  assert.ok(image !== 'help');
  assert.deepEqual([image.statsdUdp?.host, image.http?.host, image.data], ['127.0.0.1', '127.0.0.1', '/var/lib/ekg-agent']);

  const want: Record<string, string> = { base: '127.0.0.1', daemonset: '0.0.0.0' };
  for (const dir of [join(K8S, 'base'), join(K8S, 'overlays', 'daemonset')]) {
    const yaml = agentYaml(dir);
    const agent = containersOf(build(dir)).find(({ c }) => c.name === 'ekg-agent')?.c;
    assert.deepEqual(agent.args, ['--config', '/etc/ekg-agent/agent.yaml'], `${dir}: the container's args are the config file only`);
    // what the agent runs with: the image's entry point, the container's args, the ConfigMap's file
    const c = loadConfig([...entry.slice(1), '--config', yaml], {});
    assert.ok(c !== 'help');
    const host = want[dir.endsWith('base') ? 'base' : 'daemonset'] as string;
    assert.equal(c.statsdUdp?.host, host, `${dir}: StatsD listens where ${yaml} says`);
    assert.match(readFileSync(yaml, 'utf8'), new RegExp(`^statsd: ${host.replace(/\./g, '\\.')}:8125$`, 'm'));
    const token = (agent.env as Array<{ name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>).find(
      (e) => e.name === 'EKG_AGENT_TOKEN',
    );
    assert.deepEqual(token?.valueFrom?.secretKeyRef, { name: 'ekg-agent', key: 'token' }, `${dir}: the API token from the Secret`);
  }
  const unit = readFileSync(join(DEPLOY, 'systemd', 'ekg-agent.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/usr\/bin\/env ekg-agent --config \S+$/m, 'the unit passes the config file only');
  const docs = readFileSync(join(DEPLOY, '..', 'docs', 'deploy.md'), 'utf8');
  assert.match(docs, /kubectl create secret generic ekg-agent --from-literal=token=/, 'docs/deploy.md shows the token Secret');
  assert.match(docs, /Authorization: Bearer/, 'and how to use the token');
});

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const pkgJson = (dir: string) =>
  JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string; dependencies?: Record<string, string> };

/**
 * The final stage of a Dockerfile laid out in a directory, without a docker engine: each `COPY --from=build` copies
 * from this repository (the build stage's /src, built by `npm run build`). The build stage's node_modules is what
 * `npm prune --omit=dev` leaves: the agent's and the library's dependencies (linked to this repository's copies) and
 * npm's workspace links (`ekg-vitals -> ../packages/ekg`), copied as links as docker copies them; a COPY onto a link
 * lands where it points, as docker's does. Returns the directory that stands for the image's `/`.
 */
function layImage(dockerfile: string): string {
  const root = mkdtempSync(join(tmpdir(), 'ekg-image-'));
  const final = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  let workdir = '/';
  for (const line of final.split('\n')) {
    const wd = /^WORKDIR (\S+)$/.exec(line);
    if (wd) {
      workdir = resolve(workdir, wd[1] as string);
      mkdirSync(join(root, workdir), { recursive: true });
    }
    const copy = /^COPY --from=build \/src\/(\S+) (\S+)$/.exec(line);
    if (!copy) continue;
    let dest = join(root, resolve(workdir, copy[2] as string));
    if (lstatSync(dest, { throwIfNoEntry: false })?.isSymbolicLink()) dest = resolve(dirname(dest), readlinkSync(dest));
    if (copy[1] === 'node_modules') {
      mkdirSync(dest, { recursive: true });
      const workspaces = new Map<string, string>();
      for (const w of readdirSync(join(ROOT, 'node_modules'))) {
        const at = join(ROOT, 'node_modules', w);
        if (lstatSync(at).isSymbolicLink()) workspaces.set(w, readlinkSync(at));
      }
      const deps = new Set<string>();
      for (const p of ['packages/agent', 'packages/ekg'])
        for (const d of Object.keys(pkgJson(join(ROOT, p)).dependencies ?? {})) if (!workspaces.has(d)) deps.add(d);
      for (const d of deps) {
        mkdirSync(dirname(join(dest, d)), { recursive: true });
        symlinkSync(realpathSync(join(ROOT, 'node_modules', d)), join(dest, d));
      }
      for (const [w, link] of workspaces) symlinkSync(link, join(dest, w));
      continue;
    }
    cpSync(join(ROOT, copy[1] as string), dest, { recursive: true });
  }
  return root;
}

/** The image's entry point, run in the laid-out directory with these arguments. */
function entry(root: string, dockerfile: string, args: string[]): { status: number | null; out: string } {
  const argv = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1] as string) as string[];
  const r = spawnSync(join(root, argv[0] as string), [...argv.slice(1), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('the image the Dockerfile builds resolves: each package is copied under its own name, and the agent loads the library from there', () => {
  const docker = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
  // each workspace package lands at node_modules/<its package.json name>, the name its importers use
  for (const m of docker.matchAll(/^COPY --from=build \/src\/(packages\/\w+) \S*node_modules\/(\S+)$/gm))
    assert.equal(m[2], pkgJson(join(ROOT, m[1] as string)).name, `${m[0]}: the package's name`);
  const root = layImage(docker);
  try {
    const help = entry(root, docker, ['--help']);
    assert.equal(help.status, 0, `the entry point loads: ${help.out}`);
    assert.match(help.out, /ekg-agent/);
    // the library the agent imports is the copy in the image, not this repository's
    const agentDir = join(root, 'app/node_modules/ekg-agent');
    writeFileSync(join(agentDir, 'probe.mjs'), "console.log(import.meta.resolve('ekg-vitals'));");
    const probe = spawnSync(process.execPath, [join(agentDir, 'probe.mjs')], { encoding: 'utf8' });
    const lib = realpathSync(fileURLToPath(probe.stdout.trim()));
    assert.ok(!relative(root, lib).startsWith('..'), `ekg-vitals resolves inside the image: ${lib}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  // the layout check is real: under the library's old name the agent cannot find it, as the image could not
  const old = docker.replace('./node_modules/ekg-vitals', './node_modules/ekg');
  const broken = layImage(old);
  try {
    const r = entry(broken, old, ['--help']);
    assert.notEqual(r.status, 0);
    assert.match(r.out, /ERR_MODULE_NOT_FOUND|Cannot find package 'ekg-vitals'/);
  } finally {
    rmSync(broken, { recursive: true, force: true });
  }
});
