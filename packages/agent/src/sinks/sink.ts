import type { FlushResult } from '../aggregate/aggregator.js';

/** Where each closed window goes: the console now; the store and exporters implement the same. */
export interface Sink {
  readonly name: string;
  /**
   * Receives each closed window. It may keep the series objects it read, but not the window past the
   * next one (the agent then retires it, and its buffers serve a later window: read as empty after),
   * and a distribution's `sketch` only for the duration of the call: copy, merge or serialise it then
   * (the agent releases the sketches of a window once every sink has seen them, so 100k series do not
   * cost two windows of sketches).
   */
  write(window: FlushResult): void | Promise<void>;
  close?(): void | Promise<void>;
}
