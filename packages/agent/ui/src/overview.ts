import { HEALTHS, isHealthy } from '../../src/model/instance.js';
import { api, batch, type Instance, type QueryResult, type SeriesInfo } from './api.js';
import { sparkline } from './chart.js';
import { cssVar, h } from './dom.js';
import { ago, displayUnit, format, type Unit } from './format.js';
import { type Ctx, keyOf, type View } from './view.js';

/** The six vital signs each instance row carries as a sparkline (units: the agent's, from the catalogue). */
const SPARKS: Array<{ id: string; title: string; name: string; agg: string }> = [
  { id: 'elp99', title: 'Event loop p99', name: 'runtime.eventloop.delay.p99', agg: 'max' },
  { id: 'elu', title: 'Loop utilization', name: 'runtime.eventloop.utilization', agg: 'avg' },
  { id: 'heap', title: 'Heap used', name: 'runtime.memory.heap.used', agg: 'avg' },
  { id: 'rss', title: 'RSS', name: 'runtime.memory.rss', agg: 'avg' },
  { id: 'cpu', title: 'CPU', name: 'runtime.cpu.utilization', agg: 'avg' },
  { id: 'rps', title: 'Requests', name: 'http.requests.total', agg: 'rate' },
];

/** Instances the overview asks for: a table row each, with six sparklines; past it, the caption says how many there are. */
const MAX_ROWS = 500;

const COLUMNS: Array<{ id: string; title: string; num?: boolean }> = [
  { id: 'health', title: 'Health' },
  { id: 'service', title: 'Service' },
  { id: 'host', title: 'Host' },
  { id: 'pid', title: 'PID', num: true },
  { id: 'worker', title: 'Worker', num: true },
  { id: 'last_seen', title: 'Last seen' },
  ...SPARKS.map((s) => ({ id: s.id, title: s.title, num: true })),
];

interface Row {
  inst: Instance;
  sparks: Record<string, { values: Array<number | null>; last: number | null }>;
}

