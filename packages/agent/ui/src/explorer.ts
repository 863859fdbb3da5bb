import { AGGS as QUERY_AGGS } from '../../src/model/series.js';
import { api, query, type SeriesInfo } from './api.js';
import { type Chart, chart } from './chart.js';
import { h } from './dom.js';
import { displayUnit } from './format.js';
import type { Ctx, View } from './view.js';

const AGGS = ['', ...QUERY_AGGS];

/** Any metric by name, with tag filters, an aggregation and a grouping: custom vitals, StatsD metrics. */
export function explorer(root: HTMLElement, ctx: Ctx): View {
  const p = ctx.params;
  const names = h('datalist', { id: 'names' });
  const name = h('input', {
    id: 'x-name',
    list: 'names',
    value: p.get('name') ?? '',
    placeholder: 'runtime.eventloop.delay.p99',
    required: true,
    size: 36,
  });
  const tags = h('input', { id: 'x-tags', value: p.get('tags') ?? '', placeholder: 'service:api,pid:*' });
  const agg = h(
    'select',
    { id: 'x-agg' },
    ...AGGS.map((a) => h('option', { value: a, selected: a === (p.get('agg') ?? '') }, a || 'default')),
  );
  const by = h('input', { id: 'x-by', value: p.get('by') ?? '', placeholder: 'service (empty: each series)', size: 22 });
  const form = h(
    'form',
    { class: 'toolbar', role: 'search' },
    h('label', {}, 'Metric', name),
    h('label', {}, 'Tags', tags),
    h('label', {}, 'Aggregation', agg),
    h('label', {}, 'Group by', by),
    h('button', { type: 'submit' }, 'Show'),
    names,
  );
  const out = h('div', { class: 'grid', id: 'explore-chart' });
  root.append(
    h('h1', {}, 'Explorer'),
    h('p', { class: 'sub' }, 'Any metric the agent stores: runtime vitals, custom vitals, StatsD metrics.'),
    form,
    out,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    ctx.navigate({
      name: name.value.trim(),
      tags: tags.value.trim() || undefined,
      agg: agg.value || undefined,
      by: by.value.trim() || undefined,
    });
  });
  let c: Chart | undefined;
  let shown = '';
  let known: SeriesInfo[] | undefined;

  return {
    async refresh() {
      if (!known) {
        known = (await api<{ series: SeriesInfo[] }>('/api/v1/series', { limit: 10000 })).series;
        names.replaceChildren(...[...new Set(known.map((s) => s.name))].sort().map((n) => h('option', { value: n })));
      }
      const n = p.get('name');
      if (!n) {
        out.replaceChildren(h('div', { class: 'empty' }, `${new Set(known.map((s) => s.name)).size} metrics stored. Pick one above.`));
        return;
      }
      const { from, to, step } = ctx.range();
      const r = await query({
        name: n,
        tags: p.get('tags') ?? undefined,
        agg: p.get('agg') ?? undefined,
        by: p.get('by') ?? undefined,
        from,
        to,
        step,
      });
      const labels = r.series.map(
        (s) =>
          Object.entries(s.tags)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ') || n,
      );
      // a live tick redraws the same chart; a different set of series makes a new one
      const sig = `${n}|${r.agg}|${labels.join('|')}`;
      if (!c || sig !== shown) {
        c?.destroy();
        c = chart({
          title: `${n} (${r.agg})`,
          unit: displayUnit(known.find((s) => s.name === n)?.unit, r.agg),
          labels,
          onZoom: (a, b) => ctx.zoom(a, b),
        });
        shown = sig;
        out.replaceChildren(r.series.length ? c.el : h('div', { class: 'empty' }, `No series named ${n} match these tags in this range.`));
      }
      c.setData(
        r.t,
        r.series.map((s) => s.values),
      );
    },
    destroy() {
      c?.destroy();
    },
  };
}
