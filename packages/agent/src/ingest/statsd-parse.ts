/**
 * The StatsD dialect ekg-agent accepts (docs/agent-statsd.md): the etsy grammar — `name:value|type`
 * with c, g (and `+`/`-` deltas), ms, h, s, `|@rate`, several `value|type` per key, many lines per
 * packet — and the DogStatsD extensions: `d`, `|#tag:value,…`, value packing `name:1:2:3|ms`,
 * `|T<unix seconds>`, events `_e{…}` and service checks `_sc|…`. A bad line is reported with a
 * reason and never stops the rest of its packet.
 */

import type { MetricType, Sample } from '../model/sample.js';
import { normalizeTags } from '../model/tags.js';

export type { MetricType, Sample } from '../model/sample.js';
export { normalizeTags } from '../model/tags.js';

export type BadReason =
  | 'empty_name'
  | 'no_value'
  | 'bad_value'
  | 'bad_type'
  | 'bad_sample_rate'
  | 'bad_tags'
  | 'bad_timestamp'
  | 'bad_event'
  | 'bad_service_check'
  | 'too_long';

/** A DogStatsD event (`_e`). */
export interface StatsdEvent {
  title: string;
  text: string;
  /** epoch seconds: the event's `d:`, else undefined (now) */
  ts?: number;
  /** `t:` — info, warning, error or success */
  alert?: string;
  /** sorted `k:v` tags */
  tags: string;
}

export interface ParseSink {
  sample(s: Sample): void;
  bad(reason: BadReason, line: string): void;
  event?(e: StatsdEvent): void;
  serviceCheck?(name: string, status: number, tags: string): void;
}

const TYPES = new Set(['c', 'g', 'ms', 'h', 'd', 's']);
/** The longest StatsD line (characters), as DogStatsD: a longer one is a `too_long` bad line. */
export const MAX_LINE = 8192;
/**
 * The longest metric name (characters, after sanitising) over StatsD, push and scrape — and in a query
 * (web/api.ts): a longer one is a `too_long` bad line (a 400 for a push). Every series holds its
 * name and tags for as long as it lives, so these two bound what 100,000 series can hold.
 */
export const MAX_NAME = 1024;
/** The longest tag set of one sample (characters, normalised `k:v,k:v`): longer is a `too_long` bad line. */
export const MAX_TAGS = 2048;

/** etsy StatsD's key sanitiser: spaces → `_`, `/` → `-`, anything outside [A-Za-z0-9_.-] dropped. */
const CLEAN_NAME = /^[a-zA-Z0-9_.-]+$/;

export function sanitizeName(key: string): string {
  if (CLEAN_NAME.test(key)) return key; // the common case: one test instead of three replaces
  return key
    .replace(/\s+/g, '_')
    .replace(/\//g, '-')
    .replace(/[^a-zA-Z_\-0-9.]/g, '');
}

const NUMBER = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/** Plain decimal integers, the bulk of StatsD traffic, skip the regex. */
function isPlainInt(s: string): boolean {
  const n = s.length;
  if (n === 0 || n > 15) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * One Sample object, reused for every value parsed: the sink must copy what it keeps (the
 * aggregator does). It saves an allocation per line on the receive path.
 */
const scratch: Sample = { name: '', tags: '', type: 'c', value: 0, weight: 1, ts: undefined };
function emit(
  sink: ParseSink,
  name: string,
  tags: string,
  type: MetricType,
  value: number,
  weight: number,
  member?: string,
  delta?: boolean,
  ts?: number,
): void {
  scratch.ts = ts;
  scratch.name = name;
  scratch.tags = tags;
  scratch.type = type;
  scratch.value = value;
  scratch.weight = weight;
  scratch.member = member;
  scratch.delta = delta;
  sink.sample(scratch);
}

/** Parses every line of one packet or stream chunk. */
export function parsePacket(text: string, sink: ParseSink): void {
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    const end = nl === -1 ? text.length : nl;
    let line = text.slice(start, end);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.length > 0) parseLine(line, sink);
    if (nl === -1) return;
    start = nl + 1;
  }
}

