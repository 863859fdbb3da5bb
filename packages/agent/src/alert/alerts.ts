import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { escapeLabel } from 'ekg-vitals';
import { notice, report } from '../errors.js';
import type { ExporterStatus } from '../export/exporter.js';
import type { StatsdEvent } from '../ingest/statsd-parse.js';
import { IDENTITY, type Instance, instanceKey, parseTags, type StoreReader } from '../store/reader.js';
import { type ApiLimits, handleApi } from '../web/api.js';
import { type Change, changeLine, Notifier } from './notify.js';
import type { NotifierSpec, Rule, Severity } from './rules.js';

/** What the alerts read from the agent (a narrow view, so tests can stand one up). */
export interface AlertHost {
  readonly reader: StoreReader | undefined;
  readonly store?: { status: { ok: boolean; error?: string } } | undefined;
  readonly exporters: ReadonlyArray<{ name: string; status: ExporterStatus }>;
}

/**
 * `ok` → `pending` (the condition holds, not yet for `for`) → `firing` → `clearing` (the condition
 * is gone, not yet for `for`) → `ok`. Only the steps into `firing` and back to `ok` notify.
 */
export type AlertState = 'ok' | 'pending' | 'firing' | 'clearing';

export interface GroupView {
  tags: Record<string, string>;
  state: AlertState;
  /** the last value seen (null: none, e.g. a silent instance has no value but its silence) */
  value: number | null;
  message: string;
  /** epoch ms: since when the current state's condition holds */
  since: number;
  /** epoch ms of the last change to firing or to resolved (0: never) */
  changed: number;
  /** epoch ms of the last observation */
  seen: number;
}

/** `GET /api/v1/alerts` (docs/agent-alerts.md). */
export interface AlertsView {
  /** every group firing now (or clearing: its condition gone, not yet for `for`) */
  firing: Array<{
    alert: string;
    severity: Severity;
    group: Record<string, string>;
    value: number | null;
    message: string;
    /** epoch ms: when it fired */
    since: number;
    link: string;
  }>;
  rules: Array<
    Omit<Rule, 'builtin' | 'source'> & {
      builtin?: string;
      source: string;
      /** why the rule could not be evaluated last time (a query refused, no store) */
      error?: string;
      /** groups not held past MAX_GROUPS */
      groups_dropped?: number;
      groups: GroupView[];
    }
  >;
  /** the last 1,000 changes, oldest first */
  history: Change[];
  notifiers: Array<{ name: string; type: string } & ExporterStatus>;
  /** stall events dropped because MAX_STALLS were already waiting for an evaluation */
  stalls_dropped: number;
}

interface Group extends GroupView {
  /** the last observation: does the condition hold */
  cond: boolean;
  notified: number;
  repeats: number;
  threshold?: number | null;
  /** instance-down: the group's last report, and the shortest step seen between reports (its interval) */
  last?: number;
  interval?: number;
}

/** instance-down: a group's last report (the latest of its instances') and the shortest step seen between reports */
interface Seen {
  key: string;
  tags: Record<string, string>;
  last: number;
  interval?: number;
  /** the latest of its instances in the read under way (-Infinity: none yet) */
  read: number;
}

interface Observation {
  tags: Record<string, string>;
  /** undefined: no data this time (the last observation stands) */
  cond: boolean | undefined;
  value: number | null;
  threshold: number | null;
  message: string;
  /** when the observed condition began (a window's start, a deadline passed, an event's time) */
  since: number;
}

/** The last changes kept (and served for the dashboard's marks). */
const HISTORY = 1000;
/** groups one rule may hold (a `by` over a tag with unbounded values would grow without it); more are counted and skipped */
export const MAX_GROUPS = 10_000;
/** stall events held until the next evaluation; more are counted in `stalls_dropped` */
export const MAX_STALLS = 10_000;
/** instance keys whose instance-down group is remembered (so a report costs a lookup, not its tags sorted); past it, the cache starts afresh */
const GROUP_OF = 200_000;
/** a group that has not reported for this long is gone: instance-down no longer watches it */
const GONE = 24 * 3600_000;

