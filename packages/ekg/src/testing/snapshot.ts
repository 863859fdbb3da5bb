import { Buckets, type Distribution } from '../histogram.js';
import { HTTP_BUCKETS } from '../vitals/http.js';
import { GC_BUCKETS, GC_KINDS } from '../vitals/runtime.js';
import type { Snapshot } from '../window/snapshot.js';

const dist = (base: number): Distribution => ({
  count: 40,
  min: base,
  mean: base * 2,
  p50: base * 2,
  p90: base * 3,
  p99: base * 4,
  max: base * 5,
});

function buckets(bounds: readonly number[], seconds: number[]): Buckets {
  const b = new Buckets(bounds);
  for (const s of seconds) b.observe(s);
  return b;
}

/**
 * A window with every family on and fixed numbers — http, custom vitals with stats and checks, a reporter, the
 * watchdog's stalls — for golden tests of the renderers (a live window's numbers change from run to run).
 */
export function fixedSnapshot(): Snapshot {
  const gcWindow = Object.fromEntries(GC_KINDS.map((k, i) => [k, { count: i + 1, pause: (i + 1) * 1.5, max: i + 0.75 }]));
  const gcTotal = Object.fromEntries(
    GC_KINDS.map((k, i) => [k, { count: 10 + i, pause: 20 + i, buckets: buckets(GC_BUCKETS, [0.0005, 0.002 * (i + 1), 0.5, 3]) }]),
  );
  return {
    window: { start: 1_700_000_000_000, end: 1_700_000_010_000, seconds: 10, seq: 7 },
    runtime: {
      eventloop: { delay: { ...dist(1.25), stddev: 0.625, p95: 4.375 }, utilization: 0.125, lag: 2.5, resolution: 10 },
      gc: { window: gcWindow, total: gcTotal } as Snapshot['runtime']['gc'],
      memory: {
        rss: 104_857_600,
        maxRss: 125_829_120,
        heapUsed: 20_971_520,
        heapTotal: 31_457_280,
        heapLimit: 4_345_298_944,
        external: 2_097_152,
        arrayBuffers: 1_048_576,
        virtual: 1_073_741_824,
        dataSegment: 52_428_800,
        spaces: [
          { name: 'new_space', used: 1000, size: 2000, available: 3000 },
          { name: 'old_space', used: 4000, size: 5000, available: 6000 },
        ],
      },
      cpu: { user: 1250, system: 250, userTotal: 12.5, systemTotal: 2.5 },
      usageTotal: {
        voluntaryContextSwitches: 500,
        involuntaryContextSwitches: 50,
        fsRead: 8,
        fsWrite: 16,
        minorPageFault: 3000,
        majorPageFault: 3,
      } as NodeJS.ResourceUsage,
      usage: { voluntaryContextSwitches: 5, involuntaryContextSwitches: 1, fsRead: 0, fsWrite: 1, minorPageFault: 30, majorPageFault: 0 },
      active: {
        resources: { Timeout: 2, TCPSocketWrap: 3 },
        handles: { Socket: 3, Server: 1 },
        requests: { FSReqCallback: 1 },
      },
      fds: { open: 24, max: 1024 },
      info: { version: 'v0.0.0', pid: 4242, uptime: 3600, startTime: 1_699_996_400_000 },
      windowMs: 10_000,
    },
    http: {
      classes: [0, 30, 2, 5, 3, 0],
      classesTotal: [1, 300, 20, 50, 30, 0],
      requests: 40,
      inFlight: 2,
      aborted: 1,
      abortedTotal: 4,
      duration: dist(12.5),
      buckets: buckets(HTTP_BUCKETS, [0.004, 0.02, 0.2, 3, 12]),
      windowMs: 10_000,
    },
    vitals: [
      { name: 'db', stats: { pool: { size: 10, busy: 3 }, primary: true, note: 'text is left out' } },
      { name: 'queue', error: 'vital "queue" stats() rejected: down' },
    ],
    checks: { db: true, queue: false },
    labels: { service: 'api', region: 'eu "west"\n' },
    promClientTotals: true,
    reporters: [
      {
        name: 'statsd_udp_127_0_0_1_8125',
        stats: { sent: 6, errors: 1, dropped: 0, bytes: 4096 } as Snapshot['reporters'][number]['stats'],
      },
    ],
    stalls: {
      count: 3,
      totalMs: 4500,
      buckets: [1, 1, 0, 1, 0, 0],
      last: [{ start: 1_700_000_005_000, duration: 1500 }],
    },
  };
}
