import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type Change, mackerelBodies, Notifier, slackBody, webhookBody } from './notify.js';

const dir = mkdtempSync(join(tmpdir(), 'ekg-notify-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const change = (i: number, state: Change['state'] = 'firing'): Change => ({
  alert: 'depth',
  state,
  severity: i % 2 ? 'warning' : 'critical',
  group: { service: `s${i}` },
  value: 150,
  threshold: 100,
  op: 'above',
  since: 1_800_000_000_000,
  at: 1_800_000_003_000,
  message: 'queue.depth max 150 above 100',
  link: `/#/service?name=s${i}`,
  renotify: 0,
});

/** A receiver on a real socket that keeps each request's headers and JSON body. */
async function receiver() {
  const got: Array<{ url: string; headers: IncomingHttpHeaders; body: unknown }> = [];
  const server = createServer((req, res) => {
    let b = '';
    req.on('data', (d) => {
      b += d;
    });
    req.on('end', () => {
      got.push({ url: req.url ?? '', headers: req.headers, body: JSON.parse(b) });
      res.end('{"success":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    got,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((r) => server.close(r)),
  };
}

const until = async (fn: () => boolean) => {
  const end = Date.now() + 10_000;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('mackerel: the key from api_key_file (or the env var api_key_env names), reports to the host, links to dashboard_url', async () => {
  const r = await receiver();
  const keyFile = join(dir, 'key');
  writeFileSync(keyFile, 'from-file-key\nignored\n');
  const n = new Notifier(
    { type: 'mackerel', url: r.url, host_id: 'h1', api_key_file: keyFile, dashboard_url: 'https://ekg.example.com' },
    join(dir, 'spool-a'),
    'http://127.0.0.1:8787',
  );
  n.send([change(0), change(1, 'resolved')]);
  await until(() => r.got.length === 1);
  assert.equal(r.got[0]?.url, '/api/v0/monitoring/checks/report');
  assert.equal(r.got[0]?.headers['x-api-key'], 'from-file-key');
  assert.deepEqual(r.got[0]?.body, {
    reports: [
      {
        source: { type: 'host', hostId: 'h1' },
        name: 'ekg depth service=s0',
        status: 'CRITICAL',
        message: 'depth {service=s0} firing (critical): queue.depth max 150 above 100 https://ekg.example.com/#/service?name=s0',
        occurredAt: 1_800_000_003,
      },
      {
        source: { type: 'host', hostId: 'h1' },
        name: 'ekg depth service=s1',
        status: 'OK',
        message: 'depth {service=s1} resolved (warning): queue.depth max 150 above 100 https://ekg.example.com/#/service?name=s1',
        occurredAt: 1_800_000_003,
      },
    ],
  });
  await n.close();
  process.env.EKG_TEST_MKR_KEY = 'from-env-key';
  const m = new Notifier({ type: 'mackerel', url: r.url, host_id: 'h1', api_key_env: 'EKG_TEST_MKR_KEY' }, join(dir, 'spool-b'), '');
  m.send([change(2)]);
  await until(() => r.got.length === 2);
  assert.equal(r.got[1]?.headers['x-api-key'], 'from-env-key');
  await m.close();
  assert.throws(
    () => new Notifier({ type: 'mackerel', host_id: 'h1', api_key_env: 'EKG_TEST_NO_SUCH_KEY' }, join(dir, 'spool-c'), ''),
    /mackerel api key: the environment variable EKG_TEST_NO_SUCH_KEY is not set/,
  );
  await r.close();
});

test('mackerel: at most 100 reports a request; Slack: one message for an evaluation, at most 40 lines', () => {
  const many = Array.from({ length: 250 }, (_, i) => change(i));
  assert.deepEqual(
    mackerelBodies(many, 'h', '').map((b) => b.reports.length),
    [100, 100, 50],
  );
  const s = slackBody(many, 'https://d');
  assert.equal(s.text, 'ekg-agent: 250 firing, 0 resolved');
  const lines = s.blocks[0]?.text.text.split('\n') ?? [];
  assert.equal(lines.length, 41);
  assert.equal(
    lines[0],
    ':red_circle: depth {service=s0} firing (critical): queue.depth max 150 above 100 <https://d/#/service?name=s0|dashboard>',
  );
  assert.match(lines[1] ?? '', /^:large_orange_circle: /);
  assert.equal(lines[40], '… and 210 more');
  assert.match(slackBody([change(0, 'resolved')], '').blocks[0]?.text.text ?? '', /^:large_green_circle: /);
});

test('a spool over spool_max_bytes drops its oldest notifications, and counts them', async () => {
  // a port nobody listens on: every try fails, the notifications wait
  const n = new Notifier(
    { type: 'webhook', url: 'http://127.0.0.1:9/hook', spool_max_bytes: 600, backoff: 60_000 },
    join(dir, 'spool-d'),
    '',
  );
  for (let i = 0; i < 3; i++) n.send([change(i)]);
  assert.ok(n.status.queued < 3, `queued ${n.status.queued}`);
  assert.equal(n.status.batches_dropped + n.status.queued, 3);
  await n.close();
});

test("docs/agent-alerts.md lists the webhook body's fields, all of them and no other", () => {
  const doc = readFileSync(new URL('../../../../docs/agent-alerts.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('### webhook'), doc.indexOf('### slack'));
  const documented = [...section.matchAll(/^\| ((?:`[a-z]+`(?:, )?)+) \|/gm)].flatMap((m) =>
    [...(m[1] as string).matchAll(/`([a-z]+)`/g)].map((x) => x[1]),
  );
  assert.deepEqual(documented.sort(), Object.keys(webhookBody(change(0), '')).sort());
  // and the example body has the same keys
  const example = JSON.parse(/```json\n([\s\S]*?)```/.exec(section)?.[1] ?? '{}') as Record<string, unknown>;
  assert.deepEqual(Object.keys(example), Object.keys(webhookBody(change(0), '')));
});
