import type { FlushResult } from '../aggregate/aggregator.js';
import type { Sink } from '../sinks/sink.js';
import { Spool } from './spool.js';

/** What every exporter reports in `/api/v1/self` (`exporters`) and `/metrics` (`ekg_agent_exporter_*`). */
export interface ExporterStatus {
  batches_sent: number;
  samples_sent: number;
  /** attempts that failed (each retry counts) */
  failures: number;
  /** batches the target refused as malformed (4xx other than 408/429): set aside, not retried */
  batches_rejected: number;
  /** batches pushed out of a full spool (the oldest go first) */
  batches_dropped: number;
  /** batches waiting (in the spool while the target is away) */
  queued: number;
  queued_bytes: number;
  last_error?: string;
}

export type Outcome = 'ok' | 'retry' | 'reject';

export interface QueueOptions {
  /** where batches wait: a directory under the agent's data dir; none keeps them in memory */
  spoolDir?: string;
  /** bounds of the spool (default 64 MiB, 100,000 batches) */
  maxBytes?: number;
  maxBatches?: number;
  /** first retry delay, ms (default 500), doubling to `maxBackoff` (default 30 s), with jitter */
  backoff?: number;
  maxBackoff?: number;
}

/** The spool's contract; an in-memory one stands in when there is no directory. */
interface Queue {
  readonly length: number;
  readonly bytes: number;
  dropped: number;
  push(body: Uint8Array): void;
  peek(): Uint8Array | undefined;
  shift(): void;
  setAside(): void;
}

class MemoryQueue implements Queue {
  private readonly items: Uint8Array[] = [];
  bytes = 0;
  dropped = 0;
  constructor(
    private readonly maxBytes: number,
    private readonly maxBatches: number,
  ) {}
  get length(): number {
    return this.items.length;
  }
  push(body: Uint8Array): void {
    this.items.push(body);
    this.bytes += body.length;
    while (this.items.length > 1 && (this.bytes > this.maxBytes || this.items.length > this.maxBatches)) {
      this.shift();
      this.dropped++;
    }
  }
  peek(): Uint8Array | undefined {
    return this.items[0];
  }
  shift(): void {
    const b = this.items.shift();
    if (b) this.bytes -= b.length;
  }
  setAside(): void {
    this.shift();
  }
}

/**
 * An exporter's queue: each window is encoded into batches, which wait in a bounded spool (on disk
 * under the data dir, so they survive a restart) and are sent one at a time, in order. A failure
 * retries the same batch with exponential backoff and full jitter; a batch the target refuses as
 * malformed is set aside, counted and logged once, so it never blocks the queue. What the bound
 * forces out is counted. Each spooled batch starts with its sample count (4 bytes).
 */
export abstract class QueuedExporter implements Sink {
  readonly status: ExporterStatus = {
    batches_sent: 0,
    samples_sent: 0,
    failures: 0,
    batches_rejected: 0,
    batches_dropped: 0,
    queued: 0,
    queued_bytes: 0,
  };
  private readonly queue: Queue;
  private sending = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private readonly logged = new Set<string>();

  constructor(
    readonly name: string,
    private readonly q: QueueOptions = {},
  ) {
    const maxBytes = q.maxBytes ?? 64 << 20;
    const maxBatches = q.maxBatches ?? 100_000;
    let queue: Queue | undefined;
    if (q.spoolDir) {
      try {
        queue = new Spool(q.spoolDir, maxBytes, maxBatches);
      } catch (err) {
        this.once('spool', `cannot use the spool ${q.spoolDir} (${(err as Error).message}); batches wait in memory`);
      }
    }
    this.queue = queue ?? new MemoryQueue(maxBytes, maxBatches);
    this.update();
    // batches left by the last run go first
    queueMicrotask(() => this.kick());
  }

  /** The window as batches, each with the number of samples it carries. */
  protected abstract encode(w: FlushResult): Array<{ body: Uint8Array; samples: number }>;

  /** Sends one batch; sets `status.last_error` on failure. */
  protected abstract deliver(body: Uint8Array): Promise<Outcome>;

