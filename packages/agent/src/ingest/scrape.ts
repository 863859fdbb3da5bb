import { type AgentErrorCode, report } from '../errors.js';
import { MAX_INTERVAL_MS, type Sample } from '../model/sample.js';
import { normalizeTags } from '../model/tags.js';
import { MAX_NAME, MAX_TAGS, sanitizeName } from './statsd-parse.js';

/**
 * Scrapes: an ekg /stats JSON document (flattened: every number a gauge, named by its dotted path) or
 * Prometheus /metrics text (counters turned into deltas between scrapes, everything else a gauge),
 * each sample tagged with its target; and a heartbeat probe of the target's /heartbeat, recorded as
 * the gauge `up` (1 or 0, with the reason as a tag when it fails).
 */
export interface ScrapeTarget {
  url: string;
  format: 'json' | 'prometheus';
  /** the probe URL, or undefined for none */
  heartbeat: string | undefined;
  /** ms between rounds */
  interval: number;
  /** ms per request */
  timeout: number;
}

/** How a target is given in the config: a URL, plus what the YAML form may set per target. */
export interface ScrapeSpec {
  url: string;
  format?: 'json' | 'prometheus';
  /** a path next to the URL (`heartbeat`, `ready`), an absolute path or URL, or false for no probe */
  heartbeat?: string | false;
  interval?: number;
  timeout?: number;
}

/**
 * Resolves a target: a URL ending in /metrics is Prometheus text, anything else JSON; the probe is
 * the `heartbeat` beside the URL (`/ops/stats` → `/ops/heartbeat`) unless the spec says otherwise.
 */
