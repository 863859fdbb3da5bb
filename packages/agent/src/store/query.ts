/**
 * The read path: which resolution answers a query, and each matched series' rows from its chunks
 * plus the head windows not yet folded. A percentile over a whole service or host reads the fleet's
 * sketches merged at rollup time (one per minute or hour) instead of every member's.
 */

import type Database from 'better-sqlite3';
import { type Row, reduce, type Source } from './aggregate.js';
import { rowsOf } from './chunks.js';
import { type Core, FLEET_KEYS, type SeriesMeta } from './core.js';
import {
  compileGlob,
  DEFAULT_POINTS,
  type Instance,
  type InstanceFilter,
  instanceFields,
  PERCENTILES,
  parseTags,
  type Query,
  type QueryBudgetLike,
  type QueryResult,
  type SeriesInfo,
  staleAfter,
  tagsMatch,
} from './reader.js';
import type { Level } from './schema.js';

/** The resolution a query reads: the coarsest one no wider than the step that still covers `from`. */
export function pick(levels: Level[], q: Pick<Query, 'from' | 'to' | 'step'>, now = Date.now()): { level: Level; step: number } {
  const range = q.to - q.from;
  const covering = levels.filter((l) => q.from >= now - l.keep - l.seconds * 1000);
  const usable = covering.length > 0 ? covering : [levels.at(-1) as Level];
  // no step: about DEFAULT_POINTS over the range, at the finest resolution that covers it
  const want = q.step ?? Math.max(range / DEFAULT_POINTS, (usable[0] as Level).seconds * 1000);
  let level = usable[0] as Level;
  for (const l of usable) if (l.seconds * 1000 <= want) level = l;
  // a step finer than the resolution is kept (whole seconds): each point answers every step it covers
  // (docs/time-model.md); a coarser one is a multiple of the resolution
  const res = level.seconds * 1000;
  const step =
    q.step !== undefined && q.step < res ? Math.max(1000, Math.ceil(q.step / 1000) * 1000) : Math.max(res, Math.ceil(want / res) * res);
  return { level, step };
}

/** A stretch of the range read from one resolution (or from the head). */
interface Part {
  level: Level;
  from: number;
  to: number;
  head?: true;
}

/** The watermark up to which a resolution is complete: minutes with the compacted raw, hours their own. */
function watermark(core: Core, l: Level): number {
  return l.res === 2 ? core.meta('rolled:1h') : core.meta('compacted');
}

export function runQuery(core: Core, q: Query, now = Date.now()): QueryResult {
  const { level, step } = pick(core.levels, q, now);
  const matched: Array<{ m: SeriesMeta; tags: Record<string, string> }> = [];
  for (const m of core.ids.of(q.name)) {
    const tags = parseTags(m.tags);
    if (tagsMatch(tags, q.tags)) matched.push({ m, tags });
  }
  matched.sort((a, b) => a.m.id - b.m.id);
  const kind = matched[0]?.m.kind;
  const fromS = Math.floor(q.from / 1000);
  const toS = Math.ceil(q.to / 1000);
  // a rollup lags its source by a minute or so: past its watermark, rows come from the finer levels,
  // and past the compacted watermark from the head
  const parts: Part[] = [];
  const compacted = core.meta('compacted');
  const cover = (li: number, from: number, to: number): void => {
    const l = core.levels[li] as Level;
    if (li === 0) {
      if (compacted > from) parts.push({ level: l, from, to: Math.min(compacted, to) });
      if (compacted < to) parts.push({ level: l, from: Math.max(from, compacted), to, head: true });
      return;
    }
    // a rollup point stands for its whole bucket: it answers only buckets that end by `to` (a range
    // ending inside a minute reads that minute's windows from the finer levels, as before compaction)
    const end = Math.min(watermark(core, l), Math.floor(to / l.seconds) * l.seconds);
    if (end > from) parts.push({ level: l, from, to: end });
    if (end < to) cover(li - 1, Math.max(from, end), to);
  };
  cover(level.res, fromS - level.seconds, toS);

  const rowsFor =
    (id: number, over: Part[]) =>
    (withSketches: boolean): Row[] => {
      const out: Row[] = [];
      for (const p of over) {
        if (p.head) headRows(core, id, p.from, p.to, withSketches, out);
        else for (const c of core.chunks(id, p.level, p.from, p.to)) rowsOf(c, p.from, p.to, withSketches, out);
      }
      return out;
    };

  const key = PERCENTILES[q.agg] !== undefined && kind === 'distribution' ? fleetKey(q, matched) : undefined;
  if (key === undefined)
    return reduce(
      q,
      kind,
      step / 1000,
      level.seconds,
      matched.map(({ m, tags }) => ({ tags, rows: rowsFor(m.id, parts) })),
    );
  // a percentile over whole services (or hosts): each one's merged sketches where its fleet has them,
  // its members' own rows before that (the fleet began after them) and in the head (not compacted yet)
  const sources: Source[] = [];
  const groups = new Map<string, Array<{ m: SeriesMeta; tags: Record<string, string> }>>();
  for (const x of matched) {
    const v = x.tags[key] as string;
    const g = groups.get(v);
    if (g) g.push(x);
    else groups.set(v, [x]);
  }
  for (const [v, members] of groups) {
    const f = members.length > 1 ? core.fleet.get(`${q.name}\n${key}:${v}`) : undefined;
    let own = parts;
    if (f) {
      const merged: Part[] = [];
      own = [];
      for (const p of parts) {
        // merged from the windows after `since` only; its first hour may hold part of its members' minutes
        const edge = p.level.res === 2 ? Math.ceil(f.since / 3600) * 3600 + 3600 : f.since;
        if (p.head || p.to <= edge) own.push(p);
        else if (p.from >= edge) merged.push(p);
        else {
          own.push({ ...p, to: edge });
          merged.push({ ...p, from: edge });
        }
      }
      if (merged.length > 0) sources.push({ tags: { [key]: v }, rows: rowsFor(-f.id, merged) });
    }
    for (const { m, tags } of members) sources.push({ tags, rows: rowsFor(m.id, own) });
  }
  return reduce(q, kind, step / 1000, level.seconds, sources);
}

