import { DURATION_FORMS, parseDuration, parseSize, SIZE_FORMS } from 'ekg';
import { ConfigError } from './errors.js';

/** A duration flag or key (the library's one parser: a bare number is seconds), at least 100 ms. */
export function duration(s: string, field: string): number {
  const n = parseDuration(s);
  if (!(n >= 100)) throw new ConfigError(`${field}: "${s}" is not ${DURATION_FORMS}, of at least 100ms`);
  return n;
}

/** A size flag or key (the library's one parser): `2g`, `500m`, `64k` or a number of bytes. */
export function bytes(s: string, field: string): number {
  const n = parseSize(s);
  if (!Number.isFinite(n)) throw new ConfigError(`${field}: "${s}" is not ${SIZE_FORMS}`);
  return n;
}
