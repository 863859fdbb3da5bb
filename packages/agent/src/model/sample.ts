/** StatsD's metric types, as the line spells them. */
export type MetricType = 'c' | 'g' | 'ms' | 'h' | 'd' | 's';

/** One value received (a StatsD line, a push value, a scraped sample), before aggregation. */
export interface Sample {
  name: string;
  /** sorted `k:v` tags joined by `,` (the series key part): model/tags.ts */
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