/**
 * The fleet key (service or host) whose fleets can answer a percentile in place of their members:
 * the query filters on at most that key and merges by it or by nothing, and every matched series
 * carries it.
 */
function fleetKey(q: Query, matched: Array<{ m: SeriesMeta; tags: Record<string, string> }>): string | undefined {
  if (q.by === undefined || matched.length < 2) return undefined;
  const filter = Object.keys(q.tags);
  const by = q.by;
  for (const key of FLEET_KEYS) {
    if (filter.some((k) => k !== key) || !by.every((k) => k === key)) continue;
    if (matched.every(({ tags }) => tags[key] !== undefined)) return key;
  }
  return undefined;
}

/** One series' points in the head windows with t in (from, to]. */
function headRows(core: Core, id: number, from: number, to: number, withSketches: boolean, out: Row[]): void {
  const hs = core.head.filter((h) => h.t > from && h.t <= to).sort((a, b) => a.t - b.t || a.seq - b.seq);
  for (const h of hs) {
    const w = core.window(h);
    const i = w.level(id);
    if (i >= 0) {
      if (!withSketches) out.push([h.t, w.vals[i] as number, null, null, null, null, h.d]);
      continue;
    }
    const j = w.dist(id);
    if (j < 0) continue;
    if (withSketches) {
      const sk = w.sketch(j);
      // copied: the window's bytes are a slab the next windows reuse once it is let go
      if (sk) out.push([h.t, null, null, null, null, null, null, sk.slice()]);
    } else {
      const lo = w.lo(j);
      const hi = w.hi(j);
      out.push([h.t, w.n(j), w.n(j), w.s(j), Number.isNaN(lo) ? null : lo, Number.isNaN(hi) ? null : hi, h.d]);
    }
  }
}

/** Between budget checks, a listing examines this many series. */
const EXAMINE_EVERY = 4096;

/**
 * The series listing (`/api/v1/series`) from the in-memory index, not a scan of the table: a name without `*` or
 * `?` reads that name's series only; a glob tests each name once, then reads the series of the names it matches.
 * Every name tested and series examined counts against `budget` (`examine`, with its time checked as it goes).
 * The matches are ordered by name and tags; series of gone instances (silent since before `goneBefore`) are left
 * out, and only the first `limit` kept are read back from the table for their unit and times.
 */