const keyOf = (tags: Record<string, string>) =>
  Object.entries(tags)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/** instance-down: an instance's group, its target or the `by` tags it has */
function groupTags(i: Instance, by: readonly string[]): Record<string, string> {
  if (i.target !== undefined) return { target: i.target };
  const tags: Record<string, string> = {};
  for (const k of by) {
    const v = i[k as keyof Instance];
    if (v !== undefined) tags[k] = String(v);
  }
  return tags;
}

/** the comparison a built-in makes, for notifications (`value` `op` `threshold`) */
const OPS: Record<string, 'above' | 'below'> = { 'instance-down': 'above', 'heartbeat-failing': 'below' };

const round = (v: number) => Math.round(v * 1000) / 1000;

/** The dashboard view for a group: its instance, else its service, else the overview. */
function linkOf(tags: Record<string, string>): string {
  const k = tags.pid !== undefined || tags.target !== undefined ? instanceKey(tags) : undefined;
  if (k) return `/#/instance?key=${encodeURIComponent(k)}`;
  if (tags.service) return `/#/service?name=${encodeURIComponent(tags.service)}`;
  return '/#/';
}

/**
 * The alert rules, evaluated after every window against the store through the same code that answers
 * `/api/v1/query`; their state (per rule, per group) kept in `alerts.json` under the data dir, so a
 * restart neither fires again nor forgets; changes go to every notifier's spool and to stderr.
 */
export class Alerts {
  private readonly state = new Map<string, Map<string, Group>>();
  private readonly errors = new Map<string, string>();
  /** groups a rule could not hold past MAX_GROUPS, by rule */
  private readonly dropped = new Map<string, number>();
  /** a state moved since the file was written */
  private dirty = false;
  private history: Change[] = [];
  private stalls: StatsdEvent[] = [];
  private stallsDropped = 0;
  private running: Promise<void> | undefined;
  /** the end of a window that closed while an evaluation ran: evaluated next */
  private again: number | undefined;
  private closed = false;
  private readonly file: string;
  /** the file exists (read at start or written since) */
  private loaded = false;
  readonly notifiers: Notifier[];

  constructor(
    private readonly host: AlertHost,
    readonly rules: Rule[],
    notify: NotifierSpec[],
    private readonly o: {
      data: string;
      window: number;
      agentUrl: string | (() => string);
      limits?: ApiLimits;
      /** ms: `--instance-retention`, after which the store's list leaves an instance out (default 1 h) */
      instanceRetention?: number;
    },
  ) {
    this.file = join(o.data, 'alerts.json');
    this.load();
    this.notifiers = notify.map((n) => new Notifier(n, join(o.data, 'spool'), o.agentUrl));
  }

  /** A DogStatsD event the agent received: a stall, for the event-loop-stall rule. */
  event(e: StatsdEvent): void {
    if (!/stall/i.test(e.title)) return;
    if (this.stalls.length < MAX_STALLS) this.stalls.push(e);
    else this.stallsDropped++;
  }

  /** Runs an evaluation for the window ending at `end` (one at a time: a window that comes meanwhile runs after it). */
  tick(end: number): void {
    if (this.closed) return;
    if (this.running) {
      this.again = end;
      return;
    }
    this.running = this.evaluate(end)
      .then(
        () => undefined,
        (err) => {
          report('EKG_AGENT_ERR_ALERTS', `alerts: evaluation failed: ${(err as Error).message}`);
        },
      )
      .finally(() => {
        this.running = undefined;
        const next = this.again;
        this.again = undefined;
        if (next !== undefined && !this.closed) this.tick(next);
      });
  }

