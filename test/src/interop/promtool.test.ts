import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, test } from 'node:test';
import { createEkg } from 'ekg-vitals';
import { need } from './system.js';

const skip = need('promtool');
const ekgs: Array<ReturnType<typeof createEkg>> = [];
after(async () => {
  for (const e of ekgs) await e.close();
});

function check(text: string): { status: number | null; out: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

test('promtool check metrics: lint-clean with promClientTotals off', { skip }, async () => {
  const ekg = createEkg({
    signals: false,
    promClientTotals: false,
    labels: { service: 'api "quoted"\nline' },
    vitals: [{ name: 'queue', stats: () => ({ depth: 3, workers: { busy: 1, idle: 2 }, healthy: true, note: 'info' }) }],
  });
  ekgs.push(ekg);
  const snap = await ekg.flush();
  const r = check(ekg.metricsText(snap));
  assert.equal(r.status, 0, r.out);
  assert.equal(r.out, '');
});

test("promtool check metrics: with prom-client's _total gauges, only those three are flagged", { skip }, async () => {
  const ekg = createEkg({ signals: false });
  ekgs.push(ekg);
  const r = check(ekg.metricsText(await ekg.flush()));
  // exit 3 is "lint problems", 1 would be a parse error
  assert.equal(r.status, 3, r.out);
  assert.deepEqual(r.out.split('\n').sort(), [
    'nodejs_active_handles_total non-counter metrics should not have "_total" suffix',
    'nodejs_active_requests_total non-counter metrics should not have "_total" suffix',
    'nodejs_active_resources_total non-counter metrics should not have "_total" suffix',
  ]);
});