export function listSeries(
  core: Core,
  match: string,
  tags: Record<string, string>,
  limit: number,
  goneBefore: number,
  budget?: QueryBudgetLike,
): SeriesInfo[] {
  let examined = 0;
  const spend = (): void => {
    if (++examined % EXAMINE_EVERY === 0) {
      budget?.examine(examined);
      budget?.check();
    }
  };
  // a series' tags are parsed only when its string holds every wanted `key:value` (or `key:`): most are not
  const needles = Object.entries(tags).map(([k, v]) => (v === '*' ? `${k}:` : `${k}:${v}`));
  const found: SeriesMeta[] = [];
  const take = (name: string): void => {
    for (const m of core.ids.of(name)) {
      spend();
      if (needles.every((x) => m.tags.includes(x)) && (needles.length === 0 || tagsMatch(parseTags(m.tags), tags))) found.push(m);
    }
  };
  if (match !== '' && !/[*?]/.test(match)) take(match);
  else {
    const glob = match === '' ? undefined : compileGlob(match);
    for (const name of core.ids.names()) {
      spend();
      if (!glob || glob.test(name)) take(name);
    }
  }
  budget?.examine(examined);
  found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.tags < b.tags ? -1 : a.tags > b.tags ? 1 : 0));
  // the rows of the matches in order, a batch per statement (one lookup each cost twice the time), until `limit`
  // of them belong to no gone instance
  const rows = core.db.prepare(
    `SELECT s.id, s.unit, s.first_seen, s.last_seen, s.instance IS NULL OR i.key IS NOT NULL AS live
     FROM json_each(?) j JOIN series s ON s.id = j.value
     LEFT JOIN instances i ON i.key = s.instance AND (i.last_seen >= ? OR i.health_at >= ?)
     ORDER BY j.key`,
  );
  const out: SeriesInfo[] = [];
  for (let at = 0; at < found.length && out.length < limit; ) {
    const batch = found.slice(at, at + Math.max(256, limit - out.length));
    at += batch.length;
    const got = rows.all(JSON.stringify(batch.map((m) => m.id)), goneBefore, goneBefore) as Array<{
      id: number;
      unit: string | null;
      first_seen: number;
      last_seen: number;
      live: number;
    }>;
    // in the batch's order; a series deleted meanwhile has no row
    for (let k = 0, j = 0; k < batch.length && j < got.length && out.length < limit; k++) {
      const m = batch[k] as SeriesMeta;
      const r = got[j] as (typeof got)[number];
      if (r.id !== m.id) continue;
      j++;
      if (!r.live) continue;
      out.push({
        name: m.name,
        tags: parseTags(m.tags),
        kind: m.kind,
        ...(r.unit ? { unit: r.unit } : {}),
        first_seen: r.first_seen,
        last_seen: r.last_seen,
      });
    }
  }
  return out;
}

/**
 * The instance list (`/api/v1/instances`) in key order: those not gone (heard from, or probed, since `goneBefore`),
 * of one service or one key when the filter says so, at most `limit` of them, and how many matched. SQLite filters,
 * counts and cuts, so a fleet of 100,000 costs one count and `limit` rows, not 100,000 objects.
 */
export function listInstances(
  db: Database.Database,
  window: number,
  goneBefore: number,
  now: number,
  f: InstanceFilter = {},
): { instances: Instance[]; total: number } {
  let where = 'WHERE (last_seen >= ? OR health_at >= ?)';
  const args: Array<string | number> = [goneBefore, goneBefore];
  if (f.instance !== undefined) {
    where += ' AND key = ?';
    args.push(f.instance);
  }
  if (f.seenSince !== undefined) {
    where += ' AND last_seen >= ?';
    args.push(f.seenSince);
  }
  if (f.probed) where += ' AND health_at IS NOT NULL';
  if (f.service !== undefined) {
    // service is the key's first part when present (model/instance.ts), and a tag value holds no comma
    const head = `service=${f.service}`;
    where += ' AND (key = ? OR substr(key, 1, ?) = ?)';
    args.push(head, head.length + 1, `${head},`);
  }
  const total =
    f.limit === undefined
      ? -1
      : (db
          .prepare(`SELECT count(*) FROM instances ${where}`)
          .pluck()
          .get(...args) as number);
  const rows = db
    .prepare(
      `SELECT key, first_seen, last_seen, health, reason, health_at, interval_ms FROM instances ${where} ORDER BY key${f.limit === undefined ? '' : ' LIMIT ?'}`,
    )
    .all(...args, ...(f.limit === undefined ? [] : [f.limit])) as Array<{
    key: string;
    first_seen: number;
    last_seen: number;
    health: string | null;
    reason: string | null;
    health_at: number | null;
    interval_ms: number;
  }>;
  const instances = rows.map((r): Instance => {
    // stale counts the instance's own intervals, not the agent's windows (docs/time-model.md)
    const fresh = staleAfter(window, r.interval_ms);
    const probed = r.health && r.health_at && now - r.health_at <= fresh;
    const health: Instance['health'] = probed ? (r.health as 'up' | 'down') : now - r.last_seen <= fresh ? 'reporting' : 'stale';
    return {
      key: r.key,
      ...instanceFields(r.key),
      first_seen: r.first_seen,
      last_seen: r.last_seen,
      ...(r.interval_ms > 0 ? { interval_ms: r.interval_ms } : {}),
      health,
      ...(health === 'down' && r.reason ? { reason: r.reason } : {}),
    };
  });
  return { instances, total: total < 0 ? instances.length : total };
}