  /** One evaluation of every rule; resolves when its notifications are queued. */
  async evaluate(end: number, now = Date.now()): Promise<Change[]> {
    const changes: Change[] = [];
    const stalls = this.stalls;
    this.stalls = [];
    for (const rule of this.rules) {
      if (!rule.enabled) continue;
      let obs: Observation[];
      try {
        obs = await this.observe(rule, end, now, stalls);
        this.errors.delete(rule.name);
      } catch (err) {
        this.errors.set(rule.name, (err as Error).message);
        continue;
      }
      let groups = this.state.get(rule.name);
      if (!groups) {
        groups = new Map();
        this.state.set(rule.name, groups);
      }
      const seen = new Set<string>();
      for (const o of obs) {
        const key = keyOf(o.tags);
        seen.add(key);
        let g = groups.get(key);
        if (!g) {
          if (!o.cond) continue; // a group is kept from its first trouble on
          if (groups.size >= MAX_GROUPS) {
            this.dropped.set(rule.name, (this.dropped.get(rule.name) ?? 0) + 1);
            continue;
          }
          g = {
            tags: o.tags,
            state: 'ok',
            cond: false,
            value: null,
            message: '',
            since: o.since,
            changed: 0,
            seen: now,
            notified: 0,
            repeats: 0,
          };
          groups.set(key, g);
        }
        const was = g.state;
        const c = this.step(rule, g, o, now);
        if (c) changes.push(c);
        if (g.state !== was) this.dirty = true;
      }
      // groups with nothing new: time still passes for `for`, and for reminders
      for (const [key, g] of groups) {
        if (seen.has(key)) continue;
        const was = g.state;
        const c = this.step(rule, g, undefined, now);
        if (c) changes.push(c);
        if (g.state !== was) this.dirty = true;
      }
    }
    if (changes.length > 0) {
      for (const c of changes) notice(`alert ${changeLine(c)}`);
      this.history.push(...changes.filter((c) => c.renotify === 0));
      if (this.history.length > HISTORY) this.history = this.history.slice(-HISTORY);
      for (const n of this.notifiers) n.send(changes);
    }
    // the file follows every move between states (values and reminders are kept at close)
    if (this.dirty || changes.length > 0) this.save();
    return changes;
  }

  /** Moves one group along its states; returns the change to notify, if any. */
  private step(rule: Rule, g: Group, o: Observation | undefined, now: number): Change | undefined {
    if (o) {
      if (o.cond !== undefined) {
        g.cond = o.cond;
        g.value = o.value;
        g.seen = now;
        g.message = o.message;
        g.threshold = o.threshold;
      }
      g.tags = o.tags;
    }
    const since = o?.since ?? now;
    const change = (state: 'firing' | 'resolved', repeats = 0): Change => ({
      alert: rule.name,
      state,
      severity: rule.severity,
      group: g.tags,
      value: g.value,
      threshold: g.threshold ?? null,
      op: OPS[rule.builtin ?? ''] ?? (rule.above !== undefined ? 'above' : rule.below !== undefined ? 'below' : null),
      since: g.since,
      at: now,
      message: g.message,
      link: linkOf(g.tags),
      renotify: repeats,
    });
    const fire = (): Change => {
      g.state = 'firing';
      g.changed = now;
      g.notified = now;
      g.repeats = 0;
      return change('firing');
    };
    const remind = (): Change | undefined => {
      if (rule.renotify <= 0 || now - g.notified < rule.renotify) return undefined;
      g.notified = now;
      return change('firing', ++g.repeats);
    };
    // a stall is an instant: it fires as it arrives; `for` is how long it stays without another
    if (rule.builtin === 'event-loop-stall') {
      if (o?.cond) {
        if (g.state === 'firing') {
          g.since = Math.max(g.since, o.since);
          return undefined;
        }
        g.since = o.since;
        return fire();
      }
      if (g.state !== 'firing') return undefined;
      if (now - g.since >= rule.for) return this.resolve(g, now, change);
      return remind();
    }
    switch (g.state) {
      case 'ok':
        if (!g.cond) return undefined;
        g.state = 'pending';
        g.since = since;
        return now - g.since >= rule.for ? fire() : undefined;
      case 'pending':
        if (!g.cond) {
          g.state = 'ok';
          return undefined;
        }
        return now - g.since >= rule.for ? fire() : undefined;
      case 'firing':
        if (g.cond) return remind();
        g.state = 'clearing';
        g.since = since;
        return now - g.since >= rule.for ? this.resolve(g, now, change) : undefined;
      case 'clearing':
        if (g.cond) {
          g.state = 'firing';
          return undefined;
        }
        return now - g.since >= rule.for ? this.resolve(g, now, change) : undefined;
    }
  }

