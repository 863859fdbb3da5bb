import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** packages/ekg, where `ekg-vitals/register` resolves by the package's self-reference. */
export const packageDir = fileURLToPath(new URL('../../', import.meta.url));
export const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}.js`, import.meta.url));

export interface Child {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** resolves with the first stdout line matching re */
  line(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

/** Runs a fixture as a real process: `node [--import ekg-vitals/register] fixture`. */
export function run(name: string, opts: { env?: Record<string, string>; register?: boolean; args?: string[] } = {}): Child {
  const t0 = Date.now();
  const args = [...(opts.register ? ['--import', 'ekg-vitals/register'] : []), fixture(name), ...(opts.args ?? [])];
  const env: Record<string, string | undefined> = { ...process.env, ...opts.env };
  for (const k of Object.keys(env)) if (k.startsWith('EKG_') && !(opts.env && k in opts.env)) delete env[k];
  delete env.NODE_OPTIONS;
  delete env.NODE_TEST_CONTEXT;
  const proc = spawn(process.execPath, args, { cwd: packageDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: Array<() => void> = [];
  proc.stdout?.on('data', (d: Buffer) => {
    out += d;
    for (const w of waiters.splice(0)) w();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    err += d;
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve) => {
    proc.on('exit', (code, signal) => {
      for (const w of waiters.splice(0)) w();
      resolve({ code, signal, ms: Date.now() - t0 });
    });
  });
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exit,
    line(re, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line ${re} in stdout: ${out}\nstderr: ${err}`)), timeoutMs);
        const check = () => {
          const m = out.match(re);
          if (m) {
            clearTimeout(timer);
            resolve(m);
          } else if (proc.exitCode !== null || proc.signalCode !== null) {
            clearTimeout(timer);
            reject(new Error(`exited before ${re}; stdout: ${out}\nstderr: ${err}`));
          } else waiters.push(check);
        };
        check();
      });
    },
  };
}
