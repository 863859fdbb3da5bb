import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * A fuzz run of the agent's HTTP server over real sockets: malformed request lines, URLs,
 * headers, methods and raw bytes, and well-formed requests with hostile targets, parameters and
 * headers, pipelined. The agent runs in its own process, as in production; it must answer every
 * well-formed request, keep answering /heartbeat during and after, raise no unexpected error
 * (http_errors stays 0) and not grow.
 */

const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));
const REQUESTS = 100_000;
const PIPELINE = 100;
const CONNECTIONS = 4;

/** A fixed pseudo-random sequence (the same requests every run; the seed is in the test's name). */
function prng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  return { next, int, pick };
}
type Rnd = ReturnType<typeof prng>;

const PATHS = [
  '/',
  '/index.html',
  '/ui/nothing.js',
  '/heartbeat',
  '/metrics',
  '/api/v1/self',
  '/api/v1/instances',
  '/api/v1/series',
  '/api/v1/query',
  '/api/v1/batch',
  '/api/v1/events',
  '/api/v1/alerts',
  '/api/v1/',
  '/api/v2/query',
  '/v1/push',
  '//x:99999',
  '//[',
  '//a%20b',
  '/..%2f..%2fetc%2fpasswd',
  '/%',
  '/%zz',
  '/%00',
  '/heartbeat/',
  '/HEARTBEAT',
  'http://agent/heartbeat',
  'http://[/',
];
const PARAMS = [
  'name',
  'tags',
  'from',
  'to',
  'step',
  'agg',
  'by',
  'match',
  'limit',
  'q',
  'instance',
  'service',
  'host',
  'pid',
  'aggregation',
  '',
];
const VALUES = [
  '',
  'heap',
  'fuzz.*',
  '*a*a*a*a*a*a*a*a*b',
  'now',
  'now-1h',
  '-5m',
  '-99999999999999999999999d',
  '9'.repeat(400),
  '1e309',
  'NaN',
  '-1',
  '0',
  '10s',
  '0.5s',
  'max',
  'p99',
  'p42',
  'service:a,host:*',
  'service',
  ':',
  ',,,',
  '10000',
  '100001',
  'name%3Dfuzz.g%26agg%3Dmax',
  'name%3Dfuzz.g%26aggregation%3Dmax',
  '%',
  '%ff%fe',
  '%00',
  '%E2%80%AE',
  '\u0000',
];
const METHODS = ['GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'PROPFIND', 'SEARCH'];
const TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@";

/** Printable, header-safe junk (no CR, LF or NUL, which make the request malformed). */
const junk = (r: Rnd, max: number) => Array.from({ length: r.int(max) }, () => String.fromCharCode(32 + r.int(95))).join('');
/** Junk for a URL: unreserved characters and percent-escapes of any byte. */
const urlJunk = (r: Rnd, max: number) =>
  Array.from({ length: r.int(max) }, () =>
    r.next() < 0.3 ? `%${r.int(256).toString(16).padStart(2, '0')}` : TOKEN_CHARS[r.int(TOKEN_CHARS.length)],
  ).join('');

function query(r: Rnd): string {
  const n = r.int(5);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    const k = r.next() < 0.9 ? r.pick(PARAMS) : urlJunk(r, 12);
    const v = r.next() < 0.8 ? encodeURIComponent(r.pick(VALUES)).replace(/%25/g, '%') : urlJunk(r, 40);
    parts.push(r.next() < 0.05 ? k : `${k}=${v}`);
  }
  return parts.length ? `?${parts.join('&')}` : r.next() < 0.1 ? '?' : '';
}