  private resolve(g: Group, now: number, change: (s: 'resolved') => Change): Change {
    g.state = 'ok';
    g.changed = now;
    g.cond = false;
    return change('resolved');
  }

  /** What each rule sees now, per group. */
  private async observe(rule: Rule, end: number, now: number, stalls: StatsdEvent[]): Promise<Observation[]> {
    switch (rule.builtin) {
      case undefined:
        return this.threshold(rule, end);
      case 'heartbeat-failing':
        return this.probes(now);
      case 'instance-down':
        return this.instances(rule, end, now);
      case 'event-loop-stall':
        return stalls.map((e) => {
          const tags = parseTags(e.tags);
          const by = rule.by ?? [...IDENTITY];
          const ms = /(\d+(?:\.\d+)?) ?ms/.exec(e.text);
          return {
            tags: Object.fromEntries(by.filter((k) => tags[k] !== undefined).map((k) => [k, tags[k] as string])),
            cond: true,
            value: ms ? Number(ms[1]) : null,
            threshold: null,
            message: `${e.title}: ${e.text}`.slice(0, 500),
            since: Math.min(now, (e.ts ?? now / 1000) * 1000),
          };
        });
      case 'agent-store': {
        const st = this.host.store?.status;
        if (!st) return [];
        return [
          {
            tags: {},
            cond: !st.ok,
            value: null,
            threshold: null,
            message: st.ok ? 'the store writes again' : `the store cannot write: ${st.error ?? 'unknown error'}`,
            since: now, // a status read now, not a window's value
          },
        ];
      }
      case 'agent-exporter':
        return this.host.exporters.map((e) => {
          const failing = e.status.last_error !== undefined && e.status.queued > 0;
          return {
            tags: { exporter: e.name },
            cond: failing,
            value: e.status.queued,
            threshold: null,
            message: failing
              ? `cannot send (${e.status.last_error}); ${e.status.queued} batches wait in the spool`
              : 'sending again; the spool is drained',
            since: now, // a status read now, not a window's value
          };
        });
    }
  }

  /** A threshold rule: the value of the last window per group, through `/api/v1/query`'s own code. */
  private async threshold(rule: Rule, end: number): Promise<Observation[]> {
    const reader = this.host.reader;
    if (!reader) throw new Error('no store to query (--store off)');
    const iv = this.o.window;
    const p = new URLSearchParams({ name: rule.metric as string, from: String(end - 3 * iv), to: String(end), step: `${iv}ms` });
    if (rule.agg) p.set('agg', rule.agg);
    if (rule.by) p.set('by', rule.by.join(','));
    if (rule.tags)
      p.set(
        'tags',
        Object.entries(rule.tags)
          .map(([k, v]) => `${k}:${v}`)
          .join(','),
      );
    const [status, body] = await handleApi(reader, '/api/v1/query', p, end, this.o.limits && { ...this.o.limits, started: Date.now() });
    if (status !== 200) throw new Error(`query ${p}: ${(body as { error?: string }).error ?? status}`);
    const r = body as {
      agg: string;
      t: number[];
      step: number;
      series: Array<{ tags: Record<string, string>; values: Array<number | null> }>;
    };
    return r.series.map((s) => {
      let i = s.values.length - 1;
      while (i >= 0 && s.values[i] === null) i--;
      const v = i >= 0 ? (s.values[i] as number) : null;
      const limit = (rule.above ?? rule.below) as number;
      const cond = v === null ? undefined : rule.above !== undefined ? v > rule.above : v < limit;
      const op = rule.above !== undefined ? 'above' : 'below';
      return {
        tags: s.tags,
        cond,
        value: v === null ? null : round(v),
        threshold: limit,
        message: v === null ? '' : `${rule.metric} ${r.agg} ${round(v)} ${cond ? op : `not ${op}`} ${limit}`,
        // observed at the window's end (a gauge is a level at its window's end): `for` counts from there
        since: i >= 0 ? (r.t[i] as number) * 1000 : end,
      };
    });
  }

