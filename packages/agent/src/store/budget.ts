import { QueryError } from './reader.js';

/** The defaults of `--query-max-points` and `--query-timeout` (ms). */
export const QUERY_MAX_POINTS = 1_000_000;
export const QUERY_TIMEOUT = 10_000;

/** The budgets a request's queries share, by the name the docs, the config and the answer use. */
export type BudgetName = 'query_max_points' | 'query_timeout';

/** A query over a budget: 413 (points) or 503 (time), naming the budget and its value. */
export class BudgetError extends QueryError {
  constructor(
    readonly budget: BudgetName,
    readonly limit: number,
    message: string,
  ) {
    super(budget, message);
  }
  get status(): 413 | 503 {
    return this.budget === 'query_timeout' ? 503 : 413;
  }
}

/**
 * What one API request may cost, across all its queries (a batch shares one): points (series ×
 * steps, counted before any row is read) and wall time (checked between series). A store calls
 * `take` once it knows how many series and steps a query has, and `check` as it reads them.
 */
export class QueryBudget {
  private left: number;
  private readonly deadline: number;

  constructor(
    readonly maxPoints: number,
    readonly timeoutMs: number,
    start = Date.now(),
  ) {
    this.left = maxPoints;
    this.deadline = start + timeoutMs;
  }

  /** Refuses, before reading, a query that would take the request over its points. */
  take(series: number, steps: number): void {
    const need = series * steps;
    if (need > this.left) {
      const spent = this.maxPoints - this.left;
      throw new BudgetError(
        'query_max_points',
        this.maxPoints,
        `${series} series × ${steps} steps = ${need} points${spent > 0 ? ` (after ${spent} already read by this request)` : ''}; the budget is ${this.maxPoints} points a request (query_max_points): narrow the tags, merge with by=, or use a longer step`,
      );
    }
    this.left -= need;
  }

  /**
   * A series listing's work: each series it examines (its name tested, its tags matched) is one point, so one
   * budget bounds what a request may walk. Called with the count so far; refuses once it passes the points left.
   */
  examine(series: number): void {
    if (series > this.left)
      throw new BudgetError(
        'query_max_points',
        this.maxPoints,
        `the series listing examined ${series} series, one point each; the budget is ${this.maxPoints} points a request (query_max_points): name the metric without * or ?, or narrow the glob`,
      );
  }

  /** Whether the request has spent its time or its points: what it asks next is refused at once. */
  get over(): boolean {
    return this.left <= 0 || Date.now() > this.deadline;
  }

  /** Stops a query that has run past the request's time. */
  check(now = Date.now()): void {
    if (now > this.deadline)
      throw new BudgetError(
        'query_timeout',
        this.timeoutMs,
        `the request ran past its ${this.timeoutMs} ms (query_timeout); ask for fewer series or a shorter range`,
      );
  }
}