/** One well-formed request (it parses: the agent must answer it), hostile in what it says; `head`: it is a HEAD. */
function wellFormed(r: Rnd, last: boolean): { text: string; head: boolean } {
  const method = r.pick(METHODS);
  let target = r.next() < 0.85 ? r.pick(PATHS) : `/${urlJunk(r, 30)}`;
  if (method === 'OPTIONS' && r.next() < 0.2) target = '*';
  else if (target !== '*') target += query(r);
  const headers = ['host: agent'];
  const nh = r.int(4);
  for (let i = 0; i < nh; i++) {
    const name = r.pick([
      'x-ekg-host',
      'x-ekg-service',
      'x-ekg-pid',
      'authorization',
      'accept',
      'accept-encoding',
      'if-none-match',
      'x-junk',
      'cookie',
    ]);
    const value = r.pick(['h,evil:1', 'Bearer x', 'bearer', 'BEARER    abc', 'gzip', 'application/json', '*/*', '"abc"', junk(r, 60)]);
    headers.push(`${name}: ${value}`);
  }
  let body = '';
  if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
    body = r.pick([
      '{"gauges":{"fuzz.g":1}}',
      '{"counters":{"fuzz.c":2},"gauges":{}}',
      '{',
      '[]',
      'null',
      '{"gauges":{"x":"1"}}',
      junk(r, 200),
    ]);
    headers.push(`content-length: ${Buffer.byteLength(body)}`);
  }
  if (last) headers.push('connection: close');
  return { text: `${method} ${target} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n${body}`, head: method === 'HEAD' };
}

/** One request the HTTP parser refuses, or that ends HTTP on its connection (CONNECT): the agent answers 400 (431, 405) or closes, and lives. */
function malformed(r: Rnd): string | Buffer {
  const k = r.int(18);
  switch (k) {
    case 0:
      return Buffer.from(Array.from({ length: 1 + r.int(300) }, () => r.int(256)));
    case 1:
      return `GET /${String.fromCharCode(r.int(32))} HTTP/1.1\r\n\r\n`;
    case 2:
      return `${junk(r, 10).replace(/ /g, '') || 'X'}\u0001 / HTTP/1.1\r\n\r\n`;
    case 3:
      return `GET / HTTP/${r.int(10)}.${r.int(10)}\r\n\r\n`;
    case 4:
      return 'GET / HTTP/1.1\r\nbad header\r\n\r\n';
    case 5:
      return `GET / HTTP/1.1\r\nx: ${'a'.repeat(17_000 + r.int(10_000))}\r\n\r\n`;
    case 6:
      return `GET /${'a'.repeat(17_000)} HTTP/1.1\r\n\r\n`;
    case 7:
      return 'POST /v1/push HTTP/1.1\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!';
    case 8:
      return 'POST /v1/push HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\n';
    case 9:
      return `POST /v1/push HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n${junk(r, 10)}\r\nzz\r\n`;
    case 10:
      return 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
    case 11:
      return Buffer.from('16030100a5010000a10303', 'hex');
    case 12:
      return `GET / HTTP/1.1\r\n${'h: v\r\n'.repeat(3000)}\r\n`;
    case 13:
      return 'GET / HTTP/1.1\r\nhost: a\r\n folded: value\r\n\r\n';
    case 14:
      return `GET / HTTP/1.1\r\nx${String.fromCharCode(r.int(32))}y: 1\r\n\r\n`;
    case 16:
      return `CONNECT ${r.pick(['agent:80', '127.0.0.1:22', '[::1]:1', 'x'])} HTTP/1.1\r\nhost: agent\r\n\r\n${junk(r, 20)}`;
    case 15:
      return `GET ${r.pick(['x', '*', 'a:b'])}?${urlJunk(r, 20)} HTTP/1.1\r\nhost: a\r\n\r\n`;
    default:
      return 'POST /v1/push HTTP/1.1\r\ncontent-length: -1\r\n\r\n';
  }
}

/**
 * Sends `data` on one connection and reads the answers (`heads`: whether each answer has no body,
 * as to a HEAD); resolves with how many came back once the agent closes the connection.
 */
