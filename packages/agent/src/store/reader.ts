/**
 * What the query API reads, whichever store answers it: the embedded SQLite file or a
 * Prometheus-compatible engine. `/api/v1/instances`, `/series` and `/query` call these and nothing else.
 */

import type { Health } from '../model/instance.js';
import type { Agg } from '../model/series.js';

export { AGGS, type Agg, PERCENTILES } from '../model/series.js';
/** Points a query answers when it names no step: about one per pixel of a wide chart. */
export const DEFAULT_POINTS = 1000;

export interface Instance {
  /** `service=api,host=web-1,pid=42` (the identity tags present), or `target=<url>` for a scrape target */
  key: string;
  service?: string;
  host?: string;
  pid?: string;
  worker?: string;
  instance?: string;
  target?: string;
  /** epoch ms (first_seen is null where the store cannot tell) */
  first_seen: number | null;
  last_seen: number;
  /** ms of the interval its samples describe (its own window, a push's or a scrape's), when they state one */
  interval_ms?: number;
  /** `up` (probe answered), `down` (probe failed), `reporting` (data within 3 of its intervals: docs/time-model.md), `stale` */
  health: Health;
  /** why, when down */
  reason?: string;
}

export interface SeriesInfo {
  name: string;
  tags: Record<string, string>;
  kind: 'counter' | 'gauge' | 'distribution' | 'set';
  unit?: string;
  first_seen?: number;
  last_seen?: number;
}

export interface Query {
  name: string;
  /** every pair must match (`service: api`); a value `*` only needs the key present */
  tags: Record<string, string>;
  /** epoch ms */
  from: number;
  to: number;
  /** ms; undefined lets the store choose from the range */
  step: number | undefined;
  agg: Agg;
  /** group by these tag keys (series of a group are merged; [] merges all); undefined keeps every series apart */
  by: string[] | undefined;
  /** what the request may still spend (store/budget.ts): the store takes the points before reading, checks the time as it reads */
  budget?: QueryBudgetLike;
}

/** The part of store/budget.ts's QueryBudget a store calls. */
export interface QueryBudgetLike {
  take(series: number, steps: number): void;
  /** a listing's series examined so far (one point each): refuses past the points left */
  examine(series: number): void;
  check(): void;
}

export interface QueryResult {
  /** bucket ends, epoch seconds */
  t: number[];
  series: Array<{ tags: Record<string, string>; values: Array<number | null> }>;
  /** the step used, and the stored resolution it was read from, in seconds */
  step: number;
  resolution: number;
  kind?: SeriesInfo['kind'];
}

/** A recorded event (a stall an app reported), for the dashboard's markers. */
export interface StoredEvent {
  /** epoch seconds */
  t: number;
  instance?: string;
  title: string;
  text: string;
  alert?: string;
  tags: Record<string, string>;
}

/** Which instances a listing answers: one service's, or one key; at most `limit` (all when undefined). */
export interface InstanceFilter {
  service?: string;
  instance?: string;
  limit?: number;
  /** only those heard from at or after this epoch ms (`last_seen >= seenSince`): what changed since a last look */
  seenSince?: number;
  /** only those a probe has answered for (health up or down at some time): the alerts' heartbeat rule */
  probed?: boolean;
}

export interface StoreReader {
  readonly kind: string;
  /** events in [from, to] (ms), of one instance or service; a store that keeps none answers [] */
  events?(from: number, to: number, instance?: string, service?: string): Promise<StoredEvent[]>;
  instances(): Promise<Instance[]>;
  /** the instances a filter keeps, at most its limit, and how many it kept before the cut; optional (else instances() is cut) */
  listInstances?(filter: InstanceFilter): Promise<{ instances: Instance[]; total: number }>;
  /**
   * Series whose name matches the glob and whose tags match, ordered by name and tags, at most `limit`; `now` decides
   * which instances are gone. A store that walks its series calls `budget.examine` and `budget.check` as it goes.
   */
  series(match: string, tags: Record<string, string>, limit?: number, now?: number, budget?: QueryBudgetLike): Promise<SeriesInfo[]>;
  /** the kind of the series of exactly this name with these tags (the first), without a scan of every series; optional */
  seriesKind?(name: string, tags: Record<string, string>): Promise<SeriesInfo['kind'] | undefined>;
  query(q: Query): Promise<QueryResult>;
}

/** A bad query parameter: the API answers 400 naming it. */
export class QueryError extends Error {
  constructor(
    readonly param: string,
    message: string,
  ) {
    super(`${param}: ${message}`);
  }
}

export { parseTags } from '../model/tags.js';

export function tagsMatch(have: Record<string, string>, want: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(want)) {
    if (!Object.hasOwn(have, k)) return false;
    if (v !== '*' && have[k] !== v) return false;
  }
  return true;
}

/** A compiled glob: `test` runs in time linear in the name for a given glob; `source` is its regex spelling. */
export interface Glob {
  test(name: string): boolean;
  /** the same glob as an anchored regular expression's source, for an engine with linear-time regexps (RE2) */
  readonly source: string;
}

/**
 * A glob over dotted names: `*` any run of characters, `?` one. No pattern or `*` matches all.
 * No regular expression is built from it: a pattern like `*a*a*a*a*b` over a long name would
 * backtrack for minutes. Each `*`-free segment is found once, leftmost first, after the previous
 * one (the greedy match is right for globs), so a test costs at most name × glob steps, and
 * about the name's length when the glob has no `?`.
 */
export function compileGlob(glob: string): Glob {
  const parts = glob.split('*');
  const source = `^${glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.')}$`;
  if (parts.length === 1) return { source, test: (name) => name.length === glob.length && at(name, 0, glob) };
  const head = parts[0] as string;
  const tail = parts[parts.length - 1] as string;
  const mids = parts.slice(1, -1).filter((p) => p !== '');
  return {
    source,
    test(name) {
      if (name.length < head.length + tail.length) return false;
      if (!at(name, 0, head) || !at(name, name.length - tail.length, tail)) return false;
      let i = head.length;
      const end = name.length - tail.length;
      for (const m of mids) {
        const j = find(name, m, i, end);
        if (j < 0) return false;
        i = j + m.length;
      }
      return true;
    },
  };
}

/** @deprecated the name of compileGlob before it stopped building a RegExp */
export const globToRegExp = compileGlob;

/** Whether `seg` (`?` for any character) matches `s` at `i`. */
function at(s: string, i: number, seg: string): boolean {
  for (let k = 0; k < seg.length; k++) {
    const c = seg.charCodeAt(k);
    if (c !== 63 /* ? */ && c !== s.charCodeAt(i + k)) return false;
  }
  return true;
}

/** The first index ≥ from where `seg` matches and ends by `end`, or -1. */
function find(s: string, seg: string, from: number, end: number): number {
  if (!seg.includes('?')) {
    // V8's string search is linear in the worst case
    const i = s.indexOf(seg, from);
    return i >= 0 && i + seg.length <= end ? i : -1;
  }
  for (let i = from; i + seg.length <= end; i++) if (at(s, i, seg)) return i;
  return -1;
}

export { IDENTITY, instanceFields, instanceKey, staleAfter } from '../model/instance.js';
