/**
 * `npm run screenshots`: the dashboard as a newcomer sees it, light and dark, into docs/. A real
 * agent, three real apps with `--import ekg-vitals/register` (two instances of `shop`, one of `billing`)
 * and a minute of uneven traffic, photographed by Debian's chromium.
 */
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startAgent, startApp, traffic } from './interop/processes.js';

const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url));
const SECONDS = Number(process.env.SCREENSHOT_SECONDS ?? 75);

const agent = await startAgent(['--flush-interval', '2s']);
const apps = [
  await startApp(agent.tcp, { EKG_SERVICE: 'shop', EKG_INTERVAL: '2s' }),
  await startApp(agent.tcp, { EKG_SERVICE: 'shop', EKG_INTERVAL: '2s' }),
  await startApp(agent.tcp, { EKG_SERVICE: 'billing', EKG_INTERVAL: '2s' }),
];
const start = Date.now();
console.log(`screenshots: ${SECONDS} s of traffic into ${agent.http}`);
while (Date.now() - start < SECONDS * 1000) {
  const phase = Math.sin((Date.now() - start) / 9000);
  await Promise.all(apps.map((a, i) => traffic(a, Math.round(12 + 10 * phase + i * 4))));
  await new Promise((r) => setTimeout(r, 120));
}
// one stall in the first shop instance: its watchdog reports it, the charts mark it
await fetch(`${(apps[0] as (typeof apps)[number]).url}/block`).then((r) => r.text());
await Promise.all(apps.slice(0, 2).map((a) => traffic(a, 30)));
// the billing instance stops: the overview shows it going stale
await (apps[2] as (typeof apps)[number]).stop();
await new Promise((r) => setTimeout(r, 8000));

const instances = (await (await fetch(`${agent.http}/api/v1/instances`)).json()) as { instances: Array<{ key: string; service?: string }> };
const events = (await (await fetch(`${agent.http}/api/v1/events?from=now-5m`)).json()) as { events: Array<{ instance?: string }> };
const shop = (events.events[0]?.instance ?? instances.instances.find((i) => i.service === 'shop')?.key) as string;
const range = `from=${start}&to=${Date.now()}`;
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
for (const scheme of ['light', 'dark'] as const) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, colorScheme: scheme });
  await page.goto(`${agent.http}/#/?${range}`);
  await page.waitForSelector('main[data-state="ready"]');
  await page.screenshot({ path: `${DOCS}dashboard-overview-${scheme}.png` });
  await page.goto(`${agent.http}/#/instance?key=${encodeURIComponent(shop)}&${range}`);
  await page.waitForSelector('main[data-state="ready"]');
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${DOCS}dashboard-instance-${scheme}.png`, fullPage: true });
  await page.close();
}
await browser.close();
for (const a of apps) await a.stop();
await agent.stop();
console.log(`screenshots: docs/dashboard-{overview,instance}-{light,dark}.png`);
