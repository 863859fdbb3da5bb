import { codes, type ErrorCode } from './errors.js';

/**
 * ekg speaks on stderr in single lines, once per cause: a broken vital or an absent agent must
 * not flood the host app's logs. `warn` prints a key's first occurrence; `recover` re-arms it.
 */
const seen = new Set<string>();
let sink: (line: string) => void = (line) => {
  try {
    process.stderr.write(`${line}\n`);
  } catch {
    // stderr closed: nothing sensible to do, and never throw into the app.
  }
};

export function warn(code: ErrorCode, message: string, key: string = code + message): void {
  if (seen.has(key)) return;
  if (seen.size > 1000) seen.clear();
  seen.add(key);
  sink(`ekg: ${code}: ${message}`);
}

export function recover(key: string): void {
  seen.delete(key);
}

/** For tests: capture lines instead of writing them. Returns the previous sink. */
export function setLogSink(fn: (line: string) => void): (line: string) => void {
  const prev = sink;
  sink = fn;
  return prev;
}

export { codes };
