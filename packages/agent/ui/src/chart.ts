import type uPlotT from 'uplot';
import { cssVar, h, PALETTE } from './dom.js';
import { format, tick, type Unit } from './format.js';

/** uPlot, loaded by the page as a classic script before the modules. */
const uPlot = (globalThis as unknown as { uPlot: typeof uPlotT }).uPlot;

export interface ChartOptions {
  title: string;
  unit: Unit;
  labels: string[];
  /**
   * series drawn on top of each other, filled, the first at the bottom (GC time by kind, requests
   * by status class), with a `total` line on top so the stack's height is never read as its last part
   */
  stacked?: boolean;
  /** called with a dragged range, epoch ms */
  onZoom?: (from: number, to: number) => void;
  /** a line at each of these times (epoch s), e.g. stalls */
  markers?: number[];
  /** a solid line where an alert fired (red) or resolved (green), epoch s */
  alertMarks?: Array<{ t: number; state: 'firing' | 'resolved' }>;
}

export interface Chart {
  el: HTMLElement;
  /** t in epoch seconds; one array of values per label */
  setData(t: number[], values: Array<Array<number | null>>): void;
  /** dashed lines at these times (epoch s): the instance's stalls */
  setMarkers(ts: number[]): void;
  /** solid lines where an alert of this instance fired and resolved */
  setAlertMarks(marks: Array<{ t: number; state: 'firing' | 'resolved' }>): void;
  /** a line under the legend, for a value not drawn (the heap's limit) */
  setNote(text: string): void;
  destroy(): void;
}

const tooltip = () => document.getElementById('tooltip') as HTMLElement;

