import { normalizeTags, type Sample, sanitizeName } from './statsd-parse.js';

/**
 * Scrapes: an ekg /stats JSON document (flattened: every number a gauge, named by its dotted path) or
 * Prometheus /metrics text (counters turned into deltas between scrapes, everything else a gauge),
 * each sample tagged with its target; and a heartbeat probe of the target's /heartbeat, recorded as
 * the gauge `up` (1 or 0, with the reason as a tag when it fails).
 */
export interface ScrapeTarget {
  url: string;
  format: 'json' | 'prometheus';
  heartbeat: string;
}

export function targetOf(url: string): ScrapeTarget {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`scrape target must be http(s): ${url}`);
  const format = u.pathname.endsWith('/metrics') ? 'prometheus' : 'json';
  const hb = new URL(u.href);
  hb.pathname = u.pathname.replace(/[^/]*$/, 'heartbeat');
  hb.search = '';
  return { url: u.href, format, heartbeat: hb.href };
}

/** Flattens JSON into gauges named like mackerel-plugin-json does: nested keys joined by dots, array items by index. */
export function flattenJson(doc: unknown, tags: string, out: Sample[] = [], prefix = ''): Sample[] {
  if (doc === null || typeof doc !== 'object') return out;
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    const name = prefix ? `${prefix}.${sanitizeName(k)}` : sanitizeName(k);
    if (!name) continue;
    if (typeof v === 'number' && Number.isFinite(v)) out.push({ name, tags, type: 'g', value: v, weight: 1 });
    else if (typeof v === 'boolean') out.push({ name, tags, type: 'g', value: v ? 1 : 0, weight: 1 });
    else if (v !== null && typeof v === 'object' && out.length < 100_000) flattenJson(v, tags, out, name);
  }
  return out;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses Prometheus text 0.0.4; counters become deltas against `previous` (a reset counts from zero). */
export function parsePrometheus(text: string, targetTags: string, previous: Map<string, number>): { samples: Sample[]; bad: number } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  let bad = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith('#')) {
      const m = /^# TYPE (\S+) (\S+)/.exec(line);
      if (m) types.set(m[1] as string, m[2] as string);
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) {
      bad++;
      continue;
    }
    const name = m[1] as string;
    const value = Number(m[4]);
    if (!Number.isFinite(value)) continue;
    const labels: string[] = targetTags ? [targetTags] : [];
    if (m[3]) for (const l of (m[3] as string).matchAll(LABEL)) labels.push(`${l[1]}:${(l[2] as string).replace(/[,|\s]/g, '_')}`);
    const tags = normalizeTags(labels.join(',')) ?? targetTags;
    const type = types.get(name) ?? types.get(name.replace(/_total$/, ''));
    if (type === 'counter') {
      const key = `${name}|${tags}`;
      const before = previous.get(key);
      previous.set(key, value);
      if (before === undefined) continue; // the first scrape only sets the baseline
      samples.push({ name, tags, type: 'c', value: value >= before ? value - before : value, weight: 1 });
    } else samples.push({ name, tags, type: 'g', value, weight: 1 });
  }
  return { samples, bad };
}

export class Scraper {
  private timers: NodeJS.Timeout[] = [];
  private readonly previous = new Map<string, number>();
  /** the reason of each target's last failure, for /api/v1/self */
  readonly failures = new Map<string, string>();
  scrapes = 0;

  constructor(
    private readonly targets: ScrapeTarget[],
    private readonly interval: number,
    private readonly timeout: number,
    private readonly emit: (samples: Sample[]) => void,
  ) {}

  start(): void {
    for (const t of this.targets) {
      void this.once(t);
      this.timers.push(setInterval(() => void this.once(t), this.interval));
    }
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  /** One scrape and one probe of a target; never throws. */
  async once(t: ScrapeTarget): Promise<void> {
    const tags = normalizeTags(`target:${t.url.replace(/[,|\s]/g, '_')}`) ?? '';
    const [data, probe] = await Promise.all([this.fetchText(t.url), this.fetchText(t.heartbeat)]);
    this.scrapes++;
    if ('text' in data) {
      try {
        const samples =
          t.format === 'prometheus' ? parsePrometheus(data.text, tags, this.previous).samples : flattenJson(JSON.parse(data.text), tags);
        this.emit(samples);
        this.failures.delete(t.url);
      } catch (err) {
        this.failures.set(t.url, `unreadable ${t.format}: ${(err as Error).message.slice(0, 200)}`);
      }
    } else this.failures.set(t.url, data.error);
    const up = 'text' in probe;
    const reason = up ? '' : `,reason:${probe.error.replace(/[,|:\s]+/g, '_').slice(0, 80)}`;
    this.emit([{ name: 'up', tags: normalizeTags(`${tags}${reason}`) ?? tags, type: 'g', value: up ? 1 : 0, weight: 1 }]);
  }

  private async fetchText(url: string): Promise<{ text: string } | { error: string }> {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.timeout), headers: { accept: 'text/plain, application/json' } });
      const text = await res.text();
      if (!res.ok) return { error: `HTTP ${res.status}` };
      if (text.length > 16 << 20) return { error: 'body over 16 MiB' };
      return { text };
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      return { error: e.name === 'TimeoutError' ? `timeout after ${this.timeout} ms` : (e.cause?.code ?? e.cause?.message ?? e.message) };
    }
  }
}