  /**
   * heartbeat-failing: each probed target's health as the store keeps it from its probes (what
   * `/api/v1/instances` and the dashboard's badge say): `down` holds, `up` clears; between probes
   * nothing changes. Only the probed instances are read (the store cuts the rest in SQL).
   */
  private async probes(now: number): Promise<Observation[]> {
    const reader = this.host.reader;
    if (!reader) throw new Error('no store to read probes from (--store off)');
    const out: Observation[] = [];
    const list = reader.listInstances ? (await reader.listInstances({ probed: true })).instances : await reader.instances();
    for (const i of list) {
      if (i.health !== 'up' && i.health !== 'down') continue;
      const name = i.target ?? i.key;
      out.push({
        tags:
          i.target !== undefined
            ? { target: i.target }
            : Object.fromEntries(
                Object.entries(i)
                  .filter(([k]) => (IDENTITY as readonly string[]).includes(k))
                  .map(([k, v]) => [k, String(v)]),
              ),
        cond: i.health === 'down',
        value: i.health === 'up' ? 1 : 0,
        threshold: 1,
        message:
          i.health === 'down'
            ? `the heartbeat probe of ${name} fails${i.reason ? `: ${i.reason}` : ''}`
            : `the heartbeat probe of ${name} answers`,
        since: now,
      });
    }
    return out;
  }

  /**
   * Each group's last report (the latest of its instances'), and the interval learned from it, kept up to date
   * from what the store heard since the last look: a store that lists by `seenSince` answers the instances heard
   * from since then (none, on a quiet agent; each only once, however many there are); another is read whole.
   */
  private async lastSeen(rule: Rule, reader: StoreReader, end: number, now: number): Promise<Map<string, Seen>> {
    let idx = this.seen.get(rule.name);
    if (!idx) {
      idx = { groups: new Map(), groupOf: new Map(), since: Number.NEGATIVE_INFINITY, end };
      this.seen.set(rule.name, idx);
    }
    // a window that ends before the last one (the clock stepped back): its rows may be older than the mark; read all
    if (end < idx.end) idx.since = Number.NEGATIVE_INFINITY;
    idx.end = end;
    let since = idx.since;
    const by = rule.by ?? [...IDENTITY];
    const state = this.state.get(rule.name);
    const whole = !reader.listInstances;
    const list = reader.listInstances
      ? (await reader.listInstances(Number.isFinite(since) ? { seenSince: since + 1 } : {})).instances
      : await reader.instances();
    // each group's latest in this read first (its interval is the step between reads, not between its instances)
    const touched: Seen[] = [];
    for (const i of list) {
      let key = idx.groupOf.get(i.key);
      let tags: Record<string, string> | undefined;
      if (key === undefined) {
        tags = groupTags(i, by);
        key = keyOf(tags);
        // instance keys come and go (a new pid each restart): the cache starts afresh past its bound
        if (idx.groupOf.size >= GROUP_OF) idx.groupOf.clear();
        idx.groupOf.set(i.key, key);
      }
      let l = idx.groups.get(key);
      if (!l) {
        // a state kept over a restart brings the group's interval with it
        const g = state?.get(key);
        l = { key, tags: tags ?? groupTags(i, by), last: g?.last ?? i.last_seen, interval: g?.interval, read: Number.NEGATIVE_INFINITY };
        idx.groups.set(key, l);
      }
      if (l.read === Number.NEGATIVE_INFINITY) touched.push(l);
      if (i.last_seen > l.read) l.read = i.last_seen;
      if (i.last_seen > since) since = i.last_seen;
    }
    // a window's rows are written in one transaction, and windows in order (held ones too, before the next): a row
    // written after this read carries a later window's end, so the next read asks for rows past the latest read.
    // Never past this window's end: a row from a clock ahead would hide the rows after it.
    idx.since = Math.min(since, end);
    for (const l of touched) {
      const last = l.read;
      l.read = Number.NEGATIVE_INFINITY;
      if (last > l.last) l.interval = Math.max(this.o.window, Math.min(l.interval ?? Number.POSITIVE_INFINITY, last - l.last));
      // a whole list: each group's latest is the list's (it is lower when its latest instance is gone)
      if (last > l.last || whole) l.last = last;
    }
    // a whole list: a group none of whose instances is listed is gone
    if (whole && touched.length < idx.groups.size) {
      const listed = new Set(touched);
      for (const [key, l] of idx.groups) if (!listed.has(l)) idx.groups.delete(key);
    }
    // a group whose latest report is past --instance-retention is gone, as its instances are from the store's list
    if (!whole) {
      const gone = now - (this.o.instanceRetention ?? 3_600_000);
      for (const [key, l] of idx.groups) if (l.last < gone) idx.groups.delete(key);
    }
    return idx.groups;
  }

