import { type AlertsView, api, setToken, stats, Unauthorized } from './api.js';
import { h } from './dom.js';
import { explorer } from './explorer.js';
import { instanceView } from './instance.js';
import { overview } from './overview.js';
import { type Ctx, stepFor, type View } from './view.js';

/**
 * The dashboard: a hash router (`#/`, `#/instance?key=…`, `#/service?name=…`, `#/explore?name=…`)
 * whose URL holds the whole view — range, zoom, sort, filter — so it can be shared.
 */
const RANGES: Record<string, number> = { '15m': 15 * 60e3, '1h': 3600e3, '6h': 6 * 3600e3, '24h': 86400e3, '7d': 7 * 86400e3 };
const LIVE_EVERY = 10_000;

const main = document.getElementById('view') as HTMLElement;
const banner = document.getElementById('alerts') as HTMLElement;
const status = document.getElementById('status') as HTMLElement;
const live = document.getElementById('live') as HTMLInputElement;
const dialog = document.getElementById('token-dialog') as HTMLDialogElement;
const tokenInput = document.getElementById('token-input') as HTMLInputElement;
const tokenError = document.getElementById('token-error') as HTMLElement;

let view: View | undefined;
let route = '';
let params = new URLSearchParams();
let timer: ReturnType<typeof setTimeout> | undefined;
let generation = 0;
let askedOnce = false;

function parse(): { path: string; params: URLSearchParams } {
  const hash = location.hash.replace(/^#/, '') || '/';
  const q = hash.indexOf('?');
  return { path: q === -1 ? hash : hash.slice(0, q), params: new URLSearchParams(q === -1 ? '' : hash.slice(q + 1)) };
}

function go(path: string, p: URLSearchParams): void {
  const qs = p.toString();
  location.hash = `#${path}${qs ? `?${qs}` : ''}`;
}

const ctx: Ctx = {
  range() {
    const from = Number(params.get('from'));
    const to = Number(params.get('to'));
    if (from > 0 && to > from) return { from, to, step: stepFor(to - from) };
    const span = RANGES[params.get('range') ?? '1h'] ?? (RANGES['1h'] as number);
    const now = Date.now();
    return { from: now - span, to: now, step: stepFor(span) };
  },
  get params() {
    return params;
  },
  navigate(changes) {
    const p = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v === undefined || v === '') p.delete(k);
      else p.set(k, v);
    }
    go(route, p);
  },
  zoom(from, to) {
    ctx.navigate({ from: String(Math.round(from)), to: String(Math.round(to)), range: undefined });
  },
};

function markControls(): void {
  const absolute = params.has('from') && params.has('to');
  for (const b of document.querySelectorAll<HTMLButtonElement>('[data-range]')) {
    b.setAttribute('aria-pressed', String(!absolute && (params.get('range') ?? '1h') === b.dataset.range));
  }
  const section = route.startsWith('/explore') ? 'explore' : 'overview';
  for (const a of document.querySelectorAll<HTMLAnchorElement>('[data-nav]')) {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

/** The banner above every view: the alerts firing now, each linking to its instance or service. */
async function alertsBanner(): Promise<void> {
  let v: AlertsView;
  try {
    v = await api<AlertsView>('/api/v1/alerts');
  } catch {
    return; // the view reports an agent it cannot reach, and asks for a token
  }
  banner.dataset.firing = String(v.firing.length);
  if (v.firing.length === 0) {
    banner.hidden = true;
    banner.replaceChildren();
    return;
  }
  const critical = v.firing.some((f) => f.severity === 'critical');
  banner.className = `alerts ${critical ? 'critical' : 'warning'}`;
  const shown = v.firing.slice(0, 8);
  banner.replaceChildren(
    h('strong', {}, `${v.firing.length} alert${v.firing.length > 1 ? 's' : ''} firing`),
    h(
      'ul',
      {},
      ...shown.map((f) => {
        const group = Object.entries(f.group)
          .map(([k, x]) => `${k}=${x}`)
          .join(' ');
        return h(
          'li',
          { 'data-alert': f.alert, 'data-severity': f.severity },
          h('a', { href: f.link.replace(/^\//, '') }, f.alert),
          ` ${group ? `${group} ` : ''}(${f.severity}, since ${new Date(f.since).toLocaleTimeString()}): ${f.message}`,
        );
      }),
      ...(v.firing.length > shown.length ? [h('li', {}, `… and ${v.firing.length - shown.length} more (GET /api/v1/alerts)`)] : []),
    ),
  );
  banner.hidden = false;
}

async function refresh(): Promise<void> {
  const mine = generation;
  clearTimeout(timer);
  if (!view) return;
  main.dataset.state = 'loading';
  status.classList.remove('error');
  void alertsBanner();
  try {
    await view.refresh();
    if (mine !== generation) return;
    main.dataset.state = 'ready';
    status.textContent = `updated ${new Date().toLocaleTimeString()}`;
    if (!main.dataset.renderedMs) {
      main.dataset.renderedMs = String(Math.round(performance.now()));
      performance.mark('ekg:rendered');
    }
  } catch (err) {
    if (mine !== generation) return;
    if (err instanceof Unauthorized) {
      askToken(askedOnce ? 'The agent refused that token.' : '');
      return;
    }
    main.dataset.state = 'error';
    status.classList.add('error');
    status.textContent = `cannot load: ${(err as Error).message}`;
  }
  const relative = !(params.has('from') && params.has('to'));
  if (live.checked && relative) timer = setTimeout(() => void refresh(), LIVE_EVERY);
}

function render(): void {
  const r = parse();
  route = r.path;
  params = r.params;
  generation++;
  view?.destroy();
  main.replaceChildren();
  delete main.dataset.renderedMs;
  markControls();
  const first = route.split('/')[1] ?? '';
  view =
    first === 'instance'
      ? instanceView(main, ctx, 'instance')
      : first === 'service'
        ? instanceView(main, ctx, 'service')
        : first === 'explore'
          ? explorer(main, ctx)
          : overview(main, ctx);
  document.title = `${first ? `${first} · ` : ''}ekg-agent`;
  void refresh();
}

function askToken(message: string): void {
  tokenError.textContent = message;
  main.dataset.state = 'token';
  status.textContent = 'waiting for the token';
  if (!dialog.open) dialog.showModal();
  tokenInput.focus();
}

document.getElementById('token-form')?.addEventListener('submit', () => {
  const t = tokenInput.value.trim();
  if (!t) return;
  askedOnce = true;
  setToken(t);
  tokenInput.value = '';
  void refresh();
});

for (const b of document.querySelectorAll<HTMLButtonElement>('[data-range]')) {
  b.addEventListener('click', () => ctx.navigate({ range: b.dataset.range, from: undefined, to: undefined }));
}
live.addEventListener('change', () => void refresh());
window.addEventListener('hashchange', render);
// charts take their colours from the theme: a change of system setting redraws them
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', render);
Object.assign(globalThis, { ekgDashboard: { stats } });
render();
