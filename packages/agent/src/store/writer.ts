/**
 * The write path: each flushed window appended to the head as one row (head.ts), with the rows of
 * series seen for the first time and the instances' last sign of life, in one transaction. A window
 * costs one sequential append whatever its series count; a crash loses at most the window being written.
 */
import type Database from 'better-sqlite3';
import { unitOf } from 'ekg-vitals';
import type { Flushed, FlushResult } from '../aggregate/aggregator.js';
import { normalizeTags } from '../model/tags.js';
import type { Core, SeriesMeta } from './core.js';
import { HeadBuilder } from './head.js';
import { instanceKey, parseTags } from './reader.js';

/** `tags` with `kind:<kind>` added in its sorted place. */
function kindTags(tags: string, kind: string): string {
  return normalizeTags(tags ? `${tags},kind:${kind}` : `kind:${kind}`) ?? tags;
}

export class Writer {
  private readonly hb = new HeadBuilder();
  /** series made by the transaction under way: forgotten again if it rolls back */
  private readonly made: SeriesMeta[] = [];
  /** the series of the last window, by position */
  private order: SeriesMeta[] = [];
  private readonly st: {
    insertSeries: Database.Statement;
    touchSeries: Database.Statement;
    upsertInstance: Database.Statement;
    instanceHealth: Database.Statement;
    addHead: Database.Statement;
  };

  constructor(private readonly core: Core) {
    const db = core.db;
    this.st = {
      insertSeries: db.prepare(
        // a plain insert: every row of the file is in core.ids, so a series missing there is new. (An upsert
        // with RETURNING cost 10–13 µs a row against 2–3; 100k new series in one window held the first
        // flush for 1.5 s, long enough for the kernel to drop StatsD datagrams.)
        'INSERT INTO series (name, tags, kind, unit, instance, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      touchSeries: db.prepare('UPDATE series SET last_seen = ? WHERE id = ?'),
      upsertInstance: db.prepare(
        'INSERT INTO instances (key, first_seen, last_seen, interval_ms) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen), interval_ms = CASE WHEN excluded.interval_ms > 0 THEN excluded.interval_ms ELSE interval_ms END',
      ),
      instanceHealth: db.prepare('UPDATE instances SET health = ?, reason = ?, health_at = ? WHERE key = ?'),
      addHead: db.prepare('INSERT INTO head (t, d, n, data) VALUES (?, ?, ?, ?)'),
    };
  }

  /** Writes the window; throws (having written nothing) when the file cannot take it. */
  write(w: FlushResult): void {
    this.made.length = 0;
    let done: { seq: number; t: number; d: number; bytes: Uint8Array };
    try {
      done = this.tx(w);
    } catch (err) {
      for (const m of this.made) {
        this.core.ids.delete(m.name, m.tags);
        this.core.byId.delete(m.id);
      }
      this.order = [];
      throw err;
    } finally {
      this.hb.reset();
    }
    this.core.addHead(done.seq, done.t, done.d, done.bytes);
  }

  private readonly tx = (w: FlushResult) =>
    this.core.db.transaction((win: FlushResult) => {
      const t = Math.round(win.end / 1000);
      const d = Math.max(1, Math.round(win.end - win.start));
      const hb = this.hb;
      const seen = new Map<string, Flushed | undefined>();
      // the longest interval an instance's samples describe in this window: how long until it is due again
      const intervals = new Map<string, number>();
      const series = win.series;
      const last = this.order;
      for (let i = 0; i < series.length; i++) {
        const f = series[i] as Flushed;
        // a level carried past its sample's interval is not an observation (docs/time-model.md)
        if (f.carried) continue;
        // the aggregator lists its series in the same order window after window: the series at this
        // position last time is checked first, one compare instead of two map lookups
        const p = last[i];
        const k =
          p !== undefined && p.name === f.name && p.tags === f.tags && p.kind === f.kind ? this.touch(p, win.end) : this.known(f, win.end);
        last[i] = k;
        // an instance is seen when it sent something: a gauge carried at its last level is not a sign of life
        if (k.inst !== undefined && !f.carried && (f.name === 'up' || !seen.has(k.inst)))
          seen.set(k.inst, f.name === 'up' ? f : seen.get(k.inst));
        if (k.inst !== undefined && f.interval !== undefined && f.interval > (intervals.get(k.inst) ?? 0))
          intervals.set(k.inst, f.interval);
        if (f.kind === 'distribution') {
          // the aggregator's windows hold their sketches as bytes already: copied, not decoded and encoded again
          const bytes = f.sketchBytes;
          if (bytes !== undefined)
            hb.distBytes(k.id, f.count ?? 0, f.sum ?? 0, f.min ?? Number.NaN, f.max ?? Number.NaN, (f.count ?? 0) > 0 ? bytes : null);
          else hb.dist(k.id, f.count ?? 0, f.sum ?? 0, f.min ?? Number.NaN, f.max ?? Number.NaN, f.sketch);
        } else hb.level(k.id, f.value);
      }
      if (last.length > series.length) last.length = series.length;
      const bytes = hb.encode();
      const seq = Number(this.st.addHead.run(t, d, hb.nl + hb.nd, bytes).lastInsertRowid);
      for (const [key, up] of seen) {
        this.st.upsertInstance.run(key, win.end, win.end, intervals.get(key) ?? 0);
        if (up) {
          const reason = parseTags(up.tags).reason;
          this.st.instanceHealth.run(up.value >= 1 ? 'up' : 'down', reason ?? null, win.end, key);
        }
      }
      return { seq, t, d, bytes };
    })(w);

  /** Its last_seen touched every five minutes. */
  private touch(k: SeriesMeta, now: number): SeriesMeta {
    if (now - k.seen * 1000 > 300_000) {
      this.st.touchSeries.run(now, k.id);
      k.seen = Math.floor(now / 1000);
    }
    return k;
  }

  /** The series' row, made on first sight. */
  private known(f: Flushed, now: number): SeriesMeta {
    let k = this.core.ids.get(f.name, f.tags);
    // a name that carries a second kind (barnes' GC.count: a counter and a gauge) keeps it under the
    // same name with the tag `kind:<kind>` (docs/time-model.md)
    if (k !== undefined && k.kind !== f.kind) {
      const tags = kindTags(f.tags, f.kind);
      k = this.core.ids.get(f.name, tags);
      if (k === undefined) return this.known({ ...f, tags, sketch: f.sketch }, now);
    }
    if (k !== undefined) return this.touch(k, now);
    const inst = f.tags ? instanceKey(parseTags(f.tags)) : undefined;
    const id = Number(this.st.insertSeries.run(f.name, f.tags, f.kind, unitOf(f.name) ?? null, inst ?? null, now, now).lastInsertRowid);
    const made: SeriesMeta = { id, name: f.name, tags: f.tags, kind: f.kind, inst, seen: Math.floor(now / 1000), scopes: undefined };
    this.core.remember(made);
    this.made.push(made);
    return made;
  }
}
