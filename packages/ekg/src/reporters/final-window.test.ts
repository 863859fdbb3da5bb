import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { run } from '../testing/child.js';

// A job shorter than one window (here 1 h: a job held open for its window would time the test out) must still report:
// ekg closes the open window when the loop runs
// dry and waits for its sends. These run the real `ekg-vitals/register` in a real process against real sockets.

test('a 300 ms job with ekg-vitals/register reports its only, partial window over UDP as it ends', async () => {
  const sock = dgram.createSocket('udp4');
  const lines: string[] = [];
  sock.on('message', (m) => lines.push(...m.toString().split('\n')));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  try {
    const c = run('worker', {
      register: true,
      env: { EKG_STATSD: `udp://127.0.0.1:${sock.address().port}`, EKG_INTERVAL: '1h' },
      args: ['300'],
    });
    const { code } = await c.exit;
    assert.equal(code, 0, c.stderr());
    // the datagrams were handed to the kernel before the process exited; give the socket's queue a turn to read them
    for (let i = 0; i < 3000 && !lines.some((l) => l.startsWith('runtime.memory.rss:')); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(
      lines.some((l) => /^runtime\.memory\.rss:\d+\|g/.test(l)),
      `got: ${lines.slice(0, 5).join(' | ')}`,
    );
    assert.ok(
      lines.some((l) => /^runtime\.gc\.count:\d+\|c/.test(l) || l.startsWith('runtime.cpu.')),
      lines.join('\n'),
    );
  } finally {
    sock.close();
  }
});

test('the same over TCP, when the connection is still being made as the job ends', async () => {
  let got = '';
  const srv = createServer((s) => s.on('data', (d) => (got += d)));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  try {
    const port = (srv.address() as { port: number }).port;
    const c = run('worker', { register: true, env: { EKG_STATSD: `tcp://127.0.0.1:${port}`, EKG_INTERVAL: '1h' }, args: ['200'] });
    const { code } = await c.exit;
    assert.equal(code, 0, c.stderr());
    for (let i = 0; i < 3000 && !got.includes('runtime.memory.rss:'); i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(got, /^runtime\.memory\.rss:\d+\|g/m);
  } finally {
    srv.close();
  }
});
