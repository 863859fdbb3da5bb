import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { applyDiff, flatten, goFloat, goStateJson, graphDefinitions, stateFile } from './json.js';

const BIN = fileURLToPath(new URL('../../bin/ekg.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'ekg-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** Runs the real `ekg` bin; its exit code, stdout and stderr. */
function ekg(args: string[], env: Record<string, string> = {}, stdin?: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, MACKEREL_PLUGIN_WORKDIR: work, ...env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ code, out, err }));
    p.stdin.end(stdin ?? '');
  });
}

const DOC = {
  runtime: { eventloop: { delay: { p99: 3.5, max: 12 } }, memory: { rss: 52428800 }, info: { version: 'v20', ok: true, none: null } },
  workers: [{ busy: 1 }, { busy: 3 }],
  top: [7, 8],
  huge: 1e21,
  tiny: 1.5e-7,
  négatif: -2,
  日本: { 値: 4 },
};

const answers: Array<[number, string, number?]> = [];
const srv = createServer((req, res) => {
  const [status, body, delay] = answers.shift() ?? [200, JSON.stringify(DOC)];
  setTimeout(() => res.writeHead(status, { 'content-type': 'application/json' }).end(body), delay ?? 0);
  req.resume();
});
await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
const base = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
after(() => {
  srv.closeAllConnections();
  srv.close();
});