function timeLabel(s: number): string {
  const d = new Date(s * 1000);
  return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** A time-series chart with its title, unit, legend, tooltip and drag-to-zoom. */
export function chart(opts: ChartOptions): Chart {
  const plotEl = h('div', { class: 'plot' });
  const unitLabel = {
    ms: 'milliseconds',
    bytes: 'bytes',
    percent: 'percent',
    ratio: 'percent',
    per_second: 'per second',
    ms_per_second: 'ms per second',
    count: 'count',
    '': '',
  }[opts.unit];
  const el = h(
    'section',
    { class: 'chart', role: 'img', 'aria-label': `${opts.title}: no data yet`, 'data-points': 0, 'data-title': opts.title },
    h('header', {}, h('h2', {}, opts.title), h('span', { class: 'unit' }, unitLabel)),
    plotEl,
  );
  const noteEl = h('p', { class: 'chart-note', hidden: true });
  el.append(noteEl);
  let u: uPlotT | undefined;
  let raw: Array<Array<number | null>> = [];
  let t: number[] = [];
  const colors = opts.labels.map((_, i) => cssVar(PALETTE[i % PALETTE.length] as string));
  /** the labels drawn: a stack gets its total */
  const labels = opts.stacked ? [...opts.labels, 'total'] : opts.labels;
  // the canvas's height comes from the stylesheet (smaller on a phone); the legend is below it, inside the card
  const plotHeight = () => Number.parseInt(getComputedStyle(plotEl).getPropertyValue('--plot-h'), 10) || 220;

  const make = (width: number) => {
    const grid = { stroke: cssVar('--grid'), width: 1 };
    const axisColor = cssVar('--muted');
    const series: uPlotT.Series[] = [
      { value: (_u, v) => (v === null ? '–' : timeLabel(v)) },
      ...opts.labels.map((label, i) => ({
        label,
        stroke: colors[i],
        width: 1.5,
        fill: opts.stacked ? `${colors[i]}55` : undefined,
        // a value with gaps on both sides has no line to draw: a dot, so it is not lost
        points: { show: false, size: 5, fill: colors[i], filter: isolated },
        // an absent value is a gap, never a line drawn across it
        spanGaps: false,
        value: (_u: uPlotT, _v: number | null, _si: number, idx: number | null) =>
          format(idx === null ? null : (raw[i]?.[idx] ?? null), opts.unit),
      })),
      ...(opts.stacked
        ? [
            {
              label: 'total',
              stroke: cssVar('--fg'),
              width: 1.5,
              points: { show: false, size: 5, fill: cssVar('--fg'), filter: isolated },
              spanGaps: false,
              value: (_u: uPlotT, v: number | null) => format(v, opts.unit),
            },
          ]
        : []),
    ];
    const bands = opts.stacked ? opts.labels.slice(1).map((_, i) => ({ series: [i + 2, i + 1] as [number, number] })) : undefined;
    const o: uPlotT.Options = {
      width,
      height: plotHeight(),
      series,
      bands,
      // the legend names the series (a click hides one); values follow the cursor in the tooltip
      legend: { live: false },
      cursor: { sync: { key: 'ekg' }, drag: { x: true, y: false, setScale: false } },
      scales: { x: { time: true }, y: { range: (_u, lo, hi) => [Math.min(0, lo), hi > 0 ? hi * 1.08 : 1] } },
      axes: [
        {
          stroke: axisColor,
          grid,
          ticks: grid,
          // one line: the time, with the date only where it changes or the span is days
          space: 90,
          values: (self, splits) => {
            const span = (self.scales.x?.max ?? 0) - (self.scales.x?.min ?? 0);
            let day = '';
            return splits.map((s) => {
              const d = new Date(s * 1000);
              const date = d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
              const time = d.toLocaleTimeString(undefined, {
                hour: '2-digit',
                minute: '2-digit',
                ...(span < 600 ? { second: '2-digit' } : {}),
              });
              const label = span > 3 * 86400 ? date : date !== day && day !== '' ? `${date} ${time}` : time;
              day = date;
              return label;
            });
          },
        },
        {
          stroke: axisColor,
          grid,
          ticks: grid,
          values: (_u, vals) => vals.map((v) => tick(v, opts.unit)),
          // as wide as the longest label, so "1.86 GiB" is never cut
          size: (self, vals) => {
            if (!vals?.length) return 40;
            self.ctx.font = '12px system-ui, sans-serif';
            return Math.ceil(Math.max(...vals.map((v) => self.ctx.measureText(String(v)).width))) + 22;
          },
        },
      ],
      hooks: {
        setSelect: [
          (self) => {
            if (self.select.width < 4) return;
            const from = self.posToVal(self.select.left, 'x');
            const to = self.posToVal(self.select.left + self.select.width, 'x');
            self.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            opts.onZoom?.(from * 1000, to * 1000);
          },
        ],
        setCursor: [
          (self) => {
            const tip = tooltip();
            const idx = self.cursor.idx;
            const left = self.cursor.left ?? -1;
            if (idx === null || idx === undefined || left < 0) {
              tip.hidden = true;
              return;
            }
            const rows = opts.labels.map(
              (l, i) => `<div><i style="background:${colors[i]}"></i>${escapeHtml(l)}: ${format(raw[i]?.[idx] ?? null, opts.unit)}</div>`,
            );
            // the stack's top, first: the number a reader looks for
            if (opts.stacked)
              rows.unshift(`<div><i style="background:${cssVar('--fg')}"></i>total: ${format(totals[idx] ?? null, opts.unit)}</div>`);
            tip.innerHTML = `<b>${timeLabel(t[idx] as number)}</b>${rows.join('')}`;
            const r = self.over.getBoundingClientRect();
            tip.hidden = false;
            const x = r.left + left + 14;
            tip.style.left = `${Math.min(x, window.innerWidth - tip.offsetWidth - 8)}px`;
            tip.style.top = `${r.top + (self.cursor.top ?? 0) + 14}px`;
          },
        ],
        draw: [
          // the y axis's top as drawn, for tests and tools
          (self) => {
            el.dataset.yMax = String(self.scales.y?.max ?? '');
          },
          (self) => {
            if (!opts.alertMarks?.length) return;
            const ctx = self.ctx;
            ctx.save();
            ctx.lineWidth = 2;
            for (const m of opts.alertMarks) {
              const x = Math.round(self.valToPos(m.t, 'x', true));
              if (x < self.bbox.left || x > self.bbox.left + self.bbox.width) continue;
              ctx.strokeStyle = cssVar(m.state === 'firing' ? '--bad' : '--ok');
              ctx.beginPath();
              ctx.moveTo(x, self.bbox.top);
              ctx.lineTo(x, self.bbox.top + self.bbox.height);
              ctx.stroke();
            }
            ctx.restore();
          },
          (self) => {
            if (!opts.markers?.length) return;
            const ctx = self.ctx;
            ctx.save();
            ctx.strokeStyle = cssVar('--bad');
            ctx.setLineDash([4, 3]);
            for (const m of opts.markers) {
              const x = Math.round(self.valToPos(m, 'x', true));
              if (x < self.bbox.left || x > self.bbox.left + self.bbox.width) continue;
              ctx.beginPath();
              ctx.moveTo(x, self.bbox.top);
              ctx.lineTo(x, self.bbox.top + self.bbox.height);
              ctx.stroke();
            }
            ctx.restore();
          },
        ],
      },
    };
    u = new uPlot(o, drawn(), plotEl);
    describe();
    u.over.addEventListener('mouseleave', () => {
      tooltip().hidden = true;
    });
  };

  /** Each series summed with those under it (a stack), or as given; nulls stay nulls where every part is absent. */
  const stackedValues = (): Array<Array<number | null>> => {
    if (!opts.stacked) return raw;
    const acc: Array<Array<number | null>> = [];
    let prev: Array<number | null> | undefined;
    for (const vs of raw) {
      const cur = vs.map((v, i) => (v === null && (prev?.[i] ?? null) === null ? null : (v ?? 0) + (prev?.[i] ?? 0)));
      acc.push(cur);
      prev = cur;
    }
    return acc;
  };
  /** the stack's height at each time (its top series), as last drawn */
  let totals: Array<number | null> = [];
  const drawn = () => {
    const vs = stackedValues();
    totals = vs.at(-1) ?? t.map(() => null);
    return [t, ...vs, ...(opts.stacked ? [totals] : [])] as uPlotT.AlignedData;
  };

  /**
   * What the chart draws, on the element for tests and tools: the labels in legend order, the gaps (runs of absent values after a present one) the lines break at, and the
   * silence at the end.
   */
  const describe = () => {
    el.dataset.labels = labels.join(',');
    let gaps = 0;
    let dots = 0;
    for (const vs of raw) {
      let seen = false;
      for (let i = 0; i < vs.length; i++) {
        if (vs[i] !== null) {
          seen = true;
          if (vs[i - 1] == null && vs[i + 1] == null) dots++;
        } else if (seen && vs[i - 1] !== null) gaps++;
      }
    }
    el.dataset.gaps = String(gaps);
    el.dataset.dots = String(dots);
    // seconds from the last value of any series to the end of the data: a stopped app's silence
    let last = -1;
    for (const vs of raw) for (let i = vs.length - 1; i > last; i--) if (vs[i] !== null) last = i;
    el.dataset.tailGap = String(last >= 0 && t.length ? (t.at(-1) as number) - (t[last] as number) : 0);
  };

  const ro = new ResizeObserver(() => {
    const w = plotEl.clientWidth;
    if (w <= 0) return;
    if (!u) make(w);
    else if (Math.abs(u.width - w) > 1 || u.height !== plotHeight()) u.setSize({ width: w, height: plotHeight() });
  });
  ro.observe(plotEl);

  return {
    el,
    setData(nt, values) {
      t = nt;
      raw = values;
      let points = 0;
      for (const vs of values) for (const v of vs) if (v !== null) points++;
      el.dataset.points = String(points);
      const last = opts.labels.map((l, i) => {
        const vs = values[i] ?? [];
        let v: number | null = null;
        for (let k = vs.length - 1; k >= 0 && v === null; k--) v = vs[k] ?? null;
        return `${l} ${format(v, opts.unit)}`;
      });
      el.setAttribute('aria-label', points > 0 ? `${opts.title}, latest: ${last.join(', ')}` : `${opts.title}: no data in this range`);
      if (u) {
        u.setData(drawn());
        describe();
      } else if (plotEl.clientWidth > 0) make(plotEl.clientWidth);
    },
    setMarkers(ts) {
      opts.markers = ts;
      el.dataset.markers = String(ts.length);
      u?.redraw(false, false);
    },
    setAlertMarks(marks) {
      opts.alertMarks = marks;
      el.dataset.alertMarks = String(marks.length);
      u?.redraw(false, false);
    },
    setNote(text) {
      noteEl.textContent = text;
      noteEl.hidden = text === '';
    },
    destroy() {
      ro.disconnect();
      u?.destroy();
      tooltip().hidden = true;
    },
  };
}

/** The indices of a series' values with no value beside them (uPlot draws no line there). */
function isolated(self: uPlotT, si: number): number[] {
  const vs = self.data[si] ?? [];
  const out: number[] = [];
  for (let i = 0; i < vs.length; i++) if (vs[i] != null && vs[i - 1] == null && vs[i + 1] == null) out.push(i);
  return out;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);
}

/** A sparkline on a canvas: cheap enough for hundreds in one table. */
export function sparkline(values: Array<number | null>, color: string, label: string): HTMLCanvasElement {
  const c = h('canvas', { class: 'spark', width: 128, height: 40, role: 'img', 'aria-label': label });
  const ctx = c.getContext('2d');
  const vs = values.filter((v): v is number => v !== null);
  if (!ctx || vs.length < 2) return c;
  let lo = Math.min(...vs);
  let hi = Math.max(...vs);
  if (hi === lo) {
    hi += 1;
    lo -= 1;
  }
  ctx.strokeStyle = color;
  ctx.lineWidth = 2.5;
  ctx.beginPath();
  let started = false;
  values.forEach((v, i) => {
    if (v === null) {
      started = false;
      return;
    }
    const x = (i / Math.max(1, values.length - 1)) * 124 + 2;
    const y = 38 - ((v - lo) / (hi - lo)) * 36;
    if (started) ctx.lineTo(x, y);
    else ctx.moveTo(x, y);
    started = true;
  });
  ctx.stroke();
  return c;
}