function exchange(
  port: number,
  data: Array<string | Buffer>,
  heads: boolean[] = [],
  timeoutMs = 30_000,
  end = false,
): Promise<{ answered: number; error?: string }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let answered = 0;
    let buf: Buffer = Buffer.alloc(0);
    let error: string | undefined;
    const timer = setTimeout(() => s.destroy(new Error('timeout')), timeoutMs);
    s.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        if (!head.startsWith('HTTP/1.1 ')) {
          error = `not an answer: ${JSON.stringify(head.slice(0, 80))}`;
          s.destroy();
          return;
        }
        const status = Number(head.slice(9, 12));
        const length = /\r\ncontent-length: *(\d+)/i.exec(head);
        const bodyless = heads[answered] === true || status === 204 || status === 304 || status < 200;
        if (!bodyless && !length) {
          // Node's own refusals (a missing Host) close instead of counting their body
          if (!/\r\nconnection: *close/i.test(head)) error = `an answer without content-length: ${JSON.stringify(head.slice(0, 80))}`;
          answered++;
          s.destroy();
          return;
        }
        const size = bodyless ? 0 : Number(length?.[1] ?? 0);
        if (buf.length < end + 4 + size) return;
        buf = buf.subarray(end + 4 + size);
        answered++;
      }
    });
    const done = (e?: string) => {
      clearTimeout(timer);
      const why = error ?? e;
      resolve({ answered, ...(why ? { error: why } : {}) });
    };
    s.on('error', (e) => done(e.message));
    s.on('close', () => done());
    for (const d of data) s.write(d);
    // a request cut short waits for the rest until the agent's timeouts; the end of the stream ends it
    if (end) s.end();
  });
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m?.[1]) / 1024);
}

async function startAgent(data: string): Promise<{ child: ChildProcess; port: number; stderr: () => string }> {
  const child = spawn(
    process.execPath,
    [CLI, '--statsd', 'off', '--http', '127.0.0.1:0', '--data', data, '--flush-interval', '1s', '--console', 'off'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let err = '';
  child.stderr?.on('data', (d) => {
    err += d;
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d) => {
      out += d;
      const m = /http http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`the agent exited (${code}) before listening: ${err}`)));
  });
  return { child, port, stderr: () => err };
}

