import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startBin } from '../testing/bin.js';
import { parseListen } from './listeners.js';

const dir = mkdtempSync(join(tmpdir(), 'ekg-listen-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('one parser for listen addresses: every documented form, and nothing else', () => {
  const ok: Array<[string, string, boolean, boolean]> = [
    ['8125', '127.0.0.1:8125', true, true],
    [':8125', '127.0.0.1:8125', true, true],
    ['0.0.0.0:9125', '0.0.0.0:9125', true, true],
    ['localhost:9125', 'localhost:9125', true, true],
    ['[::1]:8125', '::1:8125', true, true],
    ['udp://127.0.0.1:8125', '127.0.0.1:8125', true, false],
    ['tcp://:8125', '127.0.0.1:8125', false, true],
    ['udp://8125', '127.0.0.1:8125', true, false],
    ['udp://[::]:8125', ':::8125', true, false],
  ];
  for (const [v, want, udp, tcp] of ok) {
    const a = parseListen(v, '127.0.0.1', { schemes: true });
    assert.ok(a && a !== 'off', v);
    assert.equal(`${a.host}:${a.port}`, want, v);
    assert.deepEqual([a.udp, a.tcp], [udp, tcp], v);
  }
  assert.equal(parseListen('off', '127.0.0.1'), 'off');
  for (const bad of ['', '81x25', '65536', 'host:', '::1:8125', 'http://x:1', 'unix:///tmp/s', 'a b:1', '[zz]:1', '1.2.3.4:8125:1'])
    assert.equal(parseListen(bad, '127.0.0.1', { schemes: true }), undefined, bad);
  // schemes only where they are asked for (--http has no transport to choose)
  assert.equal(parseListen('udp://127.0.0.1:1', '127.0.0.1'), undefined);
});

async function start(args: (p: number[]) => string[], env: (p: number[]) => NodeJS.ProcessEnv = () => ({})) {
  const a = await startBin((p) => ['--console', 'off', '--store', 'off', '--data', mkdtempSync(join(dir, 'd')), ...args(p)], env);
  return { ...a, out: a.out() };
}

async function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      r(true);
    });
    s.on('error', () => r(false));
  });
}

test('ekg-agent --statsd PORT --http PORT: the bare ports of the docs listen on 127.0.0.1', { timeout: 30_000 }, async () => {
  const a = await start(([s, h]) => ['--statsd', String(s), '--http', String(h)]);
  try {
    assert.equal(a.code, null, a.out);
    const [s, h] = a.ports as [number, number];
    assert.match(a.out, new RegExp(`statsd udp\\+tcp 127\\.0\\.0\\.1:${s}, http http://127\\.0\\.0\\.1:${h}`));
    // a line over TCP reaches the agent, and its HTTP answers on the bare port
    const c = net.connect(s, '127.0.0.1');
    c.end('listen.test:1|c\n');
    let got = 0;
    for (let i = 0; i < 200 && got < 1; i++) {
      got = await fetch(`http://127.0.0.1:${h}/api/v1/self`).then(
        async (r) => ((await r.json()) as { metrics_received: number }).metrics_received,
        () => 0,
      );
      if (got < 1) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(got, 1);
  } finally {
    await a.stop();
  }
});

test('EKG_AGENT_STATSD=PORT and `statsd: PORT` in the YAML file', { timeout: 30_000 }, async () => {
  const e = await start(
    () => ['--http', 'off'],
    ([s]) => ({ EKG_AGENT_STATSD: String(s) }),
  );
  try {
    assert.match(e.out, new RegExp(`statsd udp\\+tcp 127\\.0\\.0\\.1:${e.ports[0]}, http off`), e.out);
  } finally {
    await e.stop();
  }
  const f = await start(([s, h]) => {
    const p = join(dir, `c${s}.yaml`);
    writeFileSync(p, `statsd: ${s}\nhttp: :${h}\n`);
    return ['--config', p];
  });
  try {
    assert.match(f.out, new RegExp(`statsd udp\\+tcp 127\\.0\\.0\\.1:${f.ports[0]}, http http://127\\.0\\.0\\.1:${f.ports[1]}`), f.out);
  } finally {
    await f.stop();
  }
});

test('udp://HOST:PORT listens on UDP only, tcp://HOST:PORT on TCP only', { timeout: 30_000 }, async () => {
  const u = await start(([s]) => ['--statsd', `udp://127.0.0.1:${s}`, '--http', 'off']);
  try {
    assert.match(u.out, new RegExp(`statsd udp 127\\.0\\.0\\.1:${u.ports[0]},`), u.out);
    assert.equal(await tcpAccepts(u.ports[0] as number), false, 'no TCP listener');
  } finally {
    await u.stop();
  }
  const t = await start(([s]) => ['--statsd', `tcp://:${s}`, '--http', 'off']);
  try {
    assert.match(t.out, new RegExp(`statsd tcp 127\\.0\\.0\\.1:${t.ports[0]},`), t.out);
    assert.equal(await tcpAccepts(t.ports[0] as number), true);
    // the UDP port is left free
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((r, j) => {
      udp.once('error', j);
      udp.bind(t.ports[0], '127.0.0.1', r);
    });
    udp.close();
  } finally {
    await t.stop();
  }
});

test('Heroku mode: HEROKU_METRICS_URL and PORT set, no StatsD address: UDP only on 127.0.0.1:$PORT, beside the web app', {
  timeout: 30_000,
}, async () => {
  // the web app holds TCP $PORT, as on a dyno
  let web: net.Server | undefined;
  const a = await start(
    () => ['--http', 'off'],
    ([p]) => {
      web = net.createServer().listen(p, '127.0.0.1');
      return { HEROKU_METRICS_URL: 'http://127.0.0.1:9/metrics', PORT: String(p) };
    },
  );
  try {
    assert.equal(a.code, null, a.out);
    assert.match(a.out, new RegExp(`statsd udp 127\\.0\\.0\\.1:${a.ports[0]}\\b.*Heroku mode`), a.out);
  } finally {
    await a.stop();
    web?.close();
  }
});

test('a bad address exits 2 naming the option, where it came from and the accepted forms', { timeout: 30_000 }, async () => {
  const cases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
    [
      ['--statsd', '81x25'],
      {},
      /--statsd: "81x25" is not \[HOST:\]PORT or another listen address; the forms are PORT, :PORT, HOST:PORT, \[IPv6\]:PORT or off; udp:\/\//,
    ],
    [
      ['--http', 'udp://127.0.0.1:1'],
      {},
      /--http: "udp:\/\/127\.0\.0\.1:1" is not \[HOST:\]PORT or another listen address; the forms are PORT, :PORT/,
    ],
    [[], { EKG_AGENT_STATSD: 'nope' }, /EKG_AGENT_STATSD: "nope" is not \[HOST:\]PORT or another listen address/],
    [['--config', join(dir, 'bad.yaml')], {}, /bad\.yaml:2: statsd: "8125x" is not \[HOST:\]PORT or another listen address/],
  ];
  writeFileSync(join(dir, 'bad.yaml'), 'http: off\nstatsd: 8125x\n');
  for (const [args, env, re] of cases) {
    const a = await start(
      () => args,
      () => env,
    );
    assert.equal(a.code, 2, a.out);
    assert.match(a.out, re);
  }
});