export function overview(root: HTMLElement, ctx: Ctx): View {
  const filter = h('input', {
    type: 'search',
    id: 'filter',
    placeholder: 'service, host, pid…',
    value: ctx.params.get('q') ?? '',
    'aria-label': 'Filter instances',
  });
  const tableWrap = h('div', { class: 'table-wrap' });
  root.append(
    h('h1', {}, 'Instances'),
    h('p', { class: 'sub' }, 'Every app instance this agent has heard from, with its health and vital signs over the selected range.'),
    h('div', { class: 'toolbar' }, h('label', {}, 'Filter', filter)),
    tableWrap,
  );
  let rows: Row[] = [];
  /** instances the agent has, when it answered only the first MAX_ROWS */
  let total: number | undefined;
  /** each spark's unit as the agent gives its series (`/api/v1/series`), asked until some instance has the series */
  const units = new Map<string, Unit>();
  filter.addEventListener('input', () => draw());
  filter.addEventListener('change', () => ctx.navigate({ q: filter.value || undefined }));

  const sortBy = () => ctx.params.get('sort') ?? 'health';
  const desc = () => ctx.params.get('dir') === 'desc';

  function value(r: Row, col: string): string | number {
    if (col === 'health') return HEALTHS.indexOf(r.inst.health);
    if (col === 'last_seen') return r.inst.last_seen;
    if (col in r.sparks) return r.sparks[col]?.last ?? Number.NEGATIVE_INFINITY;
    const v = (r.inst as unknown as Record<string, string | undefined>)[col] ?? '';
    return col === 'pid' || col === 'worker' ? Number(v) || 0 : v;
  }

  function draw(): void {
    const q = filter.value.trim().toLowerCase();
    const shown = rows.filter((r) => !q || `${r.inst.key} ${r.inst.health}`.toLowerCase().includes(q));
    const col = sortBy();
    const dir = desc() ? -1 : 1;
    shown.sort((a, b) => {
      const x = value(a, col);
      const y = value(b, col);
      const c = x < y ? -1 : x > y ? 1 : 0;
      return c !== 0 ? c * dir : a.inst.key.localeCompare(b.inst.key);
    });
    const now = Date.now();
    // worker and host columns only when some instance has one
    const cols = COLUMNS.filter(
      (c) => (c.id !== 'worker' && c.id !== 'host') || rows.some((r) => r.inst[c.id as 'worker' | 'host'] !== undefined),
    );
    const has = new Set(cols.map((c) => c.id));
    const head = h(
      'tr',
      {},
      ...cols.map((c) =>
        h(
          'th',
          { scope: 'col', 'aria-sort': c.id === col ? (desc() ? 'descending' : 'ascending') : undefined },
          h(
            'button',
            {
              type: 'button',
              onclick: () => ctx.navigate({ sort: c.id, dir: c.id === col && !desc() ? 'desc' : undefined }),
            },
            c.title,
          ),
        ),
      ),
    );
    const body = shown.map((r) => {
      const i = r.inst;
      const link = `#/instance?key=${encodeURIComponent(i.key)}`;
      return h(
        'tr',
        { class: isHealthy(i.health) ? undefined : i.health, 'data-key': i.key },
        h('td', {}, h('span', { class: `badge ${i.health}`, title: i.reason ?? '' }, i.health)),
        h('td', {}, i.service ? h('a', { href: `#/service?name=${encodeURIComponent(i.service)}` }, i.service) : (i.target ?? '–')),
        has.has('host') && h('td', {}, i.host ?? '–'),
        h('td', { class: 'num' }, h('a', { href: link, 'aria-label': `instance ${i.key}` }, i.pid ?? 'view')),
        has.has('worker') && h('td', { class: 'num' }, i.worker ?? '–'),
        h('td', { title: new Date(i.last_seen).toISOString() }, ago(i.last_seen, now)),
        ...SPARKS.map((s) => {
          const sp = r.sparks[s.id];
          const unit = units.get(s.id);
          const label = `${s.title} ${format(sp?.last ?? null, unit)}`;
          return h(
            'td',
            { class: 'spark num' },
            sparkline(sp?.values ?? [], i.health === 'down' ? cssVar('--bad') : cssVar('--c1'), label),
            h('span', {}, format(sp?.last ?? null, unit)),
          );
        }),
      );
    });
    const table = h(
      'table',
      { id: 'instances' },
      h(
        'caption',
        {},
        total === undefined
          ? `${shown.length} of ${rows.length} instances`
          : `${shown.length} of the first ${rows.length} instances by key, of ${total}: open a service (click its name) or the explorer for the rest`,
      ),
      h('thead', {}, head),
      h('tbody', {}, ...body),
    );
    tableWrap.replaceChildren(
      rows.length === 0
        ? h(
            'div',
            { class: 'empty' },
            'No instance has reported yet. Point an app at this agent: EKG_STATSD=udp://127.0.0.1:8125 node --import ekg-vitals/register app.js',
          )
        : table,
    );
  }

  return {
    async refresh() {
      const { from, to, step } = ctx.range();
      const [inst, results] = await Promise.all([
        api<{ instances: Instance[]; total?: number; truncated?: boolean }>('/api/v1/instances', { limit: MAX_ROWS }),
        batch(SPARKS.map((s) => ({ name: s.name, agg: s.agg, from, to, step }))),
        ...SPARKS.filter((s) => !units.has(s.id)).map((s) =>
          api<{ series: SeriesInfo[] }>('/api/v1/series', { match: s.name, limit: 1 }).then(
            (r) => {
              if (r.series[0]) units.set(s.id, displayUnit(r.series[0].unit, s.agg));
            },
            () => undefined,
          ),
        ),
      ]);
      const byKey = new Map<string, Row>();
      for (const i of inst.instances) byKey.set(i.key, { inst: i, sparks: {} });
      total = inst.truncated ? inst.total : undefined;
      SPARKS.forEach((s, k) => {
        const r = results[k] as QueryResult | undefined;
        for (const ser of r?.series ?? []) {
          const row = byKey.get(keyOf(ser.tags));
          if (!row) continue;
          let last: number | null = null;
          for (let j = ser.values.length - 1; j >= 0 && last === null; j--) last = ser.values[j] ?? null;
          row.sparks[s.id] = { values: ser.values, last };
        }
      });
      rows = [...byKey.values()];
      draw();
    },
    destroy() {},
  };
}