  write(w: FlushResult): void {
    if (this.closed) return;
    let batches: Array<{ body: Uint8Array; samples: number }>;
    try {
      batches = this.encode(w);
    } catch (err) {
      this.once('encode', `cannot encode a window (${(err as Error).message}); it is skipped`);
      return;
    }
    for (const b of batches) {
      const framed = new Uint8Array(4 + b.body.length);
      new DataView(framed.buffer).setUint32(0, b.samples);
      framed.set(b.body, 4);
      try {
        this.queue.push(framed);
      } catch (err) {
        this.status.batches_dropped++;
        this.once('spool-write', `cannot write to the spool (${(err as Error).message}); a batch is lost`);
      }
    }
    this.update();
    this.kick();
  }

  private update(): void {
    this.status.queued = this.queue.length;
    this.status.queued_bytes = this.queue.bytes;
    this.status.batches_dropped = Math.max(this.status.batches_dropped, this.queue.dropped);
  }

  private kick(): void {
    if (this.sending || this.timer || this.queue.length === 0) return;
    this.sending = true;
    void this.drain().finally(() => {
      this.sending = false;
    });
  }

  private async drain(): Promise<void> {
    for (;;) {
      const framed = this.queue.peek();
      if (!framed) return;
      const samples = framed.length >= 4 ? new DataView(framed.buffer, framed.byteOffset).getUint32(0) : 0;
      let outcome: Outcome;
      try {
        outcome = await this.deliver(framed.subarray(4));
      } catch (err) {
        this.status.last_error = (err as Error).message;
        outcome = 'retry';
      }
      if (outcome === 'ok') {
        if (this.attempt > 0) process.stderr.write(`ekg-agent: ${this.name}: sending again\n`);
        this.queue.shift();
        this.attempt = 0;
        this.status.batches_sent++;
        this.status.samples_sent += samples;
        this.status.last_error = undefined;
        this.update();
        continue;
      }
      if (outcome === 'reject') {
        this.queue.setAside();
        this.status.batches_rejected++;
        this.once(`reject:${this.status.last_error}`, `a batch was refused (${this.status.last_error}); set aside, not retried`);
        this.update();
        continue;
      }
      this.status.failures++;
      if (this.attempt === 0) this.once(`down:${this.status.last_error}`, `cannot send (${this.status.last_error}); retrying with backoff`);
      if (this.closed) return;
      // exponential backoff with full jitter, on an unref'd timer
      const base = Math.min(this.q.maxBackoff ?? 30_000, (this.q.backoff ?? 500) * 2 ** this.attempt++);
      const delay = base / 2 + Math.random() * (base / 2);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.kick();
      }, delay);
      this.timer.unref();
      return;
    }
  }

  protected once(key: string, line: string): void {
    if (this.logged.has(key)) return;
    this.logged.add(key);
    process.stderr.write(`ekg-agent: ${this.name}: ${line}\n`);
  }

  /** Tries what is queued once more; what the target does not take stays in the spool for the next run. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.sending) await new Promise((r) => setTimeout(r, 10));
    if (this.queue.length > 0) {
      this.sending = true;
      await this.drain();
      this.sending = false;
    }
  }
}

/**
 * POSTs a batch. `retryOn` decides which statuses are worth another try (the rest of the 4xx mean
 * the batch is malformed); network errors and timeouts always retry.
 */
export async function post(
  ex: { status: ExporterStatus },
  url: string,
  body: Uint8Array | string,
  headers: Record<string, string>,
  retryOn: (status: number) => boolean = (s) => s >= 500 || s === 429 || s === 408,
  timeout = 10_000,
): Promise<Outcome> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      body,
      headers: { 'user-agent': 'ekg-agent', ...headers },
      signal: AbortSignal.timeout(timeout),
    });
    const text = await res.text().catch(() => '');
    if (res.ok) return 'ok';
    ex.status.last_error = `HTTP ${res.status} ${text.slice(0, 200).trim()}`.trim();
    return retryOn(res.status) ? 'retry' : 'reject';
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    ex.status.last_error = err.name === 'TimeoutError' ? 'timeout' : (err.cause?.code ?? err.message);
    return 'retry';
  }
}
