/** StatsD's metric types, as the line spells them. */
export type MetricType = 'c' | 'g' | 'ms' | 'h' | 'd' | 's';

/** One value received (a StatsD line, a push value, a scraped sample), before aggregation. */
export interface Sample {
  name: string;
  /**
   * sorted `k:v` tags joined by `,` (the series key part): model/tags.ts, the one parse and format of
   * that string. A string, not a `Tags` record, on purpose: it is the series' identity, looked up
   * once per sample, and the aggregator shares one copy among the series that carry it. Building a
   * record per sample and formatting it back into the key doubled the cost of a sample (parsePacket
   * over 100k lines with three tags, 2-core build machine under load: 3.5–4 µs a line, +2.7–4.5 µs
   * with `parseTags` + `formatTags`); code that needs the fields parses the series' string, once.
   */
  tags: string;
  type: MetricType;
  /** numeric value; for sets the member is in `member` */
  value: number;
  member?: string;
  /** gauge written as `+n` / `-n`: a delta to the current value */
  delta?: boolean;
  /** 1 / sample rate */
  weight: number;
  /**
   * DogStatsD `|T<unix seconds>`: when the sample's interval began (docs/time-model.md); undefined
   * for a sample that describes the moment it arrived
   */
  ts?: number;
  /**
   * ms the sample describes, ending at its arrival, when its source states it (a push's
   * `X-Ekg-Interval-Ms`, the time since a target's previous scrape): docs/time-model.md
   */
  interval?: number;
}

/**
 * The longest interval a sample may describe: an hour. A push's stated interval, `ekg.interval_ms`
 * over StatsD, a `|T` stamp's age and the time between two scrapes are held to it (docs/time-model.md).
 */
export const MAX_INTERVAL_MS = 3_600_000;
