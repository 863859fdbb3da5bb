import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { type ExporterStatus, post } from './exporter.js';

test('a receiver that answers an endless body: post reads its first 64 KiB for the error, then hangs up', async () => {
  let written = 0;
  const chunk = Buffer.alloc(1 << 20, 'a');
  const closed = new Promise<void>((resolve) => {
    const srv = createServer((req, res) => {
      req.resume();
      res.writeHead(500);
      const more = () => {
        while (!res.destroyed && res.write(chunk)) written += chunk.length;
        if (!res.destroyed) res.once('drain', more);
      };
      res.on('close', () => {
        srv.close();
        resolve();
      });
      more();
    });
    srv.listen(0, '127.0.0.1', async () => {
      const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/write`;
      const ex = { status: {} as ExporterStatus };
      const outcome = await post(ex, url, 'm 1', {});
      assert.equal(outcome, 'retry');
      assert.match(ex.status.last_error ?? '', /^HTTP 500 a{200}$/);
    });
  });
  await closed;
  assert.ok(written < 64 << 20, `the receiver wrote ${written} bytes before the agent hung up`);
});