describe('ekg json', () => {
  test('names every number as mackerel-plugin-json does, and skips strings, booleans, nulls and numbers in arrays', async () => {
    const r = await ekg(['json', '-url', `${base}/ops/stats`]);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trim().split('\n');
    const names = lines.map((l) => l.split('\t')[0]);
    assert.deepEqual(names, [
      'custom.0.busy',
      'custom.1.busy',
      'custom.huge',
      'custom.négatif',
      'custom.runtime.eventloop.delay.max',
      'custom.runtime.eventloop.delay.p99',
      'custom.runtime.memory.rss',
      'custom.tiny',
      'custom.日本.値',
    ]);
    const row = Object.fromEntries(lines.map((l) => l.split('\t')));
    assert.equal(row['custom.runtime.eventloop.delay.p99'], '3.500000');
    assert.equal(row['custom.huge'], '1000000000000000000000.000000');
    assert.equal(row['custom.tiny'], '0.000000', "Go's %f");
    for (const l of lines) assert.match(l, /^\S+\t-?\d+\.\d{6}\t\d{10}$/);
  });

  test('the naming rules on their own: arrays at the top and inside objects, nested arrays', () => {
    const m = flatten([{ a: 1 }, { b: { c: 2 } }, [{ d: 3 }]], 'p');
    assert.deepEqual(Object.fromEntries(m), { 'p.0.a': 1, 'p.1.b.c': 2, 'p.2.0.d': 3 });
    // an array inside an object is numbered in place of its key, as the original does
    assert.deepEqual(Object.fromEntries(flatten({ list: [{ x: 1 }, { x: 2 }] }, 'p')), { 'p.0.x': 1, 'p.1.x': 2 });
    assert.equal(goFloat(-0.1234567), '-0.123457');
    assert.equal(goFloat(1e22), '10000000000000000000000.000000');
  });

  test('-array-scalars keeps numbers inside arrays; a null inside an array is skipped (the plugin crashes)', async () => {
    const r = await ekg(['json', '-stdin', '-array-scalars', '-include', 'top'], {}, JSON.stringify({ ...DOC, top: [7, null, 8] }));
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(
      r.out
        .trim()
        .split('\n')
        .map((l) => l.split('\t').slice(0, 2).join(' ')),
      ['custom.top.0 7.000000', 'custom.top.2 8.000000'],
    );
  });

  test('-prefix, -include and -exclude on the full dotted name; -header is sent; -stdin reads standard input', async () => {
    const r = await ekg(['json', '-stdin', '-prefix', 'app', '-include', 'runtime', '-exclude', 'memory'], {}, JSON.stringify(DOC));
    assert.equal(r.code, 0);
    assert.deepEqual(
      r.out
        .trim()
        .split('\n')
        .map((l) => l.split('\t')[0]),
      ['app.runtime.eventloop.delay.max', 'app.runtime.eventloop.delay.p99'],
    );
  });

  test('--format prometheus, statsd and json', async () => {
    const p = await ekg(['json', '-stdin', '--format', 'prometheus', '-include', 'p99'], {}, JSON.stringify(DOC));
    assert.equal(p.out, 'custom_runtime_eventloop_delay_p99 3.5\n');
    const s = await ekg(['json', '-stdin', '--format=statsd', '-include', 'p99'], {}, JSON.stringify(DOC));
    assert.equal(s.out, 'custom.runtime.eventloop.delay.p99:3.5|g\n');
    const j = await ekg(['json', '-stdin', '--format', 'json', '-include', 'rss'], {}, JSON.stringify(DOC));
    assert.deepEqual(JSON.parse(j.out), { 'custom.runtime.memory.rss': 52428800 });
  });

  test('MACKEREL_AGENT_PLUGIN_META=1: graph definitions grouped by parent key, units from the catalogue', async () => {
    const r = await ekg(['json', '-stdin', '-include', 'runtime'], { MACKEREL_AGENT_PLUGIN_META: '1' }, JSON.stringify(DOC));
    const [head, json] = r.out.split('\n');
    assert.equal(head, '# mackerel-agent-plugin');
    const meta = JSON.parse(json as string) as { graphs: Record<string, { unit: string; metrics: Array<{ name: string }> }> };
    assert.deepEqual(Object.keys(meta.graphs).sort(), ['runtime.eventloop.delay', 'runtime.memory']);
    assert.equal(meta.graphs['runtime.eventloop.delay']?.unit, 'milliseconds');
    assert.equal(meta.graphs['runtime.memory']?.unit, 'bytes');
    assert.deepEqual(
      meta.graphs['runtime.eventloop.delay']?.metrics.map((m) => m.name),
      ['max', 'p99'],
    );
    assert.deepEqual(graphDefinitions(new Map([['custom.x', 1]]), 'custom').graphs.custom, {
      label: 'custom',
      unit: 'float',
      metrics: [{ name: 'x', label: 'x' }],
    });
  });

  test('-diff: 0 on the first run, a per-minute rate after, 0 on a reset and after a gap over 600 s', () => {
    const file = join(work, 'diff-state');
    const warnings: string[] = [];
    const run = (v: number, at: number) => {
      const m = new Map([
        ['custom.requests', v],
        ['custom.level', 5],
      ]);
      applyDiff(m, /requests/, file, at, (s) => warnings.push(s));
      return [m.get('custom.requests'), m.get('custom.level')];
    };
    assert.deepEqual(run(100, 1000), [0, 5], 'first run');
    assert.deepEqual(run(160, 1030), [120, 5], '60 more in 30 s: 120 a minute');
    assert.deepEqual(run(10, 1090), [0, 5], 'a reset');
    assert.deepEqual(run(70, 1150), [60, 5]);
    assert.deepEqual(run(500, 1900), [0, 5], 'a gap over 600 s');
    assert.ok(warnings.some((w) => w.includes('600')));
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { last_timestamp: number; metrics: Record<string, number> };
    assert.deepEqual(
      saved,
      { last_timestamp: 1900, metrics: { 'custom.requests': 500, 'custom.level': 5 } },
      'the raw values, as the original saves them',
    );
    assert.equal(
      readFileSync(file, 'utf8'),
      '{"last_timestamp":1900,"metrics":{"custom.level":5,"custom.requests":500}}\n',
      "byte for byte as Go's json.Encoder writes it: keys sorted, a newline",
    );
    assert.equal(
      goStateJson(
        7,
        new Map([
          ['b<&>\u2028"\\\t', -0],
          ['a', 1e-7],
          ['A', 1e21],
        ]),
      ),
      '{"last_timestamp":7,"metrics":{"A":1e+21,"a":1e-7,"b\\u003c\\u0026\\u003e\\u2028\\"\\\\\\t":-0}}\n',
    );
    assert.match(stateFile('custom', 'http://x/'), /mackerel-plugin-json\.[0-9a-f]{40}$/);
  });

  test('-diff from the command line keeps its state under MACKEREL_PLUGIN_WORKDIR', async () => {
    const url = `${base}/diff`;
    // the state of a run 30 s ago, where mackerel-plugin-json itself keeps it
    process.env.MACKEREL_PLUGIN_WORKDIR = work;
    const then = Math.floor(Date.now() / 1000) - 30;
    writeFileSync(stateFile('custom', url), JSON.stringify({ last_timestamp: then, metrics: { 'custom.n': 10 } }));
    answers.push([200, '{"n":40}']);
    const before = Date.now() / 1000;
    const r = await ekg(['json', '-url', url, '-diff', '^custom\\.n$']);
    const after = Date.now() / 1000;
    const rate = Number(r.out.split('\t')[1]);
    // 30 more over however many seconds passed since `then`, as the command saw its clock: per minute
    const lo = (30 * 60) / (Math.ceil(after) - then);
    const hi = (30 * 60) / (Math.floor(before) - then);
    assert.ok(
      rate >= lo - 1e-9 && rate <= hi + 1e-9,
      `30 more in ${Math.floor(before) - then}..${Math.ceil(after) - then} s: ${lo}..${hi} a minute (${r.out})`,
    );
    const saved = JSON.parse(readFileSync(stateFile('custom', url), 'utf8')) as { metrics: Record<string, number> };
    assert.deepEqual(saved.metrics, { 'custom.n': 40 });
  });

  test('every failure is a non-zero exit and one line on stderr (mackerel-plugin-json exits 0 silently)', async () => {
    const cases: Array<[string[], RegExp, Array<[number, string, number?]>?]> = [
      [[], /-url or -stdin are mandatory/],
      [['-url', 'x', '-stdin'], /exclusive/],
      [['-url', `${base}/`, '-include', '('], /-include: "\(" is not a valid regular expression/],
      [['-url', 'http://127.0.0.1:1/'], /cannot fetch .*ECONNREFUSED/],
      [['-url', `${base}/`], /answered HTTP 503/, [[503, 'heartbeat:NG']]],
      [['-url', `${base}/`], /is not JSON/, [[200, '{"a":']]],
      [['-url', `${base}/`, '-timeout', '200ms'], /no answer within 200 ms/, [[200, '{}', 1500]]],
      [['-nope'], /unknown flag -nope/],
    ];
    for (const [args, re, script] of cases) {
      if (script) answers.push(...script);
      const r = await ekg(['json', ...args]);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.err, re);
      assert.equal(r.err.trim().split('\n').length, 1, 'one line');
      assert.equal(r.out, '');
    }
  });
});

