import { instanceKey } from '../../src/model/instance.js';

/** What every view gets from the page: the time range, the URL's parameters, and zoom. */
export interface Ctx {
  /** the range in epoch ms, and the step (seconds) charts use for it */
  range(): { from: number; to: number; step: number };
  params: URLSearchParams;
  /** changes the URL's parameters (a new history entry) and so re-renders */
  navigate(params: Record<string, string | undefined>): void;
  /** a dragged range on a chart: the page moves to it */
  zoom(from: number, to: number): void;
}

export interface View {
  /** fetches and draws; called at start, on live ticks and on range changes */
  refresh(): Promise<void>;
  destroy(): void;
}

/** The step for a range: the finest of these that gives at most about 1,100 points. */
export function stepFor(rangeMs: number): number {
  const s = rangeMs / 1000;
  // the store answers at its own resolution at least (10 s by default), whatever is asked
  for (const step of [1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600]) if (s / step <= 1100) return step;
  return 3600;
}

/** An instance's key, as the agent writes it (`service=api,host=h,pid=1`), from a series' tags: the agent's model. */
export const keyOf = (tags: Record<string, string>): string => instanceKey(tags) ?? '';