export function parseLine(line: string, sink: ParseSink): void {
  if (line.length > MAX_LINE) return sink.bad('too_long', line.slice(0, 200));
  if (line.startsWith('_e{')) return parseEvent(line, sink);
  if (line.startsWith('_sc|')) return parseServiceCheck(line, sink);
  const colon = line.indexOf(':');
  if (colon === -1) return sink.bad('no_value', line);
  const name = sanitizeName(line.slice(0, colon));
  if (name === '') return sink.bad('empty_name', line);
  if (name.length > MAX_NAME) return sink.bad('too_long', line.slice(0, 200));
  if (fastPath(name, line, colon, sink)) return;
  // DogStatsD metadata (|#tags, then |T<ts>, |c:container) ends the line and applies to
  // every value of it; tags may contain ':' themselves, so it is cut off before splitting values.
  const rest = line.slice(colon + 1);
  let metaStart = rest.length;
  for (const marker of ['|#', '|T']) {
    const i = rest.indexOf(marker);
    if (i !== -1 && i < metaStart) metaStart = i;
  }
  const meta = rest.slice(metaStart);
  const bits = rest.slice(0, metaStart).split(':');
  // value packing: leading bits without a type take the type (and rate) of the last bit
  const last = bits[bits.length - 1] as string;
  const pipe = last.indexOf('|');
  if (pipe === -1) return sink.bad(bits.length === 1 && last === '' ? 'no_value' : 'bad_type', line);
  const suffix = last.slice(pipe);
  for (let i = 0; i < bits.length; i++) {
    const bit = bits[i] as string;
    parseBit(name, bit.indexOf('|') === -1 ? bit + suffix + meta : bit + meta, line, sink);
  }
}

const FAST_TYPES: Record<string, MetricType | undefined> = { c: 'c', g: 'g', ms: 'ms', h: 'h', d: 'd' };

/**
 * The bulk of StatsD traffic is `name:value|type` or `name:value|type|@rate`: parsed with indexOf
 * and no allocation but the value slice. Anything else (tags, packing, sets, timestamps) returns
 * false and takes the general path.
 */
function fastPath(name: string, line: string, colon: number, sink: ParseSink): boolean {
  const p1 = line.indexOf('|', colon + 1);
  if (p1 === -1 || line.indexOf(':', colon + 1) !== -1 || line.indexOf('#', p1) !== -1) return false;
  const p2 = line.indexOf('|', p1 + 1);
  const type = FAST_TYPES[p2 === -1 ? line.slice(p1 + 1) : line.slice(p1 + 1, p2)];
  if (type === undefined) return false;
  let weight = 1;
  if (p2 !== -1) {
    if (line.charCodeAt(p2 + 1) !== 64 /* @ */ || line.indexOf('|', p2 + 1) !== -1) return false;
    weight = weightOf(line.slice(p2 + 2));
    if (weight === 0) return false;
  }
  const raw = line.slice(colon + 1, p1);
  if (!isPlainInt(raw)) return false;
  const value = Number(raw);
  if (type === 'g') emit(sink, name, '', 'g', value, 1);
  else if (Number.isFinite(value * weight)) emit(sink, name, '', type, value, weight);
  else return false;
  return true;
}

/**
 * `@rate` → the weight of the sample (1 / rate), or 0 when the rate is no number in (0, 1] or so small
 * that its weight is not a finite number (`@5e-324`: one line would make the window's count Infinity).
 */
function weightOf(rate: string): number {
  const r = Number(rate);
  if (!(r > 0 && r <= 1)) return 0;
  const w = 1 / r;
  return Number.isFinite(w) ? w : 0;
}