describe('ekg check', () => {
  test('OK, WARNING, CRITICAL and UNKNOWN as exit codes, with a line on stdout', async () => {
    const cases: Array<[string[], number, RegExp, Array<[number, string, number?]>?]> = [
      [[`${base}/ops/ready`], 0, /^OK: .* answered 200/, [[200, 'heartbeat:ok']]],
      [[`${base}/ops/ready`, '-warn', '50ms'], 1, /^WARNING: .* over 50 ms/, [[200, 'heartbeat:ok', 200]]],
      [[`${base}/ops/ready`], 2, /^CRITICAL: .* answered 503 heartbeat:NG/, [[503, 'heartbeat:NG']]],
      [['http://127.0.0.1:1/'], 2, /^CRITICAL: .*ECONNREFUSED/],
      [[`${base}/`, '-timeout', '100ms'], 2, /^CRITICAL: .*no answer within 100 ms/, [[200, 'ok', 1000]]],
      [[], 3, /^UNKNOWN: a URL is needed/],
      [['not a url'], 3, /^UNKNOWN/],
      [[`${base}/`, '-timeout', 'soon'], 3, /^UNKNOWN: -timeout/],
    ];
    for (const [args, code, re, script] of cases) {
      if (script) answers.push(...script);
      const r = await ekg(['check', ...args]);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.out}`);
      assert.match(r.out, re);
      assert.equal(r.out.trim().split('\n').length, 1);
    }
  });
});
