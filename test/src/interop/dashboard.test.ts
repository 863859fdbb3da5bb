import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type AgentProcess, type AppProcess, startAgent, startApp, traffic, until } from './processes.js';
import { need, which } from './system.js';

/**
 * The dashboard in a real browser (Debian's chromium through playwright-core), served by a real
 * agent that a real app with `--import ekg-vitals/register` reports into over StatsD.
 */
const skip = need('chromium');

/** Every chart of the instance view (the GC ones draw zeros when no collection happened: still data). */
const INSTANCE_CHARTS = [
  'Event-loop delay',
  'Event-loop utilization',
  'Heap',
  'Heap used by space',
  'Process memory',
  'GC pause time by kind',
  'GC collections by kind',
  'CPU',
  'HTTP requests by status class',
  'HTTP latency',
  'Active resources',
];

/** A page that remembers console errors, failed requests and uncaught exceptions. */
async function open(browser: Browser, opts: { colorScheme?: 'light' | 'dark'; width?: number; height?: number } = {}) {
  const page = await browser.newPage({
    viewport: { width: opts.width ?? 1280, height: opts.height ?? 800 },
    colorScheme: opts.colorScheme ?? 'light',
  });
  // a bound on failure on a busy machine, not an expected wait
  page.setDefaultTimeout(60_000);
  const problems: string[] = [];
  const requests: Array<{ url: string; auth?: string }> = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('request', (r) => {
    if (r.url().includes('/api/')) requests.push({ url: r.url(), auth: r.headers().authorization });
  });
  const pending = new Set<string>();
  inflight.set(page, { pending, problems });
  page.on('request', (r) => pending.add(r.url()));
  page.on('requestfinished', (r) => pending.delete(r.url()));
  page.on('requestfailed', (r) => pending.delete(r.url()));
  return { page, problems, requests };
}

/** each page's requests not yet answered, and its problems: what a view that never gets ready was waiting for */
const inflight = new WeakMap<Page, { pending: Set<string>; problems: string[] }>();

async function ready(page: Page): Promise<void> {
  try {
    await page.waitForSelector('main[data-state="ready"]', { timeout: 60_000 });
  } catch (err) {
    const seen = await page
      .evaluate(() => `view ${document.getElementById('view')?.dataset.state}, status "${document.getElementById('status')?.textContent}"`)
      .catch((e: Error) => e.message);
    const i = inflight.get(page);
    throw new Error(
      `${(err as Error).message.split('\n')[0]}: ${seen}; unanswered: ${[...(i?.pending ?? [])].join(' ') || 'none'}; problems: ${i?.problems.join(' | ') || 'none'}`,
    );
  }
}

/** The heap used a service's instances stored over the last 5 minutes, one value per second (null where none). */
async function heapUsed(agent: AgentProcess, service: string): Promise<Array<number | null>> {
  const r = (await (
    await fetch(`${agent.http}/api/v1/query?name=runtime.memory.heap.used&tags=service:${service}&from=now-5m&step=1s&agg=avg&by=`)
  ).json()) as { series: Array<{ values: Array<number | null> }> };
  return r.series[0]?.values ?? [];
}

/** Every legend entry of every chart lies inside its card and is not covered by anything else. */
async function legendsInside(page: Page): Promise<string[]> {
  return page.$$eval('.chart', (cards) => {
    const bad: string[] = [];
    for (const card of cards) {
      const entries = Array.from(card.querySelectorAll('.u-legend .u-series'));
      if (entries.length === 0) bad.push(`${(card as HTMLElement).dataset.title}: no legend`);
      for (const e of entries) {
        // measured where the reader sees it: scrolled into view
        e.scrollIntoView({ block: 'center' });
        const box = card.getBoundingClientRect();
        const r = e.getBoundingClientRect();
        const name = `${(card as HTMLElement).dataset.title} / ${e.textContent?.trim()}`;
        if (r.width === 0 || r.left < box.left || r.right > box.right || r.top < box.top || r.bottom > box.bottom)
          bad.push(`${name}: ${JSON.stringify(r)} outside ${JSON.stringify(box)}`);
        // what is drawn at the entry's centre is the entry, not the next card
        const at = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        if (!at || !e.contains(at)) bad.push(`${name}: covered by ${at?.outerHTML.slice(0, 80)}`);
      }
    }
    return bad;
  });
}

const chartPoints = (page: Page) =>
  page.$$eval('.chart', (els) =>
    Object.fromEntries(els.map((e) => [(e as HTMLElement).dataset.title, Number((e as HTMLElement).dataset.points)])),
  );