function parseBit(name: string, bit: string, line: string, sink: ParseSink): void {
  const fields = bit.split('|');
  const rawValue = fields[0] as string;
  const type = (fields[1] ?? '').trim();
  if (!TYPES.has(type)) return sink.bad('bad_type', line);
  let weight = 1;
  let tags = '';
  let ts: number | undefined;
  for (let i = 2; i < fields.length; i++) {
    const f = fields[i] as string;
    if (f.startsWith('@')) {
      weight = weightOf(f.slice(1));
      if (weight === 0) return sink.bad('bad_sample_rate', line);
    } else if (f.startsWith('#')) {
      const t = f.length > 1 ? normalizeTags(f.slice(1)) : undefined;
      if (t === undefined) return sink.bad('bad_tags', line);
      tags = tags ? (normalizeTags(`${tags},${t}`) ?? '') : t;
      if (tags.length > MAX_TAGS) return sink.bad('too_long', line.slice(0, 200));
    } else if (f.startsWith('T')) {
      if (!/^T\d{1,12}$/.test(f)) return sink.bad('bad_timestamp', line);
      ts = Number(f.slice(1));
    } else if (f.startsWith('c:') || f.startsWith('e:') || f === '') {
      // DogStatsD container id and external data: accepted, not used
    } else return sink.bad('bad_type', line);
  }
  if (type === 's') {
    if (rawValue === '') return sink.bad('no_value', line);
    return emit(sink, name, tags, 's', 1, 1, rawValue, undefined, ts);
  }
  if (rawValue === '') {
    // etsy treats `name:|c` as 1 for counters; anything else needs a value
    if (type === 'c') return emit(sink, name, tags, 'c', 1, weight, undefined, undefined, ts);
    return sink.bad('no_value', line);
  }
  if (!isPlainInt(rawValue) && !NUMBER.test(rawValue)) return sink.bad('bad_value', line);
  const value = Number(rawValue);
  // a value the window's sum could not hold once weighted (`1e308|c|@0.5`) would turn the series into Infinity
  if (!Number.isFinite(type === 'g' ? value : value * weight)) return sink.bad('bad_value', line);
  if (type === 'g') {
    const c = rawValue.charCodeAt(0);
    return emit(sink, name, tags, 'g', value, 1, undefined, c === 43 || c === 45 ? true : undefined, ts);
  }
  emit(sink, name, tags, type as MetricType, value, weight, undefined, undefined, ts);
}

/**
 * `_e{title_len,text_len}:title|text|d:<ts>|t:<alert>|#tags|…` — the lengths in UTF-8 bytes, as
 * DogStatsD defines them (characters are accepted too, as some clients send them).
 */
function parseEvent(line: string, sink: ParseSink): void {
  const m = /^_e\{(\d+),(\d+)\}:/.exec(line);
  if (!m) return sink.bad('bad_event', line);
  const tl = Number(m[1]);
  const xl = Number(m[2]);
  const rest = line.slice(m[0].length);
  let title: string;
  let text: string;
  let after: string;
  const buf = Buffer.from(rest);
  if (buf[tl] === 0x7c && (buf.length === tl + 1 + xl || buf[tl + 1 + xl] === 0x7c)) {
    title = buf.subarray(0, tl).toString();
    text = buf.subarray(tl + 1, tl + 1 + xl).toString();
    after = buf.subarray(tl + 1 + xl).toString();
  } else if (rest[tl] === '|' && (rest.length === tl + 1 + xl || rest[tl + 1 + xl] === '|')) {
    title = rest.slice(0, tl);
    text = rest.slice(tl + 1, tl + 1 + xl);
    after = rest.slice(tl + 1 + xl);
  } else return sink.bad('bad_event', line);
  const e: StatsdEvent = { title, text: text.replace(/\\n/g, '\n'), tags: '' };
  for (const f of after.split('|')) {
    if (f.startsWith('d:')) {
      const ts = Number(f.slice(2));
      if (!Number.isFinite(ts) || ts <= 0) return sink.bad('bad_event', line);
      e.ts = ts;
    } else if (f.startsWith('t:')) e.alert = f.slice(2);
    else if (f.startsWith('#')) e.tags = normalizeTags(f.slice(1)) ?? '';
  }
  sink.event?.(e);
}

/** `_sc|name|status|…` with status 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN */
function parseServiceCheck(line: string, sink: ParseSink): void {
  const f = line.split('|');
  const name = sanitizeName(f[1] ?? '');
  const status = Number(f[2]);
  if (name === '' || !(status >= 0 && status <= 3) || !Number.isInteger(status)) return sink.bad('bad_service_check', line);
  let tags = '';
  for (const x of f.slice(3)) if (x.startsWith('#')) tags = normalizeTags(x.slice(1)) ?? '';
  sink.serviceCheck?.(name, status, tags);
}
