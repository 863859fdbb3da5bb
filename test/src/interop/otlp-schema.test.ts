import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { encodeWriteRequest, type FlushResult, otlpJson, otlpModel, otlpProto, toTimeSeries } from 'ekg-agent';
import protobuf from 'protobufjs';
import { statsdWindows } from '../../../packages/agent/dist/testing/windows.js';
import { rng } from '../../../packages/ekg/dist/testing/fuzz.js';

/**
 * The OTLP encoder checked against the official schema (opentelemetry-proto, vendored under
 * test/proto with its licence), and the remote-write encoder against prompb's messages as the
 * remote write 1.0 spec gives them: every body decodes, with a strict check that rejects unknown
 * fields, wrong wire types, nulls and non-integer integers; JSON and protobuf say the same thing; and
 * a fuzz run of random StatsD lines (tags that collide, sample rates, extreme values) through the
 * real parser and aggregator gives only valid batches.
 */
const protoDir = fileURLToPath(new URL('../../proto/', import.meta.url));
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => join(protoDir, target);
root.loadSync('opentelemetry/proto/collector/metrics/v1/metrics_service.proto');
root.resolveAll();
const Request = root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest');

// prompb as the remote write 1.0 specification lists it
const prompb = protobuf.parse(`
syntax = "proto3";
package prometheus;
message WriteRequest { repeated TimeSeries timeseries = 1; }
message TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; }
message Label { string name = 1; string value = 2; }
message Sample { double value = 1; int64 timestamp = 2; }
`).root;
prompb.resolveAll();
const WriteRequest = prompb.lookupType('prometheus.WriteRequest');