describe('dashboard', { skip }, () => {
  let agent: AgentProcess;
  let app: AppProcess;
  /** reports every 3 s into the agent's 1 s windows */
  let slow: AppProcess;
  /** reports, then is killed: its charts end in a gap */
  let dead: AppProcess;
  let browser: Browser;
  let key: string;
  let slowKey: string;
  let deadKey: string;

  before(async () => {
    agent = await startAgent(['--flush-interval', '1s']);
    app = await startApp(agent.tcp);
    slow = await startApp(agent.tcp, { EKG_SERVICE: 'billing', EKG_INTERVAL: '3s' });
    dead = await startApp(agent.tcp, { EKG_SERVICE: 'cron' });
    // a few windows of traffic, so every chart has points
    const end = Date.now() + 6000;
    while (Date.now() < end) await Promise.all([traffic(app, 20), traffic(slow, 5), traffic(dead, 5)]);
    const keyOf = (service: string) =>
      until(
        async () => {
          const r = (await (await fetch(`${agent.http}/api/v1/instances`)).json()) as {
            instances: Array<{ key: string; service?: string }>;
          };
          return r.instances.find((i) => i.service === service)?.key;
        },
        60_000,
        `${service} to appear in /api/v1/instances`,
      );
    key = await keyOf('shop');
    slowKey = await keyOf('billing');
    deadKey = await keyOf('cron');
    // three samples of the slow app's heap, so its interval can be seen
    await until(async () => (await heapUsed(agent, 'billing')).filter((v) => v !== null).length >= 3, 60_000, "three of billing's samples");
    await until(
      async () => {
        const r = (await (await fetch(`${agent.http}/api/v1/query?name=http.requests.2xx&from=now-5m&agg=rate&by=`)).json()) as {
          series: Array<{ values: Array<number | null> }>;
        };
        return (r.series[0]?.values.filter((v) => v !== null).length ?? 0) >= 3;
      },
      60_000,
      'three windows of requests in the store',
    );
    // one stall: the app's watchdog reports it, the agent records it, the dashboard marks it
    await fetch(`${app.url}/block`).then((r) => r.text());
    await until(
      async () => {
        const r = (await (await fetch(`${agent.http}/api/v1/events?from=now-5m`)).json()) as { events: unknown[] };
        return r.events.length > 0;
      },
      60_000,
      'the stall event in /api/v1/events',
    );
    browser = await chromium.launch({ executablePath: which('chromium') as string, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
    await slow?.stop();
    await dead?.stop();
    await app?.stop();
    await agent?.stop();
  });

  test('the overview lists the instance with its health and sparklines; the filter narrows it', async () => {
    const { page, problems } = await open(browser);
    await page.goto(`${agent.http}/`);
    await ready(page);
    const row = page.locator(`#instances tbody tr[data-key="${key}"]`);
    await row.waitFor();
    assert.match((await row.locator('.badge').textContent()) ?? '', /reporting|up/);
    assert.equal(await row.locator('td', { hasText: 'shop' }).count(), 1);
    // six sparklines, each with its latest value
    assert.equal(await row.locator('canvas.spark').count(), 6);
    const values = await row.locator('td.spark span').allTextContents();
    assert.ok(
      values.every((v) => v !== '–'),
      `every vital has a value: ${values.join(', ')}`,
    );
    await page.fill('#filter', 'no-such-service');
    assert.equal(await page.locator('#instances tbody tr').count(), 0);
    await page.fill('#filter', 'shop');
    assert.equal(await page.locator('#instances tbody tr').count(), 1);
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('every chart of the instance view draws data; a range change refetches; a drag zooms', async () => {
    const { page, problems, requests } = await open(browser);
    await page.goto(`${agent.http}/#/instance?key=${encodeURIComponent(key)}&range=15m`);
    await ready(page);
    const points = await chartPoints(page);
    for (const title of INSTANCE_CHARTS) assert.ok((points[title] ?? 0) > 0, `${title} has data: ${JSON.stringify(points)}`);
    // each chart is a labelled image for screen readers, with its latest values
    const label = await page.locator('.chart[data-title="Heap"]').getAttribute('aria-label');
    assert.match(label ?? '', /^Heap, latest: used [\d.]+ MiB/);
    assert.equal(await page.locator('.chart canvas').count(), INSTANCE_CHARTS.length);
    // the stall the app reported is a marker on every chart, and named above them
    assert.equal(await page.locator('.chart[data-markers="1"]').count(), INSTANCE_CHARTS.length);
    assert.match((await page.locator('#stalls').textContent()) ?? '', /1 stall in this range; last: blocked for \d+ ms at burnCpu \(/);

    const before = requests.length;
    await page.click('button[data-range="6h"]');
    await page.waitForFunction(() => location.hash.includes('range=6h'));
    await ready(page);
    // the charts' queries go in one batch request; each of them again, now at the 6 h step
    const again = requests
      .slice(before)
      .filter((r) => r.url.includes('/api/v1/batch'))
      .flatMap((r) => new URL(r.url).searchParams.getAll('q').map((q) => new URLSearchParams(q)));
    assert.ok(again.length >= INSTANCE_CHARTS.length, `the charts were fetched again (${again.length} queries)`);
    assert.ok(
      again.every((q) => q.get('step') === '30s' && Number(q.get('to')) - Number(q.get('from')) === 6 * 3600_000),
      '6 h is read at a 30 s step',
    );
    assert.equal(await page.getAttribute('button[data-range="6h"]', 'aria-pressed'), 'true');

    // drag across the middle of a chart: the URL gets an absolute from/to, and the charts follow it
    const over = page.locator('.chart[data-title="Heap"] .u-over');
    const box = await over.boundingBox();
    assert.ok(box);
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.95, box.y + box.height / 2, { steps: 8 });
    await page.mouse.up();
    await page.waitForFunction(() => /from=\d+&to=\d+/.test(location.hash));
    await ready(page);
    const hash = new URLSearchParams((await page.evaluate(() => location.hash)).split('?')[1]);
    const span = Number(hash.get('to')) - Number(hash.get('from'));
    assert.ok(span > 0 && span < 6 * 3600_000 * 0.6, `zoomed into part of the 6 h (${span} ms)`);
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('the service view merges instances; the explorer charts any metric; a shared URL opens the same view', async () => {
    const { page, problems } = await open(browser);
    await page.goto(`${agent.http}/#/service?name=shop&range=15m`);
    await ready(page);
    assert.match((await page.locator('h1').textContent()) ?? '', /Service shop/);
    const points = await chartPoints(page);
    assert.ok((points['HTTP requests by status class'] ?? 0) > 0);
    assert.ok((points['Process memory'] ?? 0) > 0);

    await page.goto(`${agent.http}/#/explore?name=runtime.memory.rss&tags=service:shop&by=service&range=15m`);
    await ready(page);
    assert.equal(await page.inputValue('#x-name'), 'runtime.memory.rss');
    const ex = await chartPoints(page);
    assert.ok((ex['runtime.memory.rss (avg)'] ?? 0) > 0, JSON.stringify(ex));
    // a new query from the form
    await page.fill('#x-name', 'http.requests.total');
    await page.selectOption('#x-agg', 'rate');
    await page.click('form[role="search"] button[type="submit"]');
    await page.waitForFunction(() => location.hash.includes('name=http.requests.total'));
    await ready(page);
    assert.ok(((await chartPoints(page))['http.requests.total (rate)'] ?? 0) > 0);
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('usable at phone width: nothing overflows the page sideways', async () => {
    const { page, problems } = await open(browser, { width: 390, height: 844 });
    await page.goto(`${agent.http}/#/instance?key=${encodeURIComponent(key)}&range=15m`);
    await ready(page);
    const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    assert.ok(scroll <= client + 1, `page is ${scroll}px wide in a ${client}px window`);
    assert.ok(((await chartPoints(page)).Heap ?? 0) > 0);
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('charts read right: legends inside their cards, heap used readable, status classes 2xx first with a total', async () => {
    for (const [width, height] of [
      [1280, 800],
      [390, 844],
    ] as const) {
      const { page, problems } = await open(browser, { width, height });
      await page.goto(`${agent.http}/#/instance?key=${encodeURIComponent(key)}&range=15m`);
      await ready(page);
      assert.equal(await page.locator('.chart .u-legend').count(), INSTANCE_CHARTS.length);
      assert.deepEqual(await legendsInside(page), [], `legends at ${width}×${height}`);
      assert.deepEqual(problems, []);
      await page.close();
    }

    const { page, problems } = await open(browser);
    await page.goto(`${agent.http}/#/instance?key=${encodeURIComponent(key)}&range=15m`);
    await ready(page);
    // the heap's limit (GiB) is written under the chart, not drawn: the y axis fits used and total
    const heap = page.locator('.chart[data-title="Heap"]');
    assert.equal(await heap.getAttribute('data-labels'), 'used,total');
    assert.match((await heap.locator('.chart-note').textContent()) ?? '', /^heap limit [\d.]+ GiB$/);
    const total = (
      (await (
        await fetch(
          `${agent.http}/api/v1/query?name=runtime.memory.heap.total&tags=${encodeURIComponent(`service:shop`)}&from=now-15m&agg=max&by=`,
        )
      ).json()) as { series: Array<{ values: Array<number | null> }> }
    ).series[0]?.values.filter((v): v is number => v !== null) as number[];
    await page.waitForSelector('.chart[data-title="Heap"][data-y-max]');
    const yMax = Number(await heap.getAttribute('data-y-max'));
    assert.ok(yMax >= Math.max(...total) && yMax < 2 * Math.max(...total), `y axis to ${yMax} for a heap total of ${Math.max(...total)}`);
    // requests stack from 2xx up; the stack's top is named total, not by its last class
    assert.equal(await page.getAttribute('.chart[data-title="HTTP requests by status class"]', 'data-labels'), '2xx,3xx,4xx,5xx,1xx,total');
    const legend = await page.locator('.chart[data-title="HTTP requests by status class"] .u-legend .u-series').allTextContents();
    assert.deepEqual(
      legend.map((l) => l.trim()),
      ['2xx', '3xx', '4xx', '5xx', '1xx', 'total'],
    );
    // the app and the agent share a 1 s interval: no note
    assert.equal(await page.locator('#interval-note').count(), 0);
    assert.deepEqual(problems, []);
    await page.close();
  });

  test("an app that reports less often than the agent's windows gets a note", async () => {
    const { page, problems } = await open(browser);
    await page.goto(`${agent.http}/#/instance?key=${encodeURIComponent(slowKey)}&range=15m`);
    await ready(page);
    assert.match(
      (await page.locator('#interval-note').textContent()) ?? '',
      /^This app reports every 3 s but the agent's windows here are 1 s/,
    );
    // the time model holds each 3 s heap value through the agent's 1 s windows it covers: lines, not isolated dots
    assert.equal(Number(await page.getAttribute('.chart[data-title="Heap"]', 'data-dots')), 0);
    assert.deepEqual(problems, []);
    await page.close();
  });

  test("a killed app's charts end in a gap, not a line to now", async () => {
    await dead.stop();
    // the store holds no copies after the last sample: the API answers nulls there
    await until(
      async () => {
        const vs = await heapUsed(agent, 'cron');
        let tail = 0;
        while (tail < vs.length && vs[vs.length - 1 - tail] === null) tail++;
        return tail >= 3 && tail < vs.length;
      },
      60_000,
      "three empty seconds after cron's last heap sample",
    );
    const { page, problems } = await open(browser);
    await page.goto(`${agent.http}/#/instance?key=${encodeURIComponent(deadKey)}&range=15m`);
    await ready(page);
    // every gauge chart drew its points and then stopped: its lines break (uPlot spanGaps false) where the values end
    for (const title of ['Heap', 'Process memory', 'Event-loop utilization']) {
      const c = page.locator(`.chart[data-title="${title}"]`);
      assert.ok(Number(await c.getAttribute('data-points')) > 0, `${title} drew the app's life`);
      assert.ok(Number(await c.getAttribute('data-gaps')) >= 1, `${title} has a gap`);
      assert.ok(Number(await c.getAttribute('data-tail-gap')) >= 3, `${title} ends ${await c.getAttribute('data-tail-gap')} s before now`);
    }
    assert.deepEqual(problems, []);
    await page.close();
  });

  test('the agent serves the dashboard from the package: gzipped, revalidated, no outside URL', async () => {
    const html = await fetch(`${agent.http}/`);
    assert.equal(html.status, 200);
    const text = await html.text();
    assert.doesNotMatch(text, /https?:\/\/(?!www\.w3\.org)/, 'no CDN or outside URL in the page');
    let total = 0;
    for (const path of ['/ui/main.js', '/ui/chart.js', '/ui/uPlot.iife.min.js']) {
      const r = await fetch(`${agent.http}${path}`, { headers: { 'accept-encoding': 'gzip' } });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-encoding'), 'gzip');
      const etag = r.headers.get('etag') as string;
      total += Number(r.headers.get('content-length'));
      const again = await fetch(`${agent.http}${path}`, { headers: { 'if-none-match': etag } });
      assert.equal(again.status, 304);
    }
    assert.ok(total > 10_000, 'the charts and the app are there');
    assert.equal((await fetch(`${agent.http}/ui/../../package.json`)).status, 404);
    assert.equal((await fetch(`${agent.http}/ui/nope.js`)).status, 404);
  });
});

describe('dashboard with an agent token', { skip }, () => {
  let agent: AgentProcess;
  let browser: Browser;
  const TOKEN = 'tok-3b8e61c2-dash';

  before(async () => {
    agent = await startAgent([], { EKG_AGENT_TOKEN: TOKEN });
    browser = await chromium.launch({ executablePath: which('chromium') as string, args: ['--no-sandbox'] });
  });
  after(async () => {
    await browser?.close();
    await agent?.stop();
  });

  test('the API wants the token; the dashboard asks once, refuses a wrong one, and sends it on every call', async () => {
    assert.equal((await fetch(`${agent.http}/api/v1/instances`)).status, 401);
    assert.equal((await fetch(`${agent.http}/heartbeat`)).status, 200);
    assert.equal((await fetch(`${agent.http}/api/v1/instances`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);

    const { page, problems, requests } = await open(browser);
    await page.goto(`${agent.http}/`);
    await page.waitForSelector('#token-dialog[open]');
    await page.fill('#token-input', 'wrong-token-123');
    await page.click('#token-form button[type="submit"]');
    await page.waitForFunction(() => (document.getElementById('token-error')?.textContent ?? '').includes('refused'));
    await page.fill('#token-input', TOKEN);
    await page.click('#token-form button[type="submit"]');
    await ready(page);
    assert.equal(await page.locator('#token-dialog[open]').count(), 0);
    // a reload remembers it: no prompt, and every API call carries it
    const seen = requests.length;
    await page.reload();
    await ready(page);
    assert.equal(await page.locator('#token-dialog[open]').count(), 0);
    const later = requests.slice(seen);
    assert.ok(later.length > 0);
    assert.ok(
      later.every((r) => r.auth === `Bearer ${TOKEN}`),
      'every call after the prompt sends the token',
    );
    // the two refused calls are the only console noise a token prompt makes (the browser logs 401s)
    assert.deepEqual(
      problems.filter((p) => !/401 \(Unauthorized\)/.test(p)),
      [],
    );
    await page.close();
  });
});

describe('dashboard over more instances than the overview shows', { skip }, () => {
  let agent: AgentProcess;
  let browser: Browser;
  /** more than the overview's 500 rows (ui/src/overview.ts MAX_ROWS) */
  const N = 620;

  before(async () => {
    agent = await startAgent(['--flush-interval', '1s']);
    browser = await chromium.launch({ executablePath: which('chromium') as string, args: ['--no-sandbox'] });
    // N instances of one service, a gauge each, sent again until the agent has them all (a datagram may be lost)
    const sock = createSocket('udp4');
    const lines = Array.from({ length: N }, (_, i) => `many.level:1|g|#service:many,pid:${i}`);
    const send = async () => {
      for (let i = 0; i < lines.length; i += 20)
        await new Promise<void>((r, j) => sock.send(lines.slice(i, i + 20).join('\n'), agent.udp, '127.0.0.1', (e) => (e ? j(e) : r())));
    };
    try {
      await until(
        async () => {
          await send();
          const r = (await (await fetch(`${agent.http}/api/v1/instances?limit=1`)).json()) as { total: number };
          return r.total >= N;
        },
        60_000,
        `the agent listing ${N} instances`,
      );
    } finally {
      sock.close();
    }
  });
  after(async () => {
    await browser?.close();
    await agent?.stop();
  });

  test('the overview asks for the first 500, draws 500 rows, and its caption says how many there are', async () => {
    // what the API has (the N, and any instance of the agent's own): the caption and the rows are checked against it
    const all = (await (await fetch(`${agent.http}/api/v1/instances?limit=10000`)).json()) as {
      instances: Array<{ key: string }>;
      total: number;
    };
    assert.ok(all.total >= N && all.instances.length === all.total);
    const { page, problems, requests } = await open(browser);
    await page.goto(`${agent.http}/`);
    await ready(page);
    await page.waitForSelector('#instances caption');
    assert.equal(
      await page.textContent('#instances caption'),
      `500 of the first 500 instances by key, of ${all.total}: open a service (click its name) or the explorer for the rest`,
    );
    assert.equal(await page.locator('#instances tbody tr').count(), 500);
    // the first 500 by key, in the order drawn (the overview sorts trouble first, then by key; all report here)
    const drawn = await page.$$eval('#instances tbody tr', (rows) => rows.map((r) => r.getAttribute('data-key') as string));
    assert.deepEqual(
      [...drawn].sort(),
      all.instances.slice(0, 500).map((i) => i.key),
    );
    assert.ok(
      requests.some((r) => new URL(r.url).pathname === '/api/v1/instances' && new URL(r.url).searchParams.get('limit') === '500'),
      'the overview asks for 500',
    );
    assert.deepEqual(problems, []);
    await page.close();
  });
});
