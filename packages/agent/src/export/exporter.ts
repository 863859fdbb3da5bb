import { readFileSync } from 'node:fs';
import type { FlushResult } from '../aggregate/aggregator.js';
import { type AgentErrorCode, report } from '../errors.js';
import type { Sink } from '../sinks/sink.js';
import { Spool } from './spool.js';

/** `ekg-agent/<version>`, the User-Agent of every exporter (remote write 1.0 asks for name and version). */
export const USER_AGENT = `ekg-agent/${(() => {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})()}`;

/** A receiver's `Retry-After` is honoured up to this long (ms). */
export const RETRY_AFTER_CAP = 300_000;
/** Tries a batch gets when a receiver answers 5xx with a body that calls the data invalid; then it is set aside. */
export const INVALID_TRIES = 3;
/** Words in a 5xx body that mean the data, not the receiver, is at fault (Prometheus, Mimir, VictoriaMetrics, Collector). */
const INVALID_BODY =
  /invalid|not unique|duplicate|out of order|out of bounds|malformed|cannot (parse|unmarshal|decode)|unmarshal|bad (request|data)|label name|too old|too far/i;

/** What every exporter reports in `/api/v1/self` (`exporters`) and `/metrics` (`ekg_agent_exporter_*`). */
export interface ExporterStatus {
  batches_sent: number;
  samples_sent: number;
  /** attempts that failed (each retry counts) */
  failures: number;
  /**
   * batches the target refused as malformed: a 4xx other than 408/429 at once, or a 5xx whose body
   * calls the data invalid after INVALID_TRIES tries; set aside (under `rejected/` in the spool)
   */
  batches_rejected: number;
  /** batches pushed out of a full spool (the oldest go first) */
  batches_dropped: number;
  /** tags or attributes renamed or left out so that no name appears twice in a series (remote write, OTLP) */
  labels_dropped?: number;
  /** values left out: non-finite, a second series with the same name and labels, a kind clash (remote write, OTLP) */
  values_dropped?: number;
  /** batches waiting (in the spool while the target is away) */
  queued: number;
  queued_bytes: number;
  last_error?: string;
}

/** ok; retry later; reject: set aside now; invalid: a 5xx that blames the data, set aside after INVALID_TRIES */
export type Outcome = 'ok' | 'retry' | 'reject' | 'invalid';

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
  /** tries of the batch at the head that a receiver answered with an `invalid` 5xx */
  private invalid = 0;
  private readonly logged = new Set<string>();
  /** the last answer's `Retry-After`, in ms (set by `post`, read once by the retry) */
  retryAfterMs: number | undefined;
  /** the code of this queue's stderr lines (a notifier has its own; a getter, so that the constructor's lines have it too) */
  protected get code(): AgentErrorCode {
    return 'EKG_AGENT_ERR_EXPORT';
  }

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
      if (outcome === 'invalid' && ++this.invalid >= INVALID_TRIES) outcome = 'reject';
      if (outcome === 'ok') {
        if (this.attempt > 0) report(this.code, `${this.name}: sending again`);
        this.queue.shift();
        this.attempt = 0;
        this.invalid = 0;
        this.status.batches_sent++;
        this.status.samples_sent += samples;
        this.status.last_error = undefined;
        this.update();
        continue;
      }
      if (outcome === 'reject') {
        this.queue.setAside();
        this.status.batches_rejected++;
        this.attempt = 0;
        this.invalid = 0;
        this.retryAfterMs = undefined;
        this.once(
          `reject:${this.status.last_error?.slice(0, 8)}`,
          `a batch was refused (${this.status.last_error}); set aside under rejected/ in the spool, not retried (further refusals are counted in batches_rejected)`,
        );
        this.update();
        continue;
      }
      this.status.failures++;
      if (this.attempt === 0) this.once(`down:${this.status.last_error}`, `cannot send (${this.status.last_error}); retrying with backoff`);
      if (this.closed) return;
      // exponential backoff with jitter, on an unref'd timer; a receiver's Retry-After wins when longer
      const delay = retryDelay(this.attempt++, this.retryAfterMs, this.q);
      this.retryAfterMs = undefined;
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
    report(this.code, `${this.name}: ${line}`);
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
 * The wait before retry number `attempt` (0-based): exponential from `backoff` (default 500 ms) to
 * `maxBackoff` (default 30 s), jittered over its upper half; a `Retry-After` (ms) that asks for
 * longer is honoured, up to RETRY_AFTER_CAP.
 */
export function retryDelay(attempt: number, retryAfterMs: number | undefined, q: QueueOptions = {}): number {
  const base = Math.min(q.maxBackoff ?? 30_000, (q.backoff ?? 500) * 2 ** Math.min(attempt, 40));
  const jittered = base / 2 + Math.random() * (base / 2);
  return retryAfterMs === undefined ? jittered : Math.max(jittered, Math.min(RETRY_AFTER_CAP, retryAfterMs));
}

/** A `Retry-After` header (seconds, or an HTTP date) in ms from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(v: string | null | undefined, now = Date.now()): number | undefined {
  if (!v) return undefined;
  const t = v.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const at = Date.parse(t);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Headers the protocol owns: a user's `headers:` cannot set them (a claimed gzip on a plain body, a second Content-Type). */
const RESERVED = new Set(['content-type', 'content-encoding', 'content-length', 'transfer-encoding', 'host', 'user-agent', 'connection']);

/** How much of a receiver's answer is read (for its error text): the rest is dropped, so an endless answer costs nothing. */
export const MAX_ANSWER_BYTES = 64 << 10;

/** The first MAX_ANSWER_BYTES of an answer's body as text; the stream is cancelled there. */
async function answerHead(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  try {
    while (n < MAX_ANSWER_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      n += value.length;
    }
  } catch {
    // a broken answer: what came is enough for the error text
  } finally {
    reader.cancel().catch(() => {});
  }
  return Buffer.concat(parts).subarray(0, MAX_ANSWER_BYTES).toString('utf8');
}

/**
 * POSTs a batch. `retryOn` decides which statuses are worth another try (the rest of the 4xx mean
 * the batch is malformed; a 5xx whose body calls the data invalid is `invalid`); network errors and
 * timeouts always retry. The answer's `Retry-After` is left in `ex.retryAfterMs`. `user` headers
 * (from the config) go first and cannot override the protocol's own (`headers`, RESERVED).
 */
export async function post(
  ex: { status: ExporterStatus; retryAfterMs?: number },
  url: string,
  body: Uint8Array | string,
  headers: Record<string, string>,
  retryOn: (status: number) => boolean = (s) => s >= 500 || s === 429 || s === 408,
  timeout = 10_000,
  user?: Record<string, string>,
): Promise<Outcome> {
  const h = new Headers();
  for (const [k, v] of Object.entries(user ?? {})) if (!RESERVED.has(k.toLowerCase())) h.set(k, v);
  for (const [k, v] of Object.entries(headers)) h.set(k, v);
  h.set('user-agent', USER_AGENT);
  try {
    const res = await fetch(url, {
      method: 'POST',
      body,
      headers: h,
      signal: AbortSignal.timeout(timeout),
    });
    const text = await answerHead(res);
    if (res.ok) return 'ok';
    ex.status.last_error = `HTTP ${res.status} ${text.slice(0, 200).trim()}`.trim();
    ex.retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
    if (!retryOn(res.status)) return 'reject';
    return res.status >= 500 && INVALID_BODY.test(text) ? 'invalid' : 'retry';
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    ex.status.last_error = err.name === 'TimeoutError' ? 'timeout' : (err.cause?.code ?? err.message);
    return 'retry';
  }
}
