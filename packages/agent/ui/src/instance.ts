import { instanceFields, isHealthy } from '../../src/model/instance.js';
import { QUANTILES } from '../../src/model/series.js';
import { formatTags } from '../../src/model/tags.js';
import {
  type AgentEvent,
  type AlertChange,
  type AlertsView,
  api,
  batch,
  type Instance,
  type QueryResult,
  query,
  type SeriesInfo,
} from './api.js';
import { type Chart, chart } from './chart.js';
import { h } from './dom.js';
import { ago, displayUnit, format, type Unit } from './format.js';
import type { Ctx, View } from './view.js';

interface Line {
  label: string;
  name: string;
  /** within a bucket for one instance */
  agg: string;
  /** across the instances of a service (default: agg) */
  fleet?: string;
  scale?: number;
  /** fetched but not drawn: its latest value is written under the chart (a bound far above the lines) */
  note?: string;
}

interface ChartDef {
  id: string;
  title: string;
  /** only where the values are not in their series' own unit (the agent's, from the catalogue) under the aggregation */
  unit?: Unit;
  stacked?: boolean;
  lines: Line[];
  /**
   * Lines from the series this instance has: one per name that matches, labelled by its capture (a heap space, a GC
   * kind, a status class: whatever the app reports, never a list copied here); `last`: the label drawn on top.
   */
  each?: { name: RegExp; agg: string; fleet?: string; last?: string };
}

/**
 * The runtime's vital signs, chart by chart: names as ekg's catalogue spells them; units, GC kinds, status classes
 * and quantiles come from the agent (the series' units and names, and its model), not from here.
 */
export const CHARTS: ChartDef[] = [
  {
    id: 'eventloop',
    title: 'Event-loop delay',
    lines: [
      { label: 'p50', name: 'runtime.eventloop.delay.p50', agg: 'avg', fleet: 'max' },
      { label: 'p99', name: 'runtime.eventloop.delay.p99', agg: 'max' },
      { label: 'max', name: 'runtime.eventloop.delay.max', agg: 'max' },
    ],
  },
  {
    id: 'elu',
    title: 'Event-loop utilization',
    lines: [{ label: 'utilization', name: 'runtime.eventloop.utilization', agg: 'avg' }],
  },
  {
    id: 'heap',
    title: 'Heap',
    lines: [
      { label: 'used', name: 'runtime.memory.heap.used', agg: 'avg', fleet: 'sum' },
      { label: 'total', name: 'runtime.memory.heap.total', agg: 'avg', fleet: 'sum' },
      // 4 GiB on the same axis would flatten used and total to its floor
      { label: 'limit', name: 'runtime.memory.heap.limit', agg: 'avg', fleet: 'sum', note: 'heap limit' },
    ],
  },
  {
    id: 'spaces',
    title: 'Heap used by space',
    stacked: true,
    lines: [],
    each: { name: /^runtime\.memory\.spaces\.([^.]+)\.used$/, agg: 'avg', fleet: 'sum' },
  },
  {
    id: 'memory',
    title: 'Process memory',
    lines: [
      { label: 'RSS', name: 'runtime.memory.rss', agg: 'avg', fleet: 'sum' },
      { label: 'external', name: 'runtime.memory.external', agg: 'avg', fleet: 'sum' },
      { label: 'array buffers', name: 'runtime.memory.arrayBuffers', agg: 'avg', fleet: 'sum' },
    ],
  },
  {
    id: 'gcpause',
    title: 'GC pause time by kind',
    stacked: true,
    lines: [],
    each: { name: /^runtime\.gc\.([^.]+)\.pause$/, agg: 'rate' },
  },
  {
    id: 'gccount',
    title: 'GC collections by kind',
    stacked: true,
    lines: [],
    each: { name: /^runtime\.gc\.([^.]+)\.count$/, agg: 'rate' },
  },
  {
    id: 'cpu',
    title: 'CPU',
    unit: 'percent',
    stacked: true,
    // CPU ms per second of wall time / 10 = % of one core
    lines: [
      { label: 'user', name: 'runtime.cpu.user', agg: 'rate', scale: 0.1 },
      { label: 'system', name: 'runtime.cpu.system', agg: 'rate', scale: 0.1 },
    ],
  },
  {
    id: 'rps',
    title: 'HTTP requests by status class',
    stacked: true,
    lines: [],
    // the stack rises from 2xx; informational replies, rare, on top
    each: { name: /^http\.requests\.(\dxx)$/, agg: 'rate', last: '1xx' },
  },
  {
    id: 'latency',
    title: 'HTTP latency',
    lines: [
      { label: 'p50', name: 'http.duration.p50', agg: 'avg', fleet: 'max' },
      { label: 'p90', name: 'http.duration.p90', agg: 'max' },
      { label: 'p99', name: 'http.duration.p99', agg: 'max' },
    ],
  },
  {
    id: 'active',
    title: 'Active resources',
    lines: [
      { label: 'active', name: 'runtime.active.total', agg: 'avg', fleet: 'sum' },
      { label: 'open fds', name: 'runtime.resources.fds.open', agg: 'avg', fleet: 'sum' },
      { label: 'in-flight requests', name: 'http.inFlight', agg: 'max', fleet: 'sum' },
    ],
  },
];