  /**
   * instance-down: a group is down when none of its instances has reported for its interval × `missed`. Observed:
   * the groups down, and those with a state; a group that reports and never was in trouble costs a comparison.
   * Past MAX_GROUPS, a newly down group is counted in `groups_dropped` without being looked at further.
   */
  private async instances(rule: Rule, end: number, now: number): Promise<Observation[]> {
    const reader = this.host.reader;
    if (!reader) throw new Error('no store to read instances from (--store off)');
    const index = await this.lastSeen(rule, reader, end, now);
    const groups = this.state.get(rule.name) ?? new Map<string, Group>();
    const missed = rule.missed ?? 3;
    // until an instance has reported twice, its interval is taken as the library's default (10 s)
    const first = Math.max(this.o.window, 10_000);
    const observe = (l: Seen, g: Group | undefined): Observation | undefined => {
      if (g) {
        g.last = l.last;
        g.interval = l.interval;
      }
      const deadline = (l.interval ?? first) * missed;
      const silent = now - l.last;
      if (silent > GONE && (!g || g.state === 'ok')) return undefined;
      const down = silent > deadline;
      return {
        tags: l.tags,
        cond: down,
        value: round(silent / 1000),
        threshold: deadline / 1000,
        message: down
          ? `no report for ${round(silent / 1000)} s (interval ${(l.interval ?? 10_000) / 1000} s × ${missed})`
          : 'reporting again',
        since: down ? l.last + deadline : l.last,
      };
    };
    const out: Observation[] = [];
    // the groups with a state: each one's observation, down or not
    for (const [key, g] of groups) {
      const l = index.get(key);
      const o = l && observe(l, g);
      if (o) out.push(o);
    }
    // the others: only a group down now starts a state (evaluate skips one that is not), while MAX_GROUPS has room
    let room = MAX_GROUPS - groups.size;
    let dropped = 0;
    for (const l of index.values()) {
      const silent = now - l.last;
      if (silent <= (l.interval ?? first) * missed || silent > GONE || groups.has(l.key)) continue;
      if (room <= 0) {
        dropped++;
        continue;
      }
      room--;
      out.push(observe(l, undefined) as Observation);
    }
    if (dropped > 0) this.dropped.set(rule.name, (this.dropped.get(rule.name) ?? 0) + dropped);
    return out;
  }

  /** instance-down's index of each group's last report, per rule */
  private readonly seen = new Map<string, { groups: Map<string, Seen>; groupOf: Map<string, string>; since: number; end: number }>();

