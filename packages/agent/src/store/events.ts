/** DogStatsD events (stalls an app reported), kept with the instance their tags name: the last 10,000. */
import type Database from 'better-sqlite3';
import type { StatsdEvent } from '../ingest/statsd-parse.js';
import { instanceKey, parseTags, type StoredEvent } from './reader.js';
import { isBusy } from './schema.js';

const KEEP = 10_000;

export class Events {
  private since = 0;
  private readonly insert: Database.Statement;
  private readonly range: Database.Statement;

  constructor(private readonly db: Database.Database) {
    this.insert = db.prepare('INSERT INTO events (t, key, title, text, alert, tags) VALUES (?, ?, ?, ?, ?, ?)');
    this.range = db.prepare('SELECT t, key, title, text, alert, tags FROM events WHERE t >= ? AND t <= ? ORDER BY t LIMIT 1000');
  }

  add(e: StatsdEvent): void {
    const t = Math.round(e.ts ?? Date.now() / 1000);
    const key = e.tags ? instanceKey(parseTags(e.tags)) : undefined;
    this.insert.run(t, key ?? null, e.title.slice(0, 200), e.text.slice(0, 4000), e.alert ?? null, e.tags);
    if (++this.since > 1000) {
      this.since = 0;
      try {
        this.db.exec(`DELETE FROM events WHERE rowid <= (SELECT max(rowid) FROM events) - ${KEEP}`);
      } catch (err) {
        // the lock taken since the insert (the event is in): the trim is left to the next thousand events
        if (!isBusy(err)) throw err;
      }
    }
  }

  list(from: number, to: number, key?: string, service?: string): StoredEvent[] {
    const rows = this.range.all(Math.floor(from / 1000), Math.ceil(to / 1000)) as Array<{
      t: number;
      key: string | null;
      title: string;
      text: string;
      alert: string | null;
      tags: string;
    }>;
    return rows
      .filter((r) => (!key || r.key === key) && (!service || parseTags(r.tags).service === service))
      .map((r) => ({
        t: r.t,
        ...(r.key ? { instance: r.key } : {}),
        title: r.title,
        text: r.text,
        ...(r.alert ? { alert: r.alert } : {}),
        tags: parseTags(r.tags),
      }));
  }
}