/** The lines `each` draws from the series names the instance has (sorted), `last` on top. */
function linesOf(names: string[], each: NonNullable<ChartDef['each']>): Line[] {
  const lines: Line[] = [];
  for (const name of names) {
    const label = each.name.exec(name)?.[1];
    if (label !== undefined) lines.push({ label, name, agg: each.agg, fleet: each.fleet });
  }
  const top = lines.findIndex((l) => l.label === each.last);
  if (top !== -1) lines.push(...lines.splice(top, 1));
  return lines;
}

/** The last value `r`'s first series has, or null. */
function latest(r: QueryResult | undefined): number | null {
  const vs = r?.series[0]?.values ?? [];
  for (let i = vs.length - 1; i >= 0; i--) if (vs[i] !== null && vs[i] !== undefined) return vs[i] as number;
  return null;
}

/**
 * The app's reporting interval and the agent's stored step, as one gauge every app sends each
 * window shows them: the agent answers at its own window at least, and stores a gauge only in the
 * windows the app reported in. A note when the app reports less often than the agent's windows:
 * counters and rates then have empty windows between values.
 */
/** The middle value (windows vary a little around the interval; a first or stalled one is longer). */
const median = (vs: number[]): number | undefined => (vs.length ? [...vs].sort((a, b) => a - b)[Math.floor(vs.length / 2)] : undefined);

export function intervalNote(appMs: number | undefined, windowMs: number | undefined): string | undefined {
  if (!appMs || !windowMs || Math.max(appMs, windowMs) < Math.min(appMs, windowMs) * 1.5) return undefined;
  const s = (ms: number) => `${Math.round(ms / 100) / 10} s`;
  return `This app reports every ${s(appMs)} but the agent's windows here are ${s(windowMs)}: its counters are spread over the windows each report covers and its gauges held until the next (docs/time-model.md). Set the app's EKG_INTERVAL and the agent's --flush-interval alike for the finest resolution.`;
}

/** Values of `r`'s first series on the time axis `t` (results of one chart share it; this guards a mismatch). */
function on(t: number[], r: QueryResult | undefined, scale = 1): Array<number | null> {
  const s = r?.series[0];
  if (!r || !s) return t.map(() => null);
  const scaled = (v: number | null) => (v === null ? null : v * scale);
  if (r.t.length === t.length && r.t[0] === t[0]) return s.values.map(scaled);
  const at = new Map(r.t.map((x, i) => [x, s.values[i] ?? null]));
  return t.map((x) => scaled(at.get(x) ?? null));
}

/**
 * One instance (`#/instance?key=service=api,host=h,pid=1`) or a whole service
 * (`#/service?name=api`, instances merged: sums of memory and rates, the worst instance's delay,
 * and true percentiles of distributions from their merged sketches).
 */
