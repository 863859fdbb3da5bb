import { gzipSync } from 'node:zlib';
import { renderPrometheus } from '../formats/prometheus.js';
import type { Stats } from '../types.js';
import type { Snapshot } from '../window/snapshot.js';

interface Pages {
  snap: Snapshot;
  prom?: string;
  open?: string;
  promGz?: Uint8Array;
  openGz?: Uint8Array;
  stats?: { body: string; failed: boolean };
}

/**
 * The pages of one closed window — /metrics as Prometheus text and OpenMetrics, each plain and
 * gzipped, and the /stats body — rendered on first ask and reused until the next window closes
 * (a scrape every second on 10 s windows renders once). Only the latest window's pages are kept.
 */
export class RenderCache {
  private pages: Pages | undefined;

  /** `statsOf` builds the /stats document of a snapshot (it reads the instance's live counters). */
  constructor(private readonly statsOf: (s: Snapshot) => { stats: Stats; failed: boolean }) {}

  private of(s: Snapshot): Pages {
    if (this.pages?.snap !== s) this.pages = { snap: s };
    return this.pages;
  }

  /** Prometheus text (or OpenMetrics). */
  metrics(s: Snapshot, openMetrics = false): string {
    const p = this.of(s);
    if (openMetrics) {
      p.open ??= renderPrometheus(s, true);
      return p.open;
    }
    p.prom ??= renderPrometheus(s, false);
    return p.prom;
  }

  /** The same page gzipped, for a scraper that sends `Accept-Encoding: gzip`. */
  metricsGzip(s: Snapshot, openMetrics = false): Uint8Array {
    const p = this.of(s);
    if (openMetrics) {
      p.openGz ??= gzipSync(this.metrics(s, true));
      return p.openGz;
    }
    p.promGz ??= gzipSync(this.metrics(s, false));
    return p.promGz;
  }

  /** The /stats body. */
  stats(s: Snapshot): { body: string; failed: boolean } {
    const p = this.of(s);
    if (!p.stats) {
      const { stats, failed } = this.statsOf(s);
      p.stats = { body: JSON.stringify(stats), failed };
    }
    return p.stats;
  }
}
