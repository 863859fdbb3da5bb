import { describe, type ErrorCode } from '../errors.js';
import type { Stats, StatValue } from '../types.js';

export type Outcome<T> = { ok: true; value: T } | { ok: false; code: ErrorCode; error: string };

/**
 * What a user's value says about itself, read so that nothing it does escapes: an Error whose
 * `message` getter throws, a revoked Proxy (even `instanceof` throws on one), a `toString` that
 * throws all become a fixed text.
 */
export function reason(err: unknown): string {
  try {
    return describe(err);
  } catch {
    return 'an error that cannot be described (its message or toString threw)';
  }
}

const fail = <T>(code: ErrorCode, error: string): Outcome<T> => ({ ok: false, code, error });

/**
 * Calls a vital's method so that nothing it does reaches the host app: a throw, a rejection, a
 * `then` getter that throws, a revoked Proxy or a promise that never settles becomes a failed
 * Outcome (the last after `timeoutMs`). A synchronous answer stays synchronous (no promise, no
 * tick), which keeps /heartbeat cheap. The returned promise never rejects.
 */
export function settle<T>(what: string, fn: () => T | PromiseLike<T>, timeoutMs: number): Outcome<T> | Promise<Outcome<T>> {
  let result: T | PromiseLike<T>;
  let then: unknown;
  try {
    result = fn();
    // `.then` is read once, here, inside the guard: a getter or a revoked Proxy throws now or never
    if (result !== null && (typeof result === 'object' || typeof result === 'function')) then = (result as { then?: unknown }).then;
  } catch (err) {
    return fail('EKG_ERR_VITAL_THREW', `${what} threw: ${reason(err)}`);
  }
  if (typeof then !== 'function') return { ok: true, value: result as T };
  const pending = result as PromiseLike<T>;
  return new Promise<Outcome<T>>((resolve) => {
    let done = false;
    const finish = (o: Outcome<T>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(o);
    };
    const timer = setTimeout(() => finish(fail('EKG_ERR_VITAL_TIMEOUT', `${what} did not settle within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    // The thenable is adopted by a native promise: its `then` runs in the executor (a throw there
    // is a rejection), a nested thenable is read by the engine inside the promise job, and a late
    // or repeated settlement after the timeout is absorbed here, never an unhandled rejection.
    new Promise<T>((res, rej) => {
      (then as PromiseLike<T>['then']).call(pending, res, rej);
    }).then(
      (value) => finish({ ok: true, value }),
      (err: unknown) => finish(fail('EKG_ERR_VITAL_THREW', `${what} rejected: ${reason(err)}`)),
    );
  });
}

export interface StatsLimits {
  /** most leaf values one vital may return (default 2000) */
  maxValues: number;
  /** most keys the walk visits in one vital's stats, of any kind: values, objects (empty ones too), skipped functions (default 10000) */
  maxKeys: number;
  /** deepest nesting (default 8) */
  maxDepth: number;
  /** longest key, in UTF-16 code units (default 256) */
  maxKeyLength: number;
}

export const defaultLimits: StatsLimits = { maxValues: 2000, maxKeys: 10_000, maxDepth: 8, maxKeyLength: 256 };

/** A string cap on each leaf string value; longer ones are cut, not failed. */
export const MAX_STRING = 1024;

class BadStats extends Error {}

const short = (key: string) => (key.length > 40 ? `${key.slice(0, 40)}…(${key.length} chars)` : key);

/**
 * Copies a vital's stats into a plain tree that every format can render: finite numbers,
 * strings (cut at 1024 chars) and booleans kept; NaN and ±Infinity become null (a gap, not a lie);
 * bigints become numbers; functions, symbols and undefined are left out. A cycle, too many values,
 * too many keys, too long a key or too deep a tree fails the vital with a message naming where.
 *
 * The walk is bounded as it goes: keys are taken one at a time (for..in, own keys only) and every
 * key visited counts against `maxKeys` before its value is read, so a result of a million keys,
 * or of 200k empty objects, costs at most `maxKeys` visits. Every read of the user's value (a
 * getter, a Proxy trap, a revoked Proxy) happens inside the guard: nothing here throws.
 * `visit`, when given, is told each key visited (for tests).
 */
export function sanitizeStats(value: unknown, limits: StatsLimits = defaultLimits, visit?: (path: string) => void): Outcome<Stats> {
  let keys = 0;
  let count = 0;
  const ancestors = new Set<object>();
  const walk = (obj: object, path: string, depth: number): Stats => {
    if (depth > limits.maxDepth) throw new BadStats(`stats nest deeper than ${limits.maxDepth} levels at ${path}`);
    if (ancestors.has(obj)) throw new BadStats(`stats contain a cycle at ${path}`);
    ancestors.add(obj);
    const out: Stats = {};
    for (const key in obj) {
      if (++keys > limits.maxKeys)
        throw new BadStats(`stats have more than ${limits.maxKeys} keys (at ${path ? `${path}.` : ''}${short(key)})`);
      if (key.length > limits.maxKeyLength)
        throw new BadStats(`stats have a key longer than ${limits.maxKeyLength} characters (${short(key)} at ${path || 'the top'})`);
      // inherited enumerable keys are not the vital's stats (Object.keys never listed them)
      if (!Object.hasOwn(obj, key)) continue;
      const here = path ? `${path}.${key}` : key;
      visit?.(here);
      const v = (obj as Record<string, unknown>)[key];
      let leaf: StatValue | undefined;
      switch (typeof v) {
        case 'number':
          leaf = Number.isFinite(v) ? v : null;
          break;
        case 'bigint':
          leaf = Number(v);
          break;
        case 'string':
          leaf = v.length > MAX_STRING ? v.slice(0, MAX_STRING) : v;
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
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      return fail(
        'EKG_ERR_VITAL_BAD_STATS',
        `stats() returned ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}, expected an object`,
      );
    }
    return { ok: true, value: walk(value, '', 0) };
  } catch (err) {
    if (err instanceof BadStats) return fail('EKG_ERR_VITAL_BAD_STATS', err.message);
    return fail('EKG_ERR_VITAL_BAD_STATS', `stats could not be read: ${reason(err)}`);
  }
}

/** A check's verdict, read inside a guard: `{ ok, detail? }` or a boolean; anything else is a failed check with the reason. */
export function readVerdict(what: string, v: unknown): { ok: boolean; detail?: string; bad?: string } {
  try {
    if (typeof v === 'boolean') return { ok: v };
    if (v !== null && typeof v === 'object') {
      const ok = (v as { ok?: unknown }).ok;
      if (typeof ok === 'boolean') {
        const detail = (v as { detail?: unknown }).detail;
        return detail === undefined ? { ok } : { ok, detail: String(detail).slice(0, MAX_STRING) };
      }
    }
    // named, never serialized: a hostile verdict could be a million keys
    const shown =
      v !== null && typeof v === 'object'
        ? `an object whose ok is ${typeof (v as { ok?: unknown }).ok}`
        : typeof v === 'string'
          ? JSON.stringify(v.slice(0, 100))
          : typeof v === 'function'
            ? 'a function'
            : String(v);
    const bad = `${what} returned ${shown}, expected { ok: boolean, detail?: string }`;
    return { ok: false, detail: bad, bad };
  } catch (err) {
    const bad = `${what} returned a verdict that could not be read: ${reason(err)}`;
    return { ok: false, detail: bad, bad };
  }
}
