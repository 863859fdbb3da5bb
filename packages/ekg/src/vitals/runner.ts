import { describe, type ErrorCode } from '../errors.js';
import type { Stats, StatValue } from '../types.js';

export type Outcome<T> = { ok: true; value: T } | { ok: false; code: ErrorCode; error: string };

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return x !== null && (typeof x === 'object' || typeof x === 'function') && typeof (x as PromiseLike<unknown>).then === 'function';
}

/**
 * Calls a vital's method so that nothing it does reaches the host app: a throw, a rejection or a
 * promise that never settles becomes a failed Outcome after `timeoutMs`. A synchronous answer
 * stays synchronous (no promise, no tick), which keeps /heartbeat cheap.
 */
export function settle<T>(what: string, fn: () => T | PromiseLike<T>, timeoutMs: number): Outcome<T> | Promise<Outcome<T>> {
  let result: T | PromiseLike<T>;
  try {
    result = fn();
  } catch (err) {
    return { ok: false, code: 'EKG_ERR_VITAL_THREW', error: `${what} threw: ${describe(err)}` };
  }
  if (!isThenable(result)) return { ok: true, value: result };
  const pending = result;
  return new Promise<Outcome<T>>((resolve) => {
    const timer = setTimeout(() => {
      resolve({ ok: false, code: 'EKG_ERR_VITAL_TIMEOUT', error: `${what} did not settle within ${timeoutMs} ms` });
    }, timeoutMs);
    timer.unref();
    // A late rejection after the timeout is caught here too: never an unhandled rejection.
    Promise.resolve(pending).then(
      (value) => {
        clearTimeout(timer);
        resolve({ ok: true, value });
      },
      (err: unknown) => {
        clearTimeout(timer);
        resolve({ ok: false, code: 'EKG_ERR_VITAL_THREW', error: `${what} rejected: ${describe(err)}` });
      },
    );
  });
}

export interface StatsLimits {
  /** most leaf values one vital may return (default 2000) */
  maxValues: number;
  /** deepest nesting (default 8) */
  maxDepth: number;
}

export const defaultLimits: StatsLimits = { maxValues: 2000, maxDepth: 8 };

class BadStats extends Error {}

/**
 * Copies a vital's stats into a plain tree that every format can render: finite numbers,
 * strings (cut at 1024 chars) and booleans kept; NaN and ±Infinity become null (a gap, not a lie);
 * bigints become numbers; functions, symbols and undefined are left out. A cycle, too many values
 * or too deep a tree fails the vital with a message naming where.
 */
export function sanitizeStats(value: unknown, limits: StatsLimits = defaultLimits): Outcome<Stats> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return {
      ok: false,
      code: 'EKG_ERR_VITAL_BAD_STATS',
      error: `stats() returned ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}, expected an object`,
    };
  }
  let count = 0;
  const ancestors = new Set<object>();
  const walk = (obj: object, path: string, depth: number): Stats => {
    if (depth > limits.maxDepth) throw new BadStats(`stats nest deeper than ${limits.maxDepth} levels at ${path}`);
    if (ancestors.has(obj)) throw new BadStats(`stats contain a cycle at ${path}`);
    ancestors.add(obj);
    const out: Stats = {};
    for (const key of Object.keys(obj)) {
      const v = (obj as Record<string, unknown>)[key];
      const here = path ? `${path}.${key}` : key;
      let leaf: StatValue | undefined;
      switch (typeof v) {
        case 'number':
          leaf = Number.isFinite(v) ? v : null;
          break;
        case 'bigint':
          leaf = Number(v);
          break;
        case 'string':
          leaf = v.length > 1024 ? v.slice(0, 1024) : v;
          break;
        case 'boolean':
          leaf = v;
          break;
        case 'object':
          if (v === null) leaf = null;
          else if (v instanceof Date) leaf = v.getTime();
          else out[key] = walk(v, here, depth + 1);
          break;
        default:
          continue;
      }
      if (leaf !== undefined) {
        if (++count > limits.maxValues) throw new BadStats(`stats have more than ${limits.maxValues} values (at ${here})`);
        out[key] = leaf;
      }
    }
    ancestors.delete(obj);
    return out;
  };
  try {
    return { ok: true, value: walk(value, '', 0) };
  } catch (err) {
    if (err instanceof BadStats) return { ok: false, code: 'EKG_ERR_VITAL_BAD_STATS', error: err.message };
    return { ok: false, code: 'EKG_ERR_VITAL_BAD_STATS', error: `stats could not be read: ${describe(err)}` };
  }
}
