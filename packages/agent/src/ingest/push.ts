import { MAX_INTERVAL_MS, type Sample } from '../model/sample.js';
import { normalizeTags } from '../model/tags.js';
import { MAX_NAME, sanitizeName } from './statsd-parse.js';

export class PushError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The interval a push describes, ending at its arrival: `X-Ekg-Interval-Ms` (what ekg's push
 * reporter sends: the ms its post covers) or the `interval_ms` query parameter, whole ms from 1 to an
 * hour; undefined when neither is given (the push then describes the moment it arrived). A bad value
 * throws a PushError naming the header or parameter.
 */
export function pushInterval(header: string | string[] | undefined, param: string | null): number | undefined {
  const v = header ?? param ?? undefined;
  if (v === undefined || v === '') return undefined;
  const what = header !== undefined ? 'X-Ekg-Interval-Ms' : 'the interval_ms parameter';
  const n = typeof v === 'string' && /^\d{1,7}$/.test(v.trim()) ? Number(v.trim()) : Number.NaN;
  if (!(n >= 1 && n <= MAX_INTERVAL_MS))
    throw new PushError(
      400,
      `${what}: "${String(v).slice(0, 100)}" is not a whole number of ms from 1 to ${MAX_INTERVAL_MS} (the time the push covers)`,
    );
  return n;
}

/**
 * `POST /v1/push` in the Heroku JSON shape (barnes ≥ 1.0, Heroku's Node collector, ekg's reporter):
 * `{"counters":{name:number},"gauges":{name:number}}`. Returns the samples, tagged with the app's
 * identity and carrying `interval` (ms, see pushInterval) when the push states one, or throws a
 * PushError naming the field.
 */
export function parsePush(body: string, identity: Record<string, string>, interval?: number): Sample[] {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (err) {
    throw new PushError(400, `body is not JSON: ${(err as Error).message}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    throw new PushError(400, 'body must be an object with "counters" and/or "gauges"');
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d))
    if (k !== 'counters' && k !== 'gauges')
      throw new PushError(400, `unknown field "${k.slice(0, 100)}": expected "counters" and "gauges"`);
  const tagParts: string[] = [];
  for (const [k, v] of Object.entries(identity)) if (v) tagParts.push(`${k}:${v}`);
  const tags = normalizeTags(tagParts.join(',')) ?? '';
  const out: Sample[] = [];
  for (const field of ['counters', 'gauges'] as const) {
    const section = d[field];
    if (section === undefined) continue;
    if (section === null || typeof section !== 'object' || Array.isArray(section))
      throw new PushError(400, `"${field}" must be an object of name: number`);
    for (const [name, value] of Object.entries(section as Record<string, unknown>)) {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new PushError(400, `"${field}.${name.slice(0, 200)}" must be a finite number, got ${value === null ? 'null' : typeof value}`);
      }
      const clean = sanitizeName(name);
      if (!clean) throw new PushError(400, `"${field}" has an empty or unusable name "${name.slice(0, 200)}"`);
      if (clean.length > MAX_NAME)
        throw new PushError(
          400,
          `"${field}" has a name of ${clean.length} characters ("${clean.slice(0, 40)}…"); a name has at most ${MAX_NAME}`,
        );
      const sample: Sample = { name: clean, tags, type: field === 'counters' ? 'c' : 'g', value, weight: 1 };
      if (interval !== undefined) sample.interval = interval;
      out.push(sample);
    }
  }
  return out;
}