export function targetOf(
  spec: ScrapeSpec | string,
  dflt: { interval: number; timeout: number } = { interval: 10_000, timeout: 5000 },
): ScrapeTarget {
  const sp = typeof spec === 'string' ? { url: spec } : spec;
  const u = new URL(sp.url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`scrape target must be http(s): ${sp.url}`);
  const format = sp.format ?? (u.pathname.endsWith('/metrics') ? 'prometheus' : 'json');
  let heartbeat: string | undefined;
  if (sp.heartbeat !== false) {
    const hb = sp.heartbeat ?? 'heartbeat';
    if (/^https?:\/\//.test(hb) || hb.startsWith('/')) heartbeat = new URL(hb, u).href;
    else {
      const h = new URL(u.href);
      h.pathname = u.pathname.replace(/[^/]*$/, hb);
      h.search = '';
      heartbeat = h.href;
    }
  }
  return { url: u.href, format, heartbeat, interval: sp.interval ?? dflt.interval, timeout: sp.timeout ?? dflt.timeout };
}

/** A scrape's body is read up to this many bytes; a longer one is refused, never held whole. */
export const MAX_SCRAPE_BODY = 16 << 20;
/** Samples one scrape gives at most (as `max_series`' default); the rest of the body is left out. */
export const MAX_SCRAPE_SAMPLES = 100_000;

/**
 * Flattens JSON into gauges named like mackerel-plugin-json does: nested keys joined by dots, array items by index.
 * A name past MAX_NAME is left out with all below it (so nesting ends there, however deep the document), and at
 * most MAX_SCRAPE_SAMPLES samples are taken.
 */
export function flattenJson(doc: unknown, tags: string, out: Sample[] = [], prefix = ''): Sample[] {
  if (doc === null || typeof doc !== 'object') return out;
  for (const k in doc as Record<string, unknown>) {
    if (out.length >= MAX_SCRAPE_SAMPLES) return out;
    if (!Object.hasOwn(doc, k)) continue;
    const v = (doc as Record<string, unknown>)[k];
    const name = prefix ? `${prefix}.${sanitizeName(k)}` : sanitizeName(k);
    if (!name || name.length > MAX_NAME) continue;
    if (typeof v === 'number' && Number.isFinite(v)) out.push({ name, tags, type: 'g', value: v, weight: 1 });
    else if (typeof v === 'boolean') out.push({ name, tags, type: 'g', value: v ? 1 : 0, weight: 1 });
    else if (v !== null && typeof v === 'object') flattenJson(v, tags, out, name);
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
    if (samples.length >= MAX_SCRAPE_SAMPLES) break;
    const m = SAMPLE.exec(line);
    if (!m || (m[1] as string).length > MAX_NAME) {
      bad++;
      continue;
    }
    const name = m[1] as string;
    const value = Number(m[4]);
    if (!Number.isFinite(value)) continue;
    const labels: string[] = targetTags ? [targetTags] : [];
    if (m[3]) for (const l of (m[3] as string).matchAll(LABEL)) labels.push(`${l[1]}:${(l[2] as string).replace(/[,|\s]/g, '_')}`);
    const tags = normalizeTags(labels.join(',')) ?? targetTags;
    if (tags.length > MAX_TAGS + targetTags.length) {
      bad++;
      continue;
    }
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
  /** rounds per target URL, for /api/v1/self */
  readonly rounds = new Map<string, number>();

  /** when each failing target's outage began, and how many rounds it has failed */
  private readonly down = new Map<string, { since: number; rounds: number }>();
  /** when each target's last successful scrape began: the next one's samples describe the time since */
  private readonly lastOk = new Map<string, number>();

  constructor(
    readonly targets: ScrapeTarget[],
    private readonly emit: (samples: Sample[]) => void,
    private readonly log: (line: string, code: AgentErrorCode) => void = (l, code) => report(code, l),
  ) {}

  /** One stderr line when a target's outage begins and one when it ends, never one per round. */
  private outcome(url: string, error: string | undefined): void {
    const d = this.down.get(url);
    if (error === undefined) {
      if (d)
        this.log(
          `scrape ${url}: back after ${d.rounds} failed rounds (${Math.round((Date.now() - d.since) / 1000)}s)`,
          'EKG_AGENT_ERR_SCRAPE',
        );
      this.down.delete(url);
      this.failures.delete(url);
      return;
    }
    this.failures.set(url, error);
    if (d) d.rounds++;
    else {
      this.down.set(url, { since: Date.now(), rounds: 1 });
      this.log(`scrape ${url}: failing (${error}); retrying every round, one line when it is back`, 'EKG_AGENT_ERR_SCRAPE');
    }
  }

  /** Each target on its own schedule; a round still running when the next is due is not doubled. */
  start(): void {
    for (const t of this.targets) {
      let running = false;
      const round = () => {
        if (running) return;
        running = true;
        void this.once(t).finally(() => {
          running = false;
        });
      };
      round();
      this.timers.push(setInterval(round, t.interval));
    }
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  /**
   * One scrape and one probe of a target; never throws. The samples describe the interval since the
   * previous successful scrape of the target began (its schedule's interval for the first): counters
   * are spread over it and gauges held for it, as StatsD samples with `ekg.interval_ms` (docs/time-model.md).
   * `now`: when the round began (tests pass it).
   */
  async once(t: ScrapeTarget, now = Date.now()): Promise<void> {
    const tags = normalizeTags(`target:${t.url.replace(/[,|\s]/g, '_')}`) ?? '';
    const [data, probe] = await Promise.all([
      this.fetchText(t.url, t.timeout),
      t.heartbeat ? this.fetchText(t.heartbeat, t.timeout) : undefined,
    ]);
    this.scrapes++;
    this.rounds.set(t.url, (this.rounds.get(t.url) ?? 0) + 1);
    if ('text' in data) {
      try {
        const samples =
          t.format === 'prometheus' ? parsePrometheus(data.text, tags, this.previous).samples : flattenJson(JSON.parse(data.text), tags);
        const before = this.lastOk.get(t.url);
        const interval = before !== undefined && now > before ? Math.min(now - before, MAX_INTERVAL_MS) : t.interval;
        this.lastOk.set(t.url, now);
        for (const s of samples) s.interval = interval;
        this.emit(samples);
        this.outcome(t.url, undefined);
      } catch (err) {
        this.outcome(t.url, `unreadable ${t.format}: ${(err as Error).message.slice(0, 200)}`);
      }
    } else this.outcome(t.url, data.error);
    if (!probe) return;
    const up = 'text' in probe;
    const reason = up ? '' : `,reason:${probe.error.replace(/[,|:\s]+/g, '_').slice(0, 80)}`;
    // the probe's answer is a moment: a held up:1 would outlast the up:0 that follows it (the instance's
    // freshness counts the scrape interval its samples carry)
    this.emit([{ name: 'up', tags: normalizeTags(`${tags}${reason}`) ?? tags, type: 'g', value: up ? 1 : 0, weight: 1 }]);
  }

  private async fetchText(url: string, timeout: number): Promise<{ text: string } | { error: string }> {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeout), headers: { accept: 'text/plain, application/json' } });
      if (!res.ok) {
        await res.body?.cancel();
        return { error: `HTTP ${res.status}` };
      }
      // read up to the budget and no further: a target that streams without end (or a bug that does)
      // would otherwise fill the agent's memory within the timeout
      const chunks: Uint8Array[] = [];
      let size = 0;
      for await (const c of (res.body ?? []) as AsyncIterable<Uint8Array>) {
        size += c.length;
        // leaving the loop cancels the body: the rest is never read
        if (size > MAX_SCRAPE_BODY) return { error: 'body over 16 MiB' };
        chunks.push(c);
      }
      return { text: Buffer.concat(chunks).toString('utf8') };
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      return { error: e.name === 'TimeoutError' ? `timeout after ${timeout} ms` : (e.cause?.code ?? e.cause?.message ?? e.message) };
    }
  }
}
