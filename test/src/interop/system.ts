import { spawnSync } from 'node:child_process';

/** Where `program` is on the PATH, or undefined. */
export function which(program: string): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', program], { encoding: 'utf8' }).stdout.trim();
  return found || undefined;
}

/** True when running in CI: `CI` set to anything but empty, `0` or `false` (GitHub and most CIs set `true`). */
export function inCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = (env.CI ?? '').trim().toLowerCase();
  return ci !== '' && ci !== '0' && ci !== 'false';
}

/**
 * Interop tests need real outside programs. Locally a missing one skips the test with a visible
 * reason (the string returned, which node:test prints as `# SKIP <reason>`); in CI it throws, so
 * the test file fails and a missing install step in .ci/run cannot hide as a skip.
 */
export function need(program: string, env: NodeJS.ProcessEnv = process.env): string | false {
  if (which(program)) return false;
  const why = `${program} is not installed (apt-get install it, or run .ci/run)`;
  if (inCi(env)) throw new Error(`CI is set and ${why}`);
  return why;
}