test('fuzz (seed 14): 100k hostile requests over real sockets; the agent answers each, keeps /heartbeat, raises nothing and does not grow', {
  timeout: 240_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ekg-fuzz-'));
  const { child, port, stderr } = await startAgent(dir);
  after(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const base = `http://127.0.0.1:${port}`;
  // something to query: pushed series
  for (let i = 0; i < 20; i++)
    await fetch(`${base}/v1/push`, {
      method: 'POST',
      headers: { 'x-ekg-service': `s${i % 3}`, 'x-ekg-pid': String(i) },
      body: '{"gauges":{"fuzz.g":1},"counters":{"fuzz.c":1}}',
    });
  // its first answers warm the agent (the dashboard's files are read and gzipped once)
  await fetch(`${base}/`);
  await fetch(`${base}/metrics`);
  const rssBefore = rssMb(child.pid as number);

  // /heartbeat, probed all along from a process of its own, so that the fuzzing client's work does
  // not delay the probes' clock: one line per probe, `<ms> <status> <body>`
  const prober = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `for (;;) {
        const t0 = performance.now();
        try {
          const r = await fetch(${JSON.stringify(`${base}/heartbeat`)}, { signal: AbortSignal.timeout(10_000) });
          const body = await r.text();
          process.stdout.write((performance.now() - t0).toFixed(1) + ' ' + r.status + ' ' + body + '\\n');
        } catch (err) {
          process.stdout.write('- ' + err.message + '\\n');
        }
        await new Promise((r) => setTimeout(r, 50));
      }`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  after(() => prober.kill('SIGKILL'));
  let probed = '';
  prober.stdout?.on('data', (d) => {
    probed += d;
  });
  // the baseline: 20 probes before any fuzzing, on this machine as loaded as it is now
  const lines = () => probed.split('\n').filter(Boolean);
  for (const end = Date.now() + 60_000; lines().length < 20; await new Promise((res) => setTimeout(res, 50)))
    if (Date.now() > end) throw new Error(`${lines().length} baseline probes after 60 s: ${probed}`);
  const baselineLines = lines().length;

  const r = prng(14);
  let sent = 0;
  let answered = 0;
  let malformedSent = 0;
  const unanswered: string[] = [];
  const worker = async () => {
    while (sent < REQUESTS) {
      const batch = Array.from({ length: PIPELINE }, (_, i) => wellFormed(r, i === PIPELINE - 1));
      sent += PIPELINE;
      const a = await exchange(
        port,
        [batch.map((b) => b.text).join('')],
        batch.map((b) => b.head),
      );
      answered += a.answered;
      if (a.answered < PIPELINE)
        unanswered.push(
          `${PIPELINE - a.answered} of a pipeline unanswered (${a.error ?? 'closed'}) from ${JSON.stringify(batch[a.answered]?.text.slice(0, 300))}`,
        );
      // then a few requests the parser refuses, each on its own connection
      const bad = await Promise.all(Array.from({ length: 2 }, () => exchange(port, [malformed(r)], [], 10_000, true)));
      malformedSent += bad.length;
      sent += bad.length;
      for (const b of bad) if (b.error && !/ECONNRESET|EPIPE/.test(b.error)) unanswered.push(`malformed: ${b.error}`);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  const seconds = (performance.now() - t0) / 1000;
  prober.kill();
  await new Promise((r) => prober.once('exit', r));
  const probes: number[] = [];
  const probeFailures: string[] = [];
  const baseline: number[] = [];
  for (const [i, line] of lines().entries()) {
    const [ms, status, body] = line.split(' ');
    if (ms === '-' || status !== '200' || !body?.startsWith('heartbeat:')) probeFailures.push(line);
    else (i < baselineLines ? baseline : probes).push(Number(ms));
  }

  assert.equal(child.exitCode, null, `the agent died: ${stderr()}`);
  assert.ok(sent >= REQUESTS);
  assert.deepEqual(unanswered.slice(0, 5), [], `${unanswered.length} connections short`);
  assert.deepEqual(probeFailures, []);
  assert.ok(probes.length >= 3, `${probes.length} probes`);
  const hb = await fetch(`${base}/heartbeat`);
  assert.equal(await hb.text(), 'heartbeat:ok');
  const self = (await (await fetch(`${base}/api/v1/self`)).json()) as Record<string, number>;
  assert.equal(self.http_errors, 0, `unexpected errors while serving: ${stderr()}`);
  assert.ok((self.http_bad_requests ?? 0) > 0);
  const rssAfter = rssMb(child.pid as number);
  assert.ok(rssAfter < rssBefore + 200, `RSS ${rssBefore} MB → ${rssAfter} MB`);
  const sorted = [...probes].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] as number;
  const base0 = [...baseline].sort((a, b) => a - b)[Math.floor(baseline.length / 2)] as number;
  t.diagnostic(
    `${sent} requests (${malformedSent} malformed) in ${seconds.toFixed(1)} s, ${answered} well-formed answered; ` +
      `/heartbeat: ${probes.length} probes, median ${median.toFixed(1)} ms (unfuzzed ${base0.toFixed(1)} ms), max ${(sorted.at(-1) as number).toFixed(1)} ms; RSS ${rssBefore} → ${rssAfter} MB`,
  );
  // fuzzing slows the probes by a bounded factor of what this machine gives unfuzzed, measured in the same run (the
  // issue's absolute 100 ms belongs to an idle machine: bench/); a busy machine delays some probes, not most
  assert.ok(median <= 10 * base0 + 100, `median /heartbeat ${median.toFixed(1)} ms while fuzzed, ${base0.toFixed(1)} ms unfuzzed`);
});