export function instanceView(root: HTMLElement, ctx: Ctx, mode: 'instance' | 'service'): View {
  const key = mode === 'instance' ? (ctx.params.get('key') ?? '') : `service=${ctx.params.get('name') ?? ''}`;
  /** the instance's identity tags (`service=api,host=h,pid=1` → {service, host, pid}): the agent's model reads the key */
  const identity: Record<string, string | undefined> = instanceFields(key);
  /** the query's tag filter (`host:h,pid:1,service:api`), written by the model's one tags format */
  const tags = formatTags(identity as Record<string, string>);
  const meta = h('p', { class: 'meta' });
  const grid = h('div', { class: 'grid', id: 'charts' });
  const distTitle = h('h2', { class: 'section-title', hidden: true }, 'Distributions (percentiles from merged sketches)');
  const distGrid = h('div', { class: 'grid', id: 'distributions' });
  const title =
    mode === 'instance'
      ? `Instance ${Object.entries(identity)
          .map(([k, v]) => `${k} ${v}`)
          .join(' · ')}`
      : `Service ${ctx.params.get('name')}`;
  root.append(h('h1', {}, title), meta, grid, distTitle, distGrid);
  /** an alert's group is this instance's when each of its tags is the instance's (a service view: the same service) */
  const concerns = (c: AlertChange): boolean => {
    const g = Object.entries(c.group);
    if (g.length === 0) return false;
    return mode === 'service' ? c.group.service === identity.service : g.every(([k, v]) => identity[k] === v);
  };
  const charts = new Map<string, Chart>();
  /** the series this instance (or service) has: looked up once per view */
  let found: SeriesInfo[] | undefined;
  const zoom = (from: number, to: number) => ctx.zoom(from, to);

  /**
   * The charts to draw: the fixed ones, then (once the series are known) those whose lines are the series the
   * instance has, and one per distribution with the agent's quantiles. Units are the series' own (the catalogue's).
   */
  function defsOf(f: SeriesInfo[] | undefined): ChartDef[] {
    if (!f) return CHARTS.filter((d) => !d.each);
    const names = [...new Set(f.map((s) => s.name))].sort();
    const unitOf = (name: string | undefined, agg: string) => displayUnit(f.find((s) => s.name === name)?.unit, agg);
    const dists = names.filter((n) => f.some((s) => s.name === n && s.kind === 'distribution'));
    return [
      ...CHARTS.map((d) => {
        const e = d.each;
        const lines = e ? linesOf(names, e) : d.lines;
        return { ...d, lines, unit: d.unit ?? unitOf(lines[0]?.name, lines[0]?.agg ?? '') };
      }),
      ...dists.map((n) => ({
        id: `dist:${n}`,
        title: n,
        // a StatsD timer (|ms) that ekg does not define has no unit: milliseconds, as StatsD says
        unit: displayUnit(f.find((s) => s.name === n)?.unit ?? 'ms', 'p50'),
        lines: QUANTILES.map(({ name: p }) => ({ label: p, name: n, agg: p })),
      })),
    ];
  }

  return {
    async refresh() {
      const { from, to, step } = ctx.range();
      const known = found;
      const queryOf = (l: Line) => ({ name: l.name, tags, agg: mode === 'service' ? (l.fleet ?? l.agg) : l.agg, by: '', from, to, step });
      // every chart's queries in one request, beside the instance list and (the first time) the series
      const first = defsOf(known);
      const [insts, f, rs, evs, changes, appInterval, agentWindow] = await Promise.all([
        // only this instance, or this service's (the whole list is capped: docs/limits.md)
        api<{ instances: Instance[] }>(
          '/api/v1/instances',
          mode === 'instance' ? { instance: key, limit: 1 } : { service: ctx.params.get('name') ?? '', limit: 10_000 },
        ),
        known ?? api<{ series: SeriesInfo[] }>('/api/v1/series', { tags, limit: 5000 }).then((r) => r.series),
        batch(first.flatMap((d) => d.lines.map(queryOf))),
        // stalls the app reported: a marker on every chart
        api<{ events: AgentEvent[] }>('/api/v1/events', {
          from: Math.round(from),
          to: Math.round(to),
          ...(mode === 'instance' ? { instance: key } : { service: ctx.params.get('name') ?? '' }),
        }).then(
          (r) => r.events,
          () => [] as AgentEvent[],
        ),
        // alerts of this instance (or service) that fired or resolved in the range: a solid mark on every chart
        api<AlertsView>('/api/v1/alerts').then(
          (v) => v.history.filter((c) => c.at >= from && c.at <= to && concerns(c)),
          () => [] as AlertChange[],
        ),
        // the app's own window (the library's ekg.interval_ms gauge) and the agent's, for the interval note
        mode === 'instance'
          ? query({ name: 'ekg.interval_ms', tags, agg: 'last', by: '', from, to, step }).then(
              (r) => median((r.series[0]?.values ?? []).filter((v): v is number => typeof v === 'number')),
              () => undefined,
            )
          : undefined,
        mode === 'instance'
          ? api<{ window_ms?: number }>('/api/v1/self').then(
              (r) => r.window_ms,
              () => undefined,
            )
          : undefined,
      ]);
      found = f;
      let defs = first;
      let results = rs;
      if (!known) {
        const more = defsOf(f).filter((d) => !first.some((x) => x.id === d.id));
        results = results.concat(await batch(more.flatMap((d) => d.lines.map(queryOf))));
        defs = defs.concat(more);
      }
      const mine = insts.instances.filter((i) => (mode === 'instance' ? i.key === key : i.service === ctx.params.get('name')));
      const health = mine.map((i) => i.health);
      const note = mode === 'instance' ? intervalNote(appInterval, agentWindow) : undefined;
      meta.replaceChildren(
        h(
          'span',
          {},
          mode === 'service' ? 'Instances ' : 'Health ',
          h('b', {}, mode === 'service' ? String(mine.length) : (health[0] ?? 'unknown')),
        ),
        ...(mode === 'service' ? [h('span', {}, 'Healthy ', h('b', {}, String(health.filter(isHealthy).length)))] : []),
        h('span', {}, 'Last seen ', h('b', {}, mine.length ? ago(Math.max(...mine.map((i) => i.last_seen))) : 'never')),
        ...(mine[0]?.reason ? [h('span', { class: 'error' }, mine[0].reason)] : []),
        ...(note ? [h('span', { class: 'note', id: 'interval-note', role: 'note' }, note)] : []),
        ...(evs.length
          ? [
              h(
                'span',
                { class: 'error', id: 'stalls' },
                `${evs.length} stall${evs.length > 1 ? 's' : ''} in this range; last: ${(evs.at(-1) as AgentEvent).text}`,
              ),
            ]
          : []),
      );
      const names = new Set(f.map((s) => s.name));
      // answers in the order asked: each chart takes its lines' slice; charts are placed in CHARTS order
      let k = 0;
      const byId = new Map<string, { def: ChartDef; rs: Array<QueryResult | undefined> }>();
      for (const d of defs) {
        byId.set(d.id, { def: d, rs: results.slice(k, k + d.lines.length) });
        k += d.lines.length;
      }
      for (const d of defsOf(f)) {
        const got = byId.get(d.id);
        if (!got) continue;
        const all = got.def.lines.map((l, i) => [l, got.rs[i]] as const).filter(([l]) => names.has(l.name));
        const keep = all.filter(([l]) => !l.note);
        if (keep.length === 0 && !charts.has(d.id)) continue;
        let c = charts.get(d.id);
        if (!c) {
          c = chart({ title: d.title, unit: d.unit ?? '', stacked: d.stacked, labels: keep.map(([l]) => l.label), onZoom: zoom });
          charts.set(d.id, c);
          (d.id.startsWith('dist:') ? distGrid : grid).append(c.el);
        }
        const t = keep.find(([, r]) => r)?.[1]?.t ?? [];
        c.setData(
          t,
          keep.map(([l, r]) => on(t, r, l.scale)),
        );
        c.setNote(
          all
            .filter(([l]) => l.note)
            .map(([l, r]) => `${l.note} ${format(latest(r), d.unit)}`)
            .join(' · '),
        );
        c.setMarkers(evs.map((e) => e.t));
        c.setAlertMarks(changes.map((x) => ({ t: x.at / 1000, state: x.state })));
      }
      distTitle.hidden = distGrid.childElementCount === 0;
      if (charts.size === 0) grid.replaceChildren(h('div', { class: 'empty' }, `Nothing stored for ${key} in this range.`));
    },
    destroy() {
      for (const c of charts.values()) c.destroy();
    },
  };
}
