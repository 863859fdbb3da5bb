/**
 * The one parser of durations, sizes and switches for the whole repository (library options, EKG_* env, the agent's
 * flags, env and YAML, and the query API), so that `10`, `10s` and `8m` mean the same wherever a user types them.
 *
 * - Duration text: a number with `ms`, `s`, `m`, `h`, `d`, `w` or `y`; a bare number is **seconds** (as in
 *   Prometheus' API and most agents). A JavaScript number (an API option such as `interval: 5000`) is milliseconds.
 * - Size text: a number with `k`, `m`, `g` or `t` (powers of 1024; `kb`, `KiB`, `MB`… are read the same); a bare
 *   number is bytes.
 * - Switch text: `1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off`, any case.
 */

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  y: 31_536_000_000,
};

/** `10s`, `500ms`, `1.5m`, `2h`, `15d`, `10` (seconds) → ms; a finite number ≥ 0 is taken as ms. NaN when unreadable. */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? input : Number.NaN;
  if (typeof input !== 'string' || input.length > 64) return Number.NaN;
  const m = /^\s*(\d{1,15}(?:\.\d{1,9})?)\s*(ms|s|m|h|d|w|y)?\s*$/.exec(input);
  if (!m) return Number.NaN;
  return Number(m[1]) * (DURATION_UNITS[m[2] ?? 's'] as number);
}

/** The forms parseDuration takes, for error messages. */
export const DURATION_FORMS = 'a duration such as 500ms, 10s, 1m, 2h or 15d (a bare number is seconds)';

const SIZE_UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** `8m`, `2g`, `64k`, `1MiB`, `1048576` → bytes (whole). NaN when unreadable. */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? Math.floor(input) : Number.NaN;
  if (typeof input !== 'string' || input.length > 64) return Number.NaN;
  const m = /^\s*(\d{1,15}(?:\.\d{1,9})?)\s*(?:([kmgt])(?:i?b)?|b)?\s*$/i.exec(input);
  if (!m) return Number.NaN;
  return Math.floor(Number(m[1]) * (SIZE_UNITS[(m[2] ?? '').toLowerCase()] as number));
}

/** The forms parseSize takes, for error messages. */
export const SIZE_FORMS = 'a size such as 64k, 8m or 2g (powers of 1024; a bare number is bytes)';

const ON = new Set(['1', 'true', 'yes', 'on']);
const OFF = new Set(['0', 'false', 'no', 'off']);

/** `1`/`true`/`yes`/`on` → true, `0`/`false`/`no`/`off` → false (any case, trimmed); anything else → undefined. */
export function parseSwitch(input: string): boolean | undefined {
  const v = input.trim().toLowerCase();
  if (ON.has(v)) return true;
  if (OFF.has(v)) return false;
  return undefined;
}

export const SWITCH_FORMS = '1, true, yes or on; 0, false, no or off';
