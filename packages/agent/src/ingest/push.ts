import type { Sample } from '../model/sample.js';
import { normalizeTags } from '../model/tags.js';
import { sanitizeName } from './statsd-parse.js';

export class PushError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * `POST /v1/push` in the Heroku JSON shape (barnes ≥ 1.0, Heroku's Node collector, ekg's reporter):
 * `{"counters":{name:number},"gauges":{name:number}}`. Returns the samples, tagged with the app's
 * identity, or throws a PushError naming the field.
 */
export function parsePush(body: string, identity: Record<string, string>): Sample[] {
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
      out.push({ name: clean, tags, type: field === 'counters' ? 'c' : 'g', value, weight: 1 });
    }
  }
  return out;
}
