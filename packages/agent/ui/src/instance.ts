import { api, type Instance, type QueryResult, query, type SeriesInfo } from './api.js';
import { type Chart, chart } from './chart.js';
import { h } from './dom.js';
import { ago, type Unit } from './format.js';
import { type Ctx, filterOf, type View } from './view.js';

interface Line {
  label: string;
  name: string;
  /** within a bucket for one instance */
  agg: string;
  /** across the instances of a service (default: agg) */
  fleet?: string;
  scale?: number;
}

interface ChartDef {
  id: string;
  title: string;
  unit: Unit;
  stacked?: boolean;
  lines: Line[];
}

const GC_KINDS = ['minor', 'major', 'incremental', 'weakcb'];
const CLASSES = ['2xx', '3xx', '4xx', '5xx', '1xx'];

/** The runtime's vital signs, chart by chart: names as ekg's catalogue spells them. */
export const CHARTS: ChartDef[] = [
  {
    id: 'eventloop',
    title: 'Event-loop delay',
    unit: 'ms',
    lines: [
      { label: 'p50', name: 'runtime.eventloop.delay.p50', agg: 'avg', fleet: 'max' },
      { label: 'p99', name: 'runtime.eventloop.delay.p99', agg: 'max' },
      { label: 'max', name: 'runtime.eventloop.delay.max', agg: 'max' },
    ],
  },
  {
    id: 'elu',
    title: 'Event-loop utilization',
    unit: 'ratio',
    lines: [{ label: 'utilization', name: 'runtime.eventloop.utilization', agg: 'avg' }],
  },
  {
    id: 'heap',
    title: 'Heap',
    unit: 'bytes',
    lines: [
      { label: 'used', name: 'runtime.memory.heap.used', agg: 'avg', fleet: 'sum' },
      { label: 'total', name: 'runtime.memory.heap.total', agg: 'avg', fleet: 'sum' },
      { label: 'limit', name: 'runtime.memory.heap.limit', agg: 'avg', fleet: 'sum' },
    ],
  },
  { id: 'spaces', title: 'Heap used by space', unit: 'bytes', stacked: true, lines: [] },
  {
    id: 'memory',
    title: 'Process memory',
    unit: 'bytes',
    lines: [
      { label: 'RSS', name: 'runtime.memory.rss', agg: 'avg', fleet: 'sum' },
      { label: 'external', name: 'runtime.memory.external', agg: 'avg', fleet: 'sum' },
      { label: 'array buffers', name: 'runtime.memory.arrayBuffers', agg: 'avg', fleet: 'sum' },
    ],
  },
  {
    id: 'gcpause',
    title: 'GC pause time by kind',
    unit: 'ms_per_second',
    stacked: true,
    lines: GC_KINDS.map((k) => ({ label: k, name: `runtime.gc.${k}.pause`, agg: 'rate' })),
  },
  {
    id: 'gccount',
    title: 'GC collections by kind',
    unit: 'per_second',
    stacked: true,
    lines: GC_KINDS.map((k) => ({ label: k, name: `runtime.gc.${k}.count`, agg: 'rate' })),
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
    unit: 'per_second',
    stacked: true,
    lines: CLASSES.map((c) => ({ label: c, name: `http.requests.${c}`, agg: 'rate' })),
  },
  {
    id: 'latency',
    title: 'HTTP latency',
    unit: 'ms',
    lines: [
      { label: 'p50', name: 'http.duration.p50', agg: 'avg', fleet: 'max' },
      { label: 'p90', name: 'http.duration.p90', agg: 'max' },
      { label: 'p99', name: 'http.duration.p99', agg: 'max' },
    ],
  },
  {
    id: 'active',
    title: 'Active resources',
    unit: 'count',
    lines: [
      { label: 'active', name: 'runtime.active.total', agg: 'avg', fleet: 'sum' },
      { label: 'open fds', name: 'runtime.resources.fds.open', agg: 'avg', fleet: 'sum' },
      { label: 'in-flight requests', name: 'http.inFlight', agg: 'max', fleet: 'sum' },
    ],
  },
];

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
  const tags = filterOf(key);
  const meta = h('p', { class: 'meta' });
  const grid = h('div', { class: 'grid', id: 'charts' });
  const distTitle = h('h2', { class: 'section-title', hidden: true }, 'Distributions (percentiles from merged sketches)');
  const distGrid = h('div', { class: 'grid', id: 'distributions' });
  const title = mode === 'instance' ? `Instance ${key.replace(/,/g, ' · ').replace(/=/g, ' ')}` : `Service ${ctx.params.get('name')}`;
  root.append(h('h1', {}, title), meta, grid, distTitle, distGrid);

  const charts = new Map<string, Chart>();
  let spaces: string[] | undefined;
  let dists: SeriesInfo[] = [];
  const zoom = (from: number, to: number) => ctx.zoom(from, to);

  function ensure(id: string, make: () => Chart, parent: HTMLElement): Chart {
    let c = charts.get(id);
    if (!c) {
      c = make();
      charts.set(id, c);
      parent.append(c.el);
    }
    return c;
  }

  async function linesOf(def: ChartDef): Promise<Line[]> {
    if (def.id !== 'spaces') return def.lines;
    if (!spaces) {
      const s = await api<{ series: SeriesInfo[] }>('/api/v1/series', { match: 'runtime.memory.spaces.*.used', tags });
      spaces = [...new Set(s.series.map((x) => x.name))].sort();
    }
    return spaces.map((n) => ({ label: n.split('.')[3] as string, name: n, agg: 'avg', fleet: 'sum' }));
  }

  return {
    async refresh() {
      const { from, to, step } = ctx.range();
      const by = '';
      const [insts, found] = await Promise.all([
        api<{ instances: Instance[] }>('/api/v1/instances'),
        api<{ series: SeriesInfo[] }>('/api/v1/series', { tags, limit: 5000 }),
      ]);
      const mine = insts.instances.filter((i) => (mode === 'instance' ? i.key === key : i.service === ctx.params.get('name')));
      const health = mine.map((i) => i.health);
      meta.replaceChildren(
        h(
          'span',
          {},
          mode === 'service' ? 'Instances ' : 'Health ',
          h('b', {}, mode === 'service' ? String(mine.length) : (health[0] ?? 'unknown')),
        ),
        ...(mode === 'service'
          ? [h('span', {}, 'Healthy ', h('b', {}, String(health.filter((x) => x === 'up' || x === 'reporting').length)))]
          : []),
        h('span', {}, 'Last seen ', h('b', {}, mine.length ? ago(Math.max(...mine.map((i) => i.last_seen))) : 'never')),
        ...(mine[0]?.reason ? [h('span', { class: 'error' }, mine[0].reason)] : []),
      );
      dists = found.series.filter((s) => s.kind === 'distribution');
      const names = new Set(found.series.map((s) => s.name));
      await Promise.all(
        CHARTS.map(async (def) => {
          const lines = (await linesOf(def)).filter((l) => names.has(l.name));
          if (lines.length === 0 && !charts.has(def.id)) return;
          const c = ensure(
            def.id,
            () => chart({ title: def.title, unit: def.unit, stacked: def.stacked, labels: lines.map((l) => l.label), onZoom: zoom }),
            grid,
          );
          const rs = await Promise.all(
            lines.map((l) =>
              query({ name: l.name, tags, agg: mode === 'service' ? (l.fleet ?? l.agg) : l.agg, by, from, to, step }).catch(
                () => undefined,
              ),
            ),
          );
          const t = rs.find((r) => r)?.t ?? [];
          c.setData(
            t,
            lines.map((l, i) => on(t, rs[i], l.scale)),
          );
        }),
      );
      const distNames = [...new Set(dists.map((d) => d.name))].sort();
      distTitle.hidden = distNames.length === 0;
      await Promise.all(
        distNames.map(async (name) => {
          const c = ensure(
            `dist:${name}`,
            () =>
              chart({
                title: name,
                unit: (dists.find((d) => d.name === name)?.unit as Unit) ?? 'ms',
                labels: ['p50', 'p90', 'p99'],
                onZoom: zoom,
              }),
            distGrid,
          );
          const rs = await Promise.all(
            ['p50', 'p90', 'p99'].map((agg) => query({ name, tags, agg, by, from, to, step }).catch(() => undefined)),
          );
          const t = rs.find((r) => r)?.t ?? [];
          c.setData(
            t,
            rs.map((r) => on(t, r)),
          );
        }),
      );
      if (charts.size === 0) grid.replaceChildren(h('div', { class: 'empty' }, `Nothing stored for ${key} in this range.`));
    },
    destroy() {
      for (const c of charts.values()) c.destroy();
    },
  };
}
