import { spawnSync } from 'node:child_process';

/**
 * Interop tests need real outside programs. Locally a missing one skips the test with a visible
 * reason; under CI=true it fails, so a missing install step in .ci/run cannot hide.
 */
export function need(program: string): string | false {
  const found = spawnSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' }).stdout.trim();
  if (found) return false;
  const why = `${program} is not installed (apt-get install it, or run .ci/run)`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${why}`);
  return why;
}