  /** `GET /api/v1/alerts`: every rule with its groups, what fires now, the last changes, the notifiers' queues. */
  view(): AlertsView {
    const firing: AlertsView['firing'] = [];
    const rules = this.rules.map((r) => {
      const groups = [...(this.state.get(r.name)?.values() ?? [])].map(
        (g): GroupView => ({
          tags: g.tags,
          state: g.state,
          value: g.value,
          message: g.message,
          since: g.since,
          changed: g.changed,
          seen: g.seen,
        }),
      );
      for (const g of groups)
        if (g.state === 'firing' || g.state === 'clearing')
          firing.push({
            alert: r.name,
            severity: r.severity,
            group: g.tags,
            value: g.value,
            message: g.message,
            since: g.changed,
            link: linkOf(g.tags),
          });
      return {
        name: r.name,
        ...(r.builtin ? { builtin: r.builtin } : {}),
        ...(r.metric ? { metric: r.metric } : {}),
        ...(r.agg ? { agg: r.agg } : {}),
        ...(r.tags ? { tags: r.tags } : {}),
        ...(r.by ? { by: r.by } : {}),
        ...(r.above !== undefined ? { above: r.above } : {}),
        ...(r.below !== undefined ? { below: r.below } : {}),
        ...(r.missed !== undefined ? { missed: r.missed } : {}),
        for: r.for,
        severity: r.severity,
        renotify: r.renotify,
        enabled: r.enabled,
        source: r.source,
        ...(this.errors.has(r.name) ? { error: this.errors.get(r.name) } : {}),
        ...(this.dropped.has(r.name) ? { groups_dropped: this.dropped.get(r.name) } : {}),
        groups,
      };
    });
    return {
      firing,
      rules,
      history: this.history,
      notifiers: this.notifiers.map((n) => ({ name: n.name, type: n.spec.type, ...n.status })),
      stalls_dropped: this.stallsDropped,
    };
  }

  /** `ekg_agent_alerts_firing{alert,severity}`: groups of each enabled rule now firing. */
  metricLines(): string[] {
    const out = [
      '# HELP ekg_agent_alerts_firing Groups of each alert rule now firing (docs/agent-alerts.md).',
      '# TYPE ekg_agent_alerts_firing gauge',
    ];
    for (const r of this.rules) {
      if (!r.enabled) continue;
      let n = 0;
      for (const g of this.state.get(r.name)?.values() ?? []) if (g.state === 'firing' || g.state === 'clearing') n++;
      out.push(`ekg_agent_alerts_firing{alert="${escapeLabel(r.name)}",severity="${r.severity}"} ${n}`);
    }
    return out;
  }

  private load(): void {
    let raw: string;
    try {
      raw = readFileSync(this.file, 'utf8');
    } catch {
      return;
    }
    this.loaded = true;
    try {
      const s = JSON.parse(raw) as { rules?: Record<string, Record<string, Group>>; history?: Change[] };
      const names = new Set(this.rules.map((r) => r.name));
      for (const [name, groups] of Object.entries(s.rules ?? {})) {
        if (!names.has(name)) continue;
        this.state.set(name, new Map(Object.entries(groups)));
      }
      this.history = (s.history ?? []).slice(-HISTORY);
    } catch (err) {
      report('EKG_AGENT_ERR_ALERTS', `alerts: ${this.file} is unreadable (${(err as Error).message}); alert states start afresh`);
    }
  }

  private save(): void {
    const rules: Record<string, Record<string, Group>> = {};
    for (const [name, groups] of this.state) if (groups.size > 0) rules[name] = Object.fromEntries(groups);
    // nothing to keep, nothing written (an agent with no trouble yet leaves no file)
    if (!this.loaded && Object.keys(rules).length === 0 && this.history.length === 0) return;
    this.loaded = true;
    this.dirty = false;
    try {
      mkdirSync(this.o.data, { recursive: true });
      writeFileSync(`${this.file}.tmp`, JSON.stringify({ version: 1, rules, history: this.history }));
      renameSync(`${this.file}.tmp`, this.file);
    } catch (err) {
      this.errors.set('(state)', `cannot save ${this.file}: ${(err as Error).message}`);
    }
  }

  /** Waits for a running evaluation, keeps the state, and gives each notifier one more try at what it holds. */
  async close(): Promise<void> {
    this.closed = true;
    await this.running;
    this.save();
    await Promise.all(this.notifiers.map((n) => n.close()));
  }
}
