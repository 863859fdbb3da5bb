import type { FlushResult } from '../aggregate/aggregator.js';

/** Where each closed window goes: the console now; the store and exporters implement the same. */
export interface Sink {
  readonly name: string;
  write(window: FlushResult): void | Promise<void>;
  close?(): void | Promise<void>;
}