const VARINT = new Set(['int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'bool']);
const I64 = new Set(['double', 'fixed64', 'sfixed64']);
const I32 = new Set(['float', 'fixed32', 'sfixed32']);

/** Walks protobuf bytes against the schema: every field known, every wire type the field's. */
function strictWire(type: protobuf.Type, buf: Uint8Array, path: string): void {
  const r = protobuf.Reader.create(buf);
  while (r.pos < r.len) {
    const tag = r.uint32();
    const id = tag >>> 3;
    const wire = tag & 7;
    const f = type.fieldsById[id];
    if (!f) throw new Error(`${path}: unknown field ${id} in ${type.name}`);
    const at = `${path}.${f.name}`;
    if (f.resolvedType instanceof protobuf.Type) {
      assert.equal(wire, 2, `${at}: a message is length-delimited`);
      const len = r.uint32();
      strictWire(f.resolvedType, buf.subarray(r.pos, r.pos + len), at);
      r.skip(len);
      continue;
    }
    const scalar = f.resolvedType instanceof protobuf.Enum ? 'enum' : f.type;
    const want = VARINT.has(scalar) || scalar === 'enum' ? 0 : I64.has(scalar) ? 1 : I32.has(scalar) ? 5 : 2;
    if (wire === 2 && want !== 2) assert.ok(f.repeated, `${at}: packed only for repeated fields`);
    else assert.equal(wire, want, `${at}: wire type`);
    r.skipType(wire);
  }
}

/** OTLP/JSON checked against the schema: lowerCamelCase keys only, no null, 64-bit integers as decimal strings. */
function strictJson(type: protobuf.Type, obj: unknown, path: string): void {
  assert.ok(obj !== null && typeof obj === 'object' && !Array.isArray(obj), `${path}: an object`);
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    const f = type.fields[k];
    if (!f) throw new Error(`${path}: unknown field ${k} in ${type.name}`);
    assert.notEqual(v, null, `${path}.${k} is null`);
    if (f.repeated) assert.ok(Array.isArray(v), `${path}.${k}: an array`);
    const els = f.repeated ? (v as unknown[]) : [v];
    for (const el of els) {
      const at = `${path}.${k}`;
      assert.notEqual(el, null, `${at}: null`);
      if (f.resolvedType instanceof protobuf.Type) strictJson(f.resolvedType, el, at);
      else if (f.resolvedType instanceof protobuf.Enum) assert.ok(Number.isInteger(el), `${at}: an enum as an integer`);
      else if (/64$/.test(f.type)) assert.match(String(typeof el === 'string' ? el : 'not a string'), /^-?\d+$/, `${at}: ${el}`);
      else if (/32$/.test(f.type)) assert.ok(Number.isInteger(el), `${at}: integer, got ${el}`);
      else if (f.type === 'double' || f.type === 'float') assert.ok(typeof el === 'number' && Number.isFinite(el), `${at}: ${el}`);
      else if (f.type === 'bool') assert.equal(typeof el, 'boolean', at);
      else assert.equal(typeof el, 'string', at);
    }
  }
  for (const o of type.oneofsArray) {
    const present = o.fieldsArray.filter((f) => (obj as Record<string, unknown>)[f.name] !== undefined);
    assert.ok(present.length <= 1, `${path}: one member of ${o.name}`);
  }
}

type Obj = Record<string, any>;
const asObject = (m: protobuf.Message) => Request.toObject(m, { longs: String, enums: Number });
const kinds = new Map<string, string>();

/** What every request must hold, beyond the schema. */
function invariants(req: Obj): number {
  let points = 0;
  for (const rm of req.resourceMetrics ?? []) {
    const rkeys = (rm.resource?.attributes ?? []).map((a: Obj) => a.key);
    assert.deepEqual(rkeys, [...new Set(rkeys)], 'resource attribute keys unique');
    assert.ok(rkeys.includes('service.name'), 'service.name always present');
    for (const sm of rm.scopeMetrics) {
      assert.equal(sm.scope.name, 'ekg-agent');
      assert.match(sm.scope.version, /^\d+\.\d+\.\d+/);
      const names = sm.metrics.map((m: Obj) => m.name);
      assert.deepEqual(names, [...new Set(names)], 'one metric per name in a scope');
      for (const m of sm.metrics) {
        const data = ['gauge', 'sum', 'histogram', 'exponentialHistogram', 'summary'].filter((k) => m[k]);
        assert.equal(data.length, 1, `${m.name}: one data type`);
        const type = `${data[0]}${m.sum ? `/${m.sum.isMonotonic}/${m.sum.aggregationTemporality}` : ''}`;
        assert.equal(kinds.get(m.name) ?? type, type, `${m.name}: never changes type between requests`);
        kinds.set(m.name, type);
        const dps: Obj[] = m[data[0] as string].dataPoints;
        const sets = dps.map((p) => JSON.stringify(p.attributes ?? []));
        assert.equal(new Set(sets).size, sets.length, `${m.name}: one point per attribute set`);
        for (const p of dps) {
          points++;
          const keys = (p.attributes ?? []).map((a: Obj) => a.key);
          assert.deepEqual(keys, [...new Set(keys)], `${m.name}: attribute keys unique`);
          assert.ok(BigInt(p.timeUnixNano) > 0n);
          if ('asDouble' in p) {
            assert.ok(Number.isFinite(p.asDouble), `${m.name}: finite`);
            if (m.sum?.isMonotonic) assert.ok(p.asDouble >= 0, `${m.name}: a monotonic delta is not negative`);
          }
          if (m.exponentialHistogram) {
            const sum = (b: Obj | undefined) => (b?.bucketCounts ?? []).reduce((a: bigint, c: string) => a + BigInt(c), 0n);
            assert.equal(
              BigInt(p.count),
              BigInt(p.zeroCount ?? 0) + sum(p.positive) + sum(p.negative),
              `${m.name}: count = zero + buckets`,
            );
            assert.ok((p.positive?.bucketCounts ?? []).length <= 160 && (p.negative?.bucketCounts ?? []).length <= 160);
            if (p.min !== undefined && p.min < 0) assert.equal(p.sum, undefined, `${m.name}: no sum with negative values`);
            assert.equal(p.zeroThreshold, 1e-9);
          }
        }
      }
    }
  }
  return points;
}

/** Both encodings of one window: strictly valid, and the same message. */
function checkOtlp(w: FlushResult, kindMap: Map<string, any>): number {
  const model = otlpModel(w, { labels: 0, values: 0 }, kindMap);
  const bin = otlpProto(model);
  strictWire(Request, bin, 'request');
  const fromProto = asObject(Request.decode(bin));
  const json = JSON.parse(JSON.stringify(otlpJson(model)));
  strictJson(Request, json, 'request');
  const msg = Request.fromObject(json);
  assert.equal(Request.verify(msg), null);
  const fromJson = asObject(msg);
  assert.deepEqual(fromJson, fromProto, 'JSON and protobuf carry the same request');
  return invariants(fromProto);
}

function checkRemoteWrite(w: FlushResult): void {
  const ts = toTimeSeries(w);
  const bin = encodeWriteRequest(ts);
  strictWire(WriteRequest, bin, 'write');
  const req = WriteRequest.toObject(WriteRequest.decode(bin), { longs: Number }) as Obj;
  const sets = new Set<string>();
  for (const t of req.timeseries ?? []) {
    const names = t.labels.map((l: Obj) => l.name);
    for (let i = 1; i < names.length; i++) assert.ok(names[i - 1] < names[i], `labels sorted and unique: ${names}`);
    for (const l of t.labels) {
      assert.match(l.name, /^[a-zA-Z_][a-zA-Z0-9_]*$/);
      assert.ok(!l.name.startsWith('__') || l.name === '__name__', l.name);
      assert.notEqual(l.value, '', 'no empty label value');
    }
    const name = t.labels.find((l: Obj) => l.name === '__name__')?.value;
    assert.match(name, /^[a-zA-Z_:][a-zA-Z0-9_:]*$/);
    if (name.endsWith('_total')) assert.ok(!name.endsWith('_total_total'), name);
    const key = JSON.stringify(t.labels);
    assert.ok(!sets.has(key), `one series per label set: ${key}`);
    sets.add(key);
    for (const s of t.samples) assert.ok(Number.isFinite(s.value ?? 0), `${name}: finite`);
  }
}

test('the cases of issue 18 encode to bodies the official schema takes, strictly, in both encodings', () => {
  const ws = statsdWindows(
    [
      'x:1|c|#a.b:1,a_b:2',
      't:5|ms|#quantile:x',
      'z:1|c|#flag',
      'z:2|c',
      'x:10|ms|@0.7',
      'big:1e308|c',
      'big:1e308|c',
      'y:1.7e308|ms',
      'neg:-5|ms',
      'neg:3|ms',
      'k:1|g|#a:1',
      'k:1|c|#a:2',
      'runtime.memory.spaces.old_space.size:10|g',
      'runtime.memory.spaces.new_space.size:20|g',
      'runtime.eventloop.delay.p99:12|g',
      'http.inFlight:2|g',
      'zero:0|ms|@0.3',
    ].join('\n'),
    'k:2|g|#a:1\nx:1|c',
  );
  const kindMap = new Map();
  let points = 0;
  for (const w of ws) {
    points += checkOtlp(w, kindMap);
    checkRemoteWrite(w);
  }
  assert.ok(points > 10, `${points} points`);
});

test('a strict check does catch what it is for (unknown field, null, fractional count)', () => {
  const bad = { resourceMetrics: [{ resource: { attributes: [] }, scopeMetrics: [], surprise: 1 }] };
  assert.throws(() => strictJson(Request, bad, 'r'), /unknown field surprise/);
  assert.throws(() => strictJson(Request, { resourceMetrics: [null] }, 'r'), /null/);
  const frac = {
    resourceMetrics: [
      {
        scopeMetrics: [
          {
            metrics: [{ name: 'x', exponentialHistogram: { dataPoints: [{ count: '1.4285714285714286' }] } }],
          },
        ],
      },
    ],
  };
  assert.throws(() => strictJson(Request, frac, 'r'), /1\.428/);
  assert.throws(() => strictWire(Request, Uint8Array.of(0x78, 0x01), 'r'), /unknown field 15/);
});

test('fuzz: random StatsD lines through the parser and aggregator give only valid batches in both encoders', () => {
  const seed = Number(process.env.EKG_FUZZ_SEED ?? 18);
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const names = [
    'a',
    'a.b',
    'a_b',
    'x_total',
    'x',
    'q.total',
    'k',
    'runtime.eventloop.delay.p99',
    'runtime.memory.spaces.old_space.size',
    'runtime.memory.spaces.*.used',
    'runtime.cpu.user',
    'runtime.memory.rss',
    'http.inFlight',
    'runtime.active.total',
    '9lives',
    'ünï.cödé',
  ];
  const values = ['1', '0', '-1', '2.5', '1e-12', '-1e-12', '1e308', '1.7e308', '-1.7e308', '1e-300', '42', '+3', '-7', '123456789012'];
  const tags = [
    'a.b:1',
    'a_b:2',
    'a-b:3',
    'quantile:x',
    'le:1',
    'flag',
    'service:s',
    'service.name:t',
    'host:h',
    '__name__:evil',
    'v8js.heap.space.name:user',
    'cpu.mode:x',
    'a:1',
    'a:2',
    'pid:42',
    'process.pid:abc',
    'exported_quantile:y',
    '0digit:z',
  ];
  const types = ['c', 'g', 'ms', 'h', 'd', 's'];
  const packets: string[] = [];
  for (let w = 0; w < 40; w++) {
    const lines: string[] = [];
    for (let i = 0; i < 150; i++) {
      const type = pick(types);
      const rate = r() < 0.3 ? `|@${pick(['0.1', '0.3', '0.7', '0.5', '1'])}` : '';
      const n = Math.floor(r() * 4);
      const ts = Array.from({ length: n }, () => pick(tags));
      lines.push(`${pick(names)}:${pick(values)}|${type}${rate}${n ? `|#${ts.join(',')}` : ''}`);
    }
    packets.push(lines.join('\n'));
  }
  const kindMap = new Map();
  kinds.clear();
  let points = 0;
  for (const w of statsdWindows(...packets)) {
    points += checkOtlp(w, kindMap);
    checkRemoteWrite(w);
  }
  assert.ok(points > 500, `seed ${seed}: ${points} points checked`);
});
