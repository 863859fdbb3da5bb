/**
 * The endpoint contract as a user sees it over a socket, one suite run against every
 * implementation: each adapter on its framework, the side server, and the side server answering
 * from the watchdog's thread while the main thread is stalled.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { ALLOW, ROUTES } from '../http/contract.js';

export interface ContractTarget {
  base: string;
  prefix: string;
  token: string;
  /** the verdict the probes should give (false while stalled) */
  healthy: boolean;
  /** answers given during a stall carry x-ekg-stalled-ms */
  stalled?: boolean;
}

interface Got {
  status: number;
  headers: Headers;
  body: Buffer;
}

/**
 * One request. A target that is not meant to be stalled may still be, for a moment, on a busy
 * machine (the watchdog then answers, marked `x-ekg-stalled-ms`): such an answer is asked again.
 */
async function req(t: ContractTarget, path: string, init: RequestInit = {}): Promise<Got> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(t.base + path, { ...init, signal: AbortSignal.timeout(10_000) });
    const got = { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
    if (t.stalled || !res.headers.has('x-ekg-stalled-ms') || attempt >= 100) return got;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const TEXT = 'text/plain; charset=utf-8';

function common(r: Got, what: string): void {
  assert.equal(r.headers.get('cache-control'), 'no-store', `${what}: cache-control`);
  const len = r.headers.get('content-length');
  // fetch asks for gzip and decodes it: the length on the wire is then the compressed one
  if (len !== null && r.body.length > 0 && !r.headers.get('content-encoding'))
    assert.equal(Number(len), r.body.length, `${what}: content-length`);
}

/** Registers the contract's tests; `target` is read when they run (after the caller's before hooks). */
export function contractTests(target: () => ContractTarget): void {
  test('contract: /heartbeat is the KomachiHeartbeat text, JSON when asked, the same status on HEAD', async () => {
    const t = target();
    const status = t.healthy ? 200 : 503;
    const r = await req(t, `${t.prefix}/heartbeat`);
    assert.equal(r.status, status);
    assert.equal(r.body.toString(), t.healthy ? 'heartbeat:ok' : 'heartbeat:NG');
    assert.equal(r.headers.get('content-type'), TEXT);
    common(r, 'heartbeat');
    if (t.stalled) assert.ok(Number(r.headers.get('x-ekg-stalled-ms')) > 0, 'marked as answered during a stall');
    const j = await req(t, `${t.prefix}/heartbeat`, { headers: { accept: 'application/json' } });
    assert.equal(j.status, status);
    assert.match(j.headers.get('content-type') ?? '', /^application\/json/);
    const body = JSON.parse(j.body.toString()) as { status: string; checks: Record<string, { ok: boolean }> };
    assert.equal(body.status, t.healthy ? 'ok' : 'NG');
    assert.equal(typeof body.checks, 'object');
    common(j, 'heartbeat json');
    const head = await req(t, `${t.prefix}/heartbeat`, { method: 'HEAD' });
    assert.equal(head.status, status);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers.get('content-length'), String((t.healthy ? 'heartbeat:ok' : 'heartbeat:NG').length));
  });

  test('contract: /ready follows the verdict, /live stays up, both open without a token', async () => {
    const t = target();
    const ready = await req(t, `${t.prefix}/ready`);
    assert.equal(ready.status, t.healthy ? 200 : 503);
    assert.equal(ready.headers.get('content-type'), TEXT);
    assert.match(ready.body.toString(), t.healthy ? /^ready:ok$/ : /^ready:NG \S/);
    common(ready, 'ready');
    const live = await req(t, `${t.prefix}/live/`);
    assert.equal(live.status, 200);
    assert.equal(live.body.toString(), 'live:ok');
    common(live, 'live');
  });

  test('contract: under the prefix, an unknown path is 404 naming the endpoints', async () => {
    const t = target();
    for (const path of [`${t.prefix}/nope`, `${t.prefix}/heartbeat/x`, `${t.prefix}/STATS`]) {
      const r = await req(t, path);
      assert.equal(r.status, 404, path);
      assert.equal(r.headers.get('content-type'), TEXT);
      for (const route of ROUTES) assert.ok(r.body.toString().includes(`${t.prefix}/${route.name}`), r.body.toString());
      common(r, path);
    }
  });

  test('contract: a method other than GET or HEAD is 405 with Allow, before any token check', async () => {
    const t = target();
    for (const route of ROUTES) {
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
        const r = await req(t, `${t.prefix}/${route.name}`, { method, ...(method === 'OPTIONS' ? {} : { body: 'x' }) });
        assert.equal(r.status, 405, `${method} ${route.name}`);
        assert.equal(r.headers.get('allow'), ALLOW);
        common(r, `${method} ${route.name}`);
      }
    }
  });

  test('contract: /stats and /metrics need the bearer token (any case of the scheme), also with a trailing slash or a query', async () => {
    const t = target();
    for (const route of ROUTES.filter((r) => !r.open)) {
      for (const path of [`${t.prefix}/${route.name}`, `${t.prefix}/${route.name}/`, `${t.prefix}/${route.name}?x=1`]) {
        for (const authorization of [
          undefined,
          `Bearer ${t.token}x`,
          `Bearer ${t.token.slice(0, -1)}`,
          `Basic ${t.token}`,
          `Bearer${t.token}`,
          t.token,
          'Bearer',
        ]) {
          const r = await req(t, path, authorization === undefined ? {} : { headers: { authorization } });
          assert.equal(r.status, 401, `${path} with ${authorization}`);
          assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="ekg"');
          common(r, path);
        }
      }
      for (const authorization of [`Bearer ${t.token}`, `bearer ${t.token}`, `BEARER  ${t.token}`]) {
        const r = await req(t, `${t.prefix}/${route.name}`, { headers: { authorization } });
        assert.equal(r.status, 200, `${route.name} with ${authorization}: ${r.body.toString().slice(0, 200)}`);
        common(r, route.name);
        if (t.stalled) assert.ok(Number(r.headers.get('x-ekg-stalled-ms')) > 0, 'marked as read during a stall');
      }
    }
    for (const route of ROUTES.filter((r) => r.open)) assert.notEqual((await req(t, `${t.prefix}/${route.name}`)).status, 401);
  });

  test('contract: /stats is JSON and /metrics is Prometheus text, OpenMetrics or gzip when asked', async () => {
    const t = target();
    const auth = { authorization: `Bearer ${t.token}` };
    const stats = await req(t, `${t.prefix}/stats`, { headers: auth });
    assert.match(stats.headers.get('content-type') ?? '', /^application\/json; charset=utf-8$/);
    assert.equal(typeof (JSON.parse(stats.body.toString()) as { runtime: unknown }).runtime, 'object');
    const text = await req(t, `${t.prefix}/metrics`, { headers: auth });
    assert.equal(text.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(text.headers.get('vary'), 'accept, accept-encoding');
    assert.match(text.body.toString(), /^# TYPE process_cpu_user_seconds_total counter$/m);
    const om = await req(t, `${t.prefix}/metrics`, {
      headers: { ...auth, accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' },
    });
    assert.equal(om.headers.get('content-type'), 'application/openmetrics-text; version=1.0.0; charset=utf-8');
    assert.ok(om.body.toString().endsWith('# EOF\n'));
    // node's fetch decodes gzip itself; ask through a raw request so the encoding is checked
    const { request } = await import('node:http');
    const gz = await new Promise<{ enc: string | undefined; body: Buffer }>((resolve, reject) => {
      const r = request(`${t.base}${t.prefix}/metrics`, { headers: { ...auth, 'accept-encoding': 'gzip' } }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ enc: res.headers['content-encoding'], body: Buffer.concat(parts) }));
      });
      r.on('error', reject);
      r.end();
    });
    assert.equal(gz.enc, 'gzip');
    assert.match(gunzipSync(gz.body).toString(), /^# TYPE process_cpu_user_seconds_total counter$/m);
  });
}
