import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A bounded FIFO of batches on disk: one file per batch (`<seq>.b`, written to a temporary name and
 * renamed, so a crash leaves whole batches or none), the queue read back in order at start. Only
 * the index (sequence and size) lives in memory; a batch's bytes are read when it is sent. Past
 * `maxBytes` or `maxBatches` the oldest batches are dropped, and counted.
 */
export class Spool {
  private readonly index: Array<{ seq: number; size: number }> = [];
  private next = 1;
  bytes = 0;
  dropped = 0;

  constructor(
    readonly dir: string,
    private readonly maxBytes = 64 << 20,
    private readonly maxBatches = 100_000,
  ) {
    mkdirSync(dir, { recursive: true });
    for (const f of readdirSync(dir)) {
      const m = /^(\d+)\.b$/.exec(f);
      if (m) {
        const seq = Number(m[1]);
        const size = statSync(join(dir, f)).size;
        this.index.push({ seq, size });
        this.bytes += size;
      } else if (f.endsWith('.tmp')) rmSync(join(dir, f), { force: true });
    }
    this.index.sort((a, b) => a.seq - b.seq);
    this.next = (this.index.at(-1)?.seq ?? 0) + 1;
  }

  get length(): number {
    return this.index.length;
  }

  /** Appends a batch; drops the oldest while over the bounds. Throws if the disk refuses the write. */
  push(body: Uint8Array): void {
    const seq = this.next++;
    const name = join(this.dir, `${String(seq).padStart(12, '0')}.b`);
    writeFileSync(`${name}.tmp`, body);
    renameSync(`${name}.tmp`, name);
    this.index.push({ seq, size: body.length });
    this.bytes += body.length;
    while (this.index.length > 1 && (this.bytes > this.maxBytes || this.index.length > this.maxBatches)) {
      this.shift();
      this.dropped++;
    }
  }

  /** The oldest batch, or undefined when empty (a file gone missing is skipped). */
  peek(): Uint8Array | undefined {
    while (this.index.length > 0) {
      const head = this.index[0] as { seq: number };
      try {
        return readFileSync(this.path(head.seq));
      } catch {
        this.shift();
      }
    }
    return undefined;
  }

  /** Removes the oldest batch. */
  shift(): void {
    const head = this.index.shift();
    if (!head) return;
    this.bytes -= head.size;
    rmSync(this.path(head.seq), { force: true });
  }

  /** Moves the oldest batch aside into `rejected/` (the last 20 kept), for an operator to inspect. */
  setAside(): void {
    const head = this.index.shift();
    if (!head) return;
    this.bytes -= head.size;
    const dir = join(this.dir, 'rejected');
    try {
      mkdirSync(dir, { recursive: true });
      renameSync(this.path(head.seq), join(dir, `${String(head.seq).padStart(12, '0')}.b`));
      const kept = readdirSync(dir).sort();
      for (const f of kept.slice(0, Math.max(0, kept.length - 20))) rmSync(join(dir, f), { force: true });
    } catch {
      rmSync(this.path(head.seq), { force: true });
    }
  }

  private path(seq: number): string {
    return join(this.dir, `${String(seq).padStart(12, '0')}.b`);
  }
}
