/**
 * One behaviour suite, run against every adapter on the real framework over a real socket.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { serve } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import { createEkg, type Ekg } from '../../ekg.js';
import { contractTests } from '../../testing/contract-suite.js';
import { exchange, malformed, parseable, rng } from '../../testing/fuzz.js';
import { baseOf, closeServer, get, listening } from '../../testing/http.js';

const TOKEN = 's3cret-token';

interface Mounted {
  base: string;
  close(): Promise<void>;
}

type Mount = (ekg: Ekg) => Promise<Mounted>;

const APP_BODY = 'app says hi';

const mounts: Record<string, Mount> = {
  'node:http': async (ekg) => {
    const mw = ekg.node();
    const server = await listening(
      createServer((req, res) =>
        mw(req, res, () => {
          res.end(APP_BODY);
        }),
      ),
    );
    return { base: baseOf(server), close: () => closeServer(server) };
  },
  express: async (ekg) => {
    const app = express();
    app.use(ekg.express());
    app.get('/hello', (_req, res) => {
      res.send(APP_BODY);
    });
    const server = await listening(createServer(app));
    return { base: baseOf(server), close: () => closeServer(server) };
  },
  fastify: async (ekg) => {
    const app = Fastify();
    await app.register(ekg.fastify());
    app.get('/hello', async () => APP_BODY);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const server = app.server as Server;
    return { base: baseOf(server), close: () => app.close() };
  },
  koa: async (ekg) => {
    const app = new Koa();
    app.use(ekg.koa());
    app.use(async (ctx) => {
      if (ctx.path === '/hello') ctx.body = APP_BODY;
    });
    const server = await listening(createServer(app.callback()));
    return { base: baseOf(server), close: () => closeServer(server) };
  },
  'fetch (web standard)': async (ekg) => {
    // a plain (Request) => Response app, served by @hono/node-server's fetch bridge
    const app = async (req: Request) => (await ekg.handleFetch(req)) ?? new Response(APP_BODY);
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server));
    });
    return { base: baseOf(server), close: () => closeServer(server) };
  },
  hono: async (ekg) => {
    const app = new Hono();
    app.use(ekg.hono());
    app.get('/hello', (c) => c.text(APP_BODY));
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server));
    });
    return { base: baseOf(server), close: () => closeServer(server) };
  },
};

for (const [name, mount] of Object.entries(mounts)) {
  describe(`adapter: ${name}`, () => {
    let ekg: Ekg;
    let app: Mounted;
    let healthy = true;

    before(async () => {
      ekg = createEkg({
        prefix: '/ops',
        token: TOKEN,
        signals: false,
        checkCache: 0,
        // windows close only on flush(): a sampler tick between two flush() calls would split the counts
        interval: 3_600_000,
        vitals: [
          {
            name: 'db',
            stats: () => ({ pool: { size: 10, busy: 3 }, primary: true }),
            check: () => (healthy ? { ok: true } : { ok: false, detail: 'connection refused' }),
          },
        ],
      });
      await ekg.ready();
      app = await mount(ekg);
    });
    after(async () => {
      await app.close();
      await ekg.close();
    });

    contractTests(() => ({ base: app.base, prefix: '/ops', token: TOKEN, healthy: true }));

    test('total on hostile input: malformed request lines, URLs, headers and methods never reach the app as an error', async () => {
      const port = Number(new URL(app.base).port);
      const r = rng(7);
      const statuses: Record<number, number> = {};
      const problems: string[] = [];
      const note = (what: string, got: Awaited<ReturnType<typeof exchange>>) => {
        for (const x of got.statuses) statuses[x] = (statuses[x] ?? 0) + 1;
        if (got.hung) problems.push(`${what}: hung`);
        if (got.internalError) problems.push(`${what}: ekg internal error`);
      };
      for (let i = 0; i < 40; i++) {
        let batch = '';
        for (let k = 0; k < 50; k++) batch += parseable(r, '/ops', TOKEN);
        note(`batch ${i}`, await exchange(port, batch, 50));
      }
      for (let i = 0; i < 300; i++) {
        const { bytes } = malformed(r, '/ops');
        note(JSON.stringify(bytes.toString('latin1').slice(0, 60)), await exchange(port, bytes));
      }
      assert.deepEqual(problems, []);
      assert.ok((statuses[200] ?? 0) > 0 && (statuses[404] ?? 0) > 0 && (statuses[405] ?? 0) > 0, JSON.stringify(statuses));
      assert.equal((await get(app.base, '/ops/heartbeat')).body, 'heartbeat:ok');
      assert.equal((await get(app.base, '/hello')).body, APP_BODY);
    });

    test('GET /heartbeat answers the KomachiHeartbeat contract', async () => {
      const r = await get(app.base, '/ops/heartbeat');
      assert.equal(r.status, 200);
      assert.equal(r.body, 'heartbeat:ok');
      assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
      assert.equal(r.headers.get('cache-control'), 'no-store');
    });

    test('a failing check turns /heartbeat and /ready to 503 and names the vital', async () => {
      healthy = false;
      try {
        const hb = await get(app.base, '/ops/heartbeat');
        assert.equal(hb.status, 503);
        assert.equal(hb.body, 'heartbeat:NG');
        const json = await get(app.base, '/ops/heartbeat', { headers: { accept: 'application/json' } });
        assert.equal(json.status, 503);
        assert.deepEqual(JSON.parse(json.body), {
          status: 'NG',
          state: 'ready',
          checks: { db: { ok: false, detail: 'connection refused' } },
        });
        const ready = await get(app.base, '/ops/ready');
        assert.equal(ready.status, 503);
        assert.match(ready.body, /db: connection refused/);
        // liveness is not readiness: a failing dependency must not get the pod restarted
        assert.equal((await get(app.base, '/ops/live')).status, 200);
      } finally {
        healthy = true;
      }
      assert.equal((await get(app.base, '/ops/ready')).status, 200);
    });

    test('HEAD answers with status and headers, no body', async () => {
      const r = await get(app.base, '/ops/heartbeat', { method: 'HEAD' });
      assert.equal(r.status, 200);
      assert.equal(r.body, '');
      assert.equal(r.headers.get('content-length'), String('heartbeat:ok'.length));
    });

    test('unknown paths under the prefix are 404, wrong methods 405 with Allow', async () => {
      const nf = await get(app.base, '/ops/nope');
      assert.equal(nf.status, 404);
      assert.match(nf.body, /\/ops\/heartbeat/);
      const na = await get(app.base, '/ops/heartbeat', { method: 'POST', body: 'x' });
      assert.equal(na.status, 405);
      assert.equal(na.headers.get('allow'), 'GET, HEAD');
      const del = await get(app.base, '/ops/metrics', { method: 'DELETE' });
      assert.equal(del.status, 405);
    });

    test("the app's own routes still work", async () => {
      const r = await get(app.base, '/hello');
      assert.equal(r.status, 200);
      assert.equal(r.body, APP_BODY);
      // a path that merely starts with the prefix is not ekg's
      assert.notEqual((await get(app.base, '/opsx/heartbeat')).body, 'heartbeat:ok');
    });

    test('/stats and /metrics need the bearer token; probes stay open', async () => {
      for (const p of ['/ops/stats', '/ops/metrics']) {
        const none = await get(app.base, p);
        assert.equal(none.status, 401, p);
        assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
        const wrong = await get(app.base, p, { headers: { authorization: `Bearer ${TOKEN}x` } });
        assert.equal(wrong.status, 401, p);
        const basic = await get(app.base, p, { headers: { authorization: `Basic ${TOKEN}` } });
        assert.equal(basic.status, 401, p);
      }
      for (const p of ['/ops/heartbeat', '/ops/ready', '/ops/live']) assert.equal((await get(app.base, p)).status, 200, p);
    });

    test('/stats is nested JSON, one key per vital', async () => {
      await get(app.base, '/hello');
      await ekg.flush();
      const r = await get(app.base, '/ops/stats', { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
      const s = JSON.parse(r.body);
      assert.deepEqual(Object.keys(s), ['runtime', 'http', 'db', 'ekg']);
      assert.equal(typeof s.runtime.eventloop.delay.p99, 'number');
      assert.equal(typeof s.runtime.memory.heap.used, 'number');
      assert.deepEqual(s.db, { pool: { size: 10, busy: 3 }, primary: true });
      assert.ok(s.http.requests['2xx'] >= 1, JSON.stringify(s.http));
    });

    test("the http vital counts the app's requests, not ekg's own", async () => {
      await ekg.flush();
      await get(app.base, '/hello');
      await get(app.base, '/hello');
      for (let i = 0; i < 5; i++) await get(app.base, '/ops/heartbeat');
      await get(app.base, '/ops/nope');
      const snap = await ekg.flush();
      const http = (ekg.statsObject(snap).stats as { http: { requests: Record<string, number> } }).http;
      // A bare fetch handler has no Node response to mark, so there ekg's answers count as traffic.
      const expected = name === 'fetch (web standard)' ? 8 : 2;
      assert.equal(http.requests.total, expected, JSON.stringify(http));
    });

    test('/metrics speaks Prometheus text, and OpenMetrics when asked', async () => {
      const auth = { authorization: `Bearer ${TOKEN}` };
      const text = await get(app.base, '/ops/metrics', { headers: auth });
      assert.equal(text.status, 200);
      assert.equal(text.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
      assert.match(text.body, /^# TYPE process_cpu_user_seconds_total counter$/m);
      assert.match(text.body, /^ekg_db_pool_busy 3$/m);
      const om = await get(app.base, '/ops/metrics', {
        headers: { ...auth, accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' },
      });
      assert.match(om.headers.get('content-type') ?? '', /^application\/openmetrics-text; version=1.0.0/);
      assert.match(om.body, /^# TYPE process_cpu_user_seconds counter$/m);
      assert.ok(om.body.endsWith('# EOF\n'));
      // what Prometheus sends: gzip, decoded here by fetch; the page is the same
      const gz = await fetch(`${app.base}/ops/metrics`, { headers: { ...auth, 'accept-encoding': 'gzip' } });
      assert.equal(gz.headers.get('content-encoding'), 'gzip');
      assert.equal(await gz.text(), text.body);
    });
  });
}

describe('subpath exports: ekg-vitals/<framework> mounts an instance on the real framework', () => {
  let ekg: Ekg;
  before(async () => {
    ekg = createEkg({ prefix: '/ops', signals: false, interval: 3_600_000 });
    await ekg.ready();
  });
  after(() => ekg.close());

  test('each subpath exports create and mount; mount(ekg, { prefix }) answers there and passes the rest to the app', async () => {
    const sub = {
      node: await import('ekg-vitals/node'),
      express: await import('ekg-vitals/express'),
      fastify: await import('ekg-vitals/fastify'),
      koa: await import('ekg-vitals/koa'),
      hono: await import('ekg-vitals/hono'),
      fetch: await import('ekg-vitals/fetch'),
    };
    for (const [name, m] of Object.entries(sub)) {
      assert.equal(typeof m.create, 'function', `${name}.create`);
      assert.equal(typeof m.mount, 'function', `${name}.mount`);
    }
    const prefix = { prefix: '/sub' };
    // the same framework set-ups as above, each fed the subpath's mount instead of the instance method
    const via = {
      node: () => sub.node.mount(ekg, prefix),
      express: () => sub.express.mount(ekg, prefix),
      fastify: () => sub.fastify.mount(ekg, prefix),
      koa: () => sub.koa.mount(ekg, prefix),
      hono: () => sub.hono.mount(ekg, prefix),
      handleFetch: (req: Request) => sub.fetch.handle(ekg.router(prefix), req),
    } as unknown as Ekg;
    for (const [name, mount] of Object.entries(mounts)) {
      const app = await mount(via);
      try {
        const hb = await get(app.base, '/sub/heartbeat');
        assert.equal(hb.status, 200, name);
        assert.equal(hb.body, 'heartbeat:ok', name);
        assert.equal((await get(app.base, '/hello')).body, APP_BODY, name);
      } finally {
        await app.close();
      }
    }
    const handler = sub.fetch.mount(ekg, prefix);
    assert.equal((await handler(new Request('http://x/sub/heartbeat'))).status, 200);
    assert.equal((await handler(new Request('http://x/elsewhere'))).status, 404);
  });
});
