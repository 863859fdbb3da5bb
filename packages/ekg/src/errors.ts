/**
 * Every error ekg reports carries one of these codes. A retired code is never reused.
 * docs/errors.md lists each with what to do; errors.test.ts keeps the two in step.
 */
export const codes = {
  EKG_ERR_BAD_OPTION: 'An option passed to createEkg() or an adapter has the wrong type or value.',
  EKG_ERR_BAD_ENV: 'An EKG_* environment variable could not be parsed; the feature it configures is off.',
  EKG_ERR_DUPLICATE_VITAL: 'Two vitals share one name; names are keys in /stats and must be unique.',
  EKG_ERR_VITAL_THREW: 'A vital threw or rejected; only that vital is reported as failed.',
  EKG_ERR_VITAL_TIMEOUT: 'A vital did not settle within its timeout; only that vital is reported as failed.',
  EKG_ERR_VITAL_BAD_STATS: 'A vital returned stats that cannot be rendered (a cycle, too many values or keys, too long a key, too deep).',
  EKG_ERR_VITAL_BAD_VERDICT: 'A vital check() returned something other than { ok: boolean, detail?: string }.',
  EKG_ERR_VITAL_INIT: 'A vital init() failed; the vital reports failure until ekg is restarted.',
  EKG_ERR_LISTEN: 'The side server could not listen (port taken, no permission); the app keeps running without it.',
  EKG_ERR_REPORTER: 'A push transport (StatsD, Heroku JSON) cannot deliver; counted, retried, one line per outage.',
  EKG_ERR_SHUTDOWN_HOOK: 'An onShutdown hook threw or exceeded its timeout; shutdown went on.',
  EKG_ERR_WATCHDOG: "The watchdog's thread could not start or stopped; stalls are not detected, the app runs on.",
} as const;

export type ErrorCode = keyof typeof codes;

export class EkgError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EkgError';
    this.code = code;
  }
}

/** A short, single-line description of anything thrown. */
export function describe(err: unknown): string {
  if (err instanceof Error) return oneLine(err.message || err.name);
  if (typeof err === 'string') return oneLine(err);
  try {
    return oneLine(String(err));
  } catch {
    return 'unprintable error';
  }
}

function oneLine(s: string): string {
  const line = s.replace(/\s+/g, ' ').trim();
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}
