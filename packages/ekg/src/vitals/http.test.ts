import assert from 'node:assert/strict';
import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { HttpMonitor, markOwn } from './http.js';

/** GET over a keep-alive agent: the requests of one test share a connection. */
function get(port: number, path: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

test('http monitor: totals run across windows and a provisional read consumes nothing; ekg-owned responses and a keep-alive abort count right', async () => {
  const monitor = new HttpMonitor();
  monitor.start();
  let hangIn: () => void = () => {};
  const hangArrived = new Promise<void>((r) => {
    hangIn = r;
  });
  let hangGone: () => void = () => {};
  const hangClosed = new Promise<void>((r) => {
    hangGone = r;
  });
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/own') markOwn(res); // an ekg endpoint's response: not app traffic
    if (req.url === '/hang') {
      res.on('close', () => hangGone());
      hangIn();
      return;
    }
    res.statusCode = Number(req.url?.slice(1)) || 200;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (const p of ['/200', '/204', '/own']) await get(port, p, agent);
    const provisional = monitor.sample(1000, false);
    assert.deepEqual(provisional.classesTotal, [0, 2, 0, 0, 0, 0]);
    const first = monitor.sample(1000);
    assert.deepEqual(first.classes, [0, 2, 0, 0, 0, 0]);
    assert.deepEqual(first.classesTotal, [0, 2, 0, 0, 0, 0]);
    assert.equal(first.duration.count, 2);

    await get(port, '/404', agent);
    // the same keep-alive connection, its second request abandoned by the client
    await new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/hang', agent });
      req.on('error', () => resolve());
      req.end();
      void hangArrived.then(() => req.destroy());
    });
    await hangClosed;
    const second = monitor.sample(1000);
    assert.deepEqual(second.classes, [0, 0, 0, 1, 0, 0]);
    assert.deepEqual(second.classesTotal, [0, 2, 0, 1, 0, 0]);
    assert.equal(second.requests, 1);
    assert.equal(second.aborted, 1);
    assert.equal(second.abortedTotal, 1);
    assert.equal(second.inFlight, 0);
    assert.equal(second.duration.count, 1);
  } finally {
    monitor.stop();
    agent.destroy();
    await new Promise((r) => server.close(r));
  }
});

test('http monitor: pipelined requests on one connection are each timed and counted once, the slow first one included', async () => {
  const monitor = new HttpMonitor();
  monitor.start();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    // the first answers last: the second waits behind it on the connection
    const delay = req.url === '/slow' ? 30 : 0;
    setTimeout(() => {
      res.statusCode = req.url === '/missing' ? 404 : 200;
      res.end('x');
    }, delay);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    monitor.sample(1000);
    const { port } = server.address() as AddressInfo;
    const { connect } = await import('node:net');
    const sock = connect(port, '127.0.0.1');
    let got = '';
    await new Promise<void>((resolve, reject) => {
      sock.on('error', reject);
      sock.on('data', (d) => {
        got += d;
        if ((got.match(/HTTP\/1\.1 /g) ?? []).length === 3) resolve();
      });
      sock.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    sock.destroy();
    const s = monitor.sample(1000);
    assert.equal(s.requests, 3);
    assert.deepEqual(s.classes.slice(0, 5), [0, 2, 0, 1, 0]);
    assert.equal(s.duration.count, 3);
    assert.ok(s.duration.max >= 25, `the slow one timed from its own start (max ${s.duration.max} ms)`);
    assert.equal(s.inFlight, 0);
    assert.equal(s.aborted, 0);
  } finally {
    monitor.stop();
    server.close();
  }
});

/**
 * Two requests pipelined on a raw connection that the client closes before the server has answered
 * all of them: each response the connection still owed counts once as aborted, and none stays in
 * flight (a response queued behind another used to be forgotten: in flight forever).
 */
async function pipelineThenClose(paths: string[], answered: number): Promise<ReturnType<HttpMonitor['sample']>> {
  const monitor = new HttpMonitor();
  monitor.start();
  let arrived = 0;
  let allIn: () => void = () => {};
  const allArrived = new Promise<void>((r) => {
    allIn = r;
  });
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (++arrived === paths.length) allIn();
    if (req.url === '/hang') return; // never answered
    res.end('x');
  });
  let serverSide: Promise<void> = Promise.resolve();
  server.on('connection', (s) => {
    // registered before ekg's own 'close' listener (added at the first request), so it runs first
    serverSide = new Promise((r) => s.on('close', () => setImmediate(r)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    monitor.sample(1000);
    const { port } = server.address() as AddressInfo;
    const { connect } = await import('node:net');
    const sock = connect(port, '127.0.0.1');
    let got = '';
    const heard = new Promise<void>((resolve, reject) => {
      sock.on('error', reject);
      sock.on('data', (d) => {
        got += d;
        if ((got.match(/HTTP\/1\.1 /g) ?? []).length === answered) resolve();
      });
    });
    sock.write(paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''));
    await allArrived;
    if (answered > 0) await heard;
    sock.destroy();
    await serverSide;
    return monitor.sample(1000);
  } finally {
    monitor.stop();
    server.close();
  }
}

test('http monitor: a pipelined response still owed when its connection closes counts as aborted, not in flight forever', async () => {
  const s = await pipelineThenClose(['/fast', '/hang'], 1);
  assert.equal(s.requests, 1);
  assert.equal(s.duration.count, 1);
  assert.equal(s.aborted, 1);
  assert.equal(s.inFlight, 0);
});

test('http monitor: two responses owed on a closed connection are two aborts', async () => {
  const s = await pipelineThenClose(['/hang', '/hang'], 0);
  assert.equal(s.requests, 0);
  assert.equal(s.aborted, 2);
  assert.equal(s.abortedTotal, 2);
  assert.equal(s.inFlight, 0);
});
