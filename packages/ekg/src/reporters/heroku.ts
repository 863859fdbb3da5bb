import http from 'node:http';
import https from 'node:https';
import { herokuInterval } from '../env.js';
import { HerokuPeriod, herokuCount } from '../formats/heroku.js';
import { warn } from '../log.js';
import { newStats, Outage, type Transport, type WindowPayload } from './transport.js';

export interface HerokuOptions {
  /** the metrics URL (query string kept) */
  url: string;
  /** per attempt, ms (default 5000) */
  timeout?: number;
  /** retries after the first attempt on 5xx, 408, 429, timeouts and connection errors (default 3) */
  retries?: number;
  /** first backoff, ms, doubled each retry and jittered (default 500) */
  backoff?: number;
  /**
   * ms between posts, as Heroku's collector posts (default METRICS_INTERVAL_OVERRIDE, at least 10 s, else
   * 20 s). Windows add up until one post's worth is covered; 0 posts every window.
   */
  interval?: number;
}

/** RFC 3339 in UTC without fractional seconds, as agentmon writes Measurements-Time. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

class Rejected extends Error {}

/** A post's body and the ms its windows cover (sent as `X-Ekg-Interval-Ms`: ekg-agent spreads and holds the values over it). */
interface Post {
  body: string;
  ms: number;
}

/**
 * Heroku-style JSON push: `POST {"counters":{…},"gauges":{…}}` with `Measurements-Count` and
 * `Measurements-Time`, once per interval (Heroku's 20 s or METRICS_INTERVAL_OVERRIDE), in Heroku's
 * names with Heroku's meanings (formats/heroku.ts). One post in flight at most; a window that arrives
 * meanwhile waits in a single slot (the one it replaces is counted as dropped). Response bodies
 * are always drained and sockets unref'd, so nothing leaks and nothing keeps the app alive.
 */
export class HerokuTransport implements Transport {
  readonly name: string;
  readonly stats = newStats();
  private readonly outage: Outage;
  private readonly url: URL;
  private readonly agent: http.Agent;
  private busy = false;
  private next: Post | undefined;
  private closed = false;
  private readonly inflight = new Set<http.ClientRequest>();
  private sleeping: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  private readonly period = new HerokuPeriod();
  private readonly interval: number;

  constructor(private readonly o: HerokuOptions) {
    this.url = new URL(o.url);
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:')
      throw new TypeError(`push URL must be http or https, got ${this.url.protocol}`);
    // the name never shows credentials or the query (Heroku's URL carries a token)
    this.name = `heroku ${this.url.protocol}//${this.url.host}${this.url.pathname}`;
    this.outage = new Outage(this.name, this.stats);
    this.agent = new (this.url.protocol === 'https:' ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: 1 });
    this.interval = o.interval ?? herokuInterval().ms;
  }

  send(w: WindowPayload): void {
    if (this.closed) return;
    const windowMs = w.snapshot.runtime.windowMs;
    this.period.add(w.measurements(), windowMs);
    // a post once the windows cover the interval (half a window early rather than a window late)
    if (this.period.elapsed < this.interval - windowMs / 2) return;
    const ms = Math.round(this.period.elapsed);
    const payload = this.period.take();
    if (herokuCount(payload) === 0) return;
    const post: Post = { body: JSON.stringify(payload), ms };
    if (this.busy) {
      if (this.next !== undefined) this.stats.dropped++;
      this.next = post;
      return;
    }
    void this.run(post);
  }

  private async run(first: Post): Promise<void> {
    this.busy = true;
    let post: Post | undefined = first;
    while (post !== undefined && !this.closed) {
      await this.deliver(post);
      post = this.next;
      this.next = undefined;
    }
    this.busy = false;
  }

  private async deliver({ body, ms }: Post): Promise<void> {
    const retries = this.o.retries ?? 3;
    const count = herokuCount(JSON.parse(body));
    for (let attempt = 0; attempt <= retries && !this.closed; attempt++) {
      try {
        await this.post(body, count, ms);
        this.outage.ok(Buffer.byteLength(body));
        return;
      } catch (err) {
        if (err instanceof Rejected) {
          this.stats.errors++;
          this.stats.dropped++;
          this.stats.lastError = err.message;
          this.stats.lastErrorAt = Date.now();
          warn(
            'EKG_ERR_REPORTER',
            `${this.name}: ${err.message}; not retried (check the URL and its token)`,
            `rejected:${this.name}:${err.message}`,
          );
          return;
        }
        this.outage.fail(err, `attempt ${attempt + 1} of ${retries + 1}`);
        if (attempt < retries) await this.sleep((this.o.backoff ?? 500) * 2 ** attempt * (0.75 + Math.random() * 0.5));
      }
    }
    this.stats.dropped++;
  }

  private post(body: string, count: number, ms: number): Promise<void> {
    const u = this.url;
    const request = u.protocol === 'https:' ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const req = request(
        u,
        {
          method: 'POST',
          agent: this.agent,
          headers: {
            'Content-Type': 'application/json',
            'Content-Length': Buffer.byteLength(body),
            'Measurements-Count': String(count),
            'Measurements-Time': rfc3339(new Date()),
            // ekg's extension: the interval the values describe (any other receiver ignores an unknown header)
            ...(ms > 0 ? { 'X-Ekg-Interval-Ms': String(ms) } : {}),
            'User-Agent': 'ekg',
          },
        },
        (res) => {
          // always drain: an unread body pins the keep-alive socket (Heroku's collector leaked them)
          res.resume();
          res.on('error', () => {});
          const code = res.statusCode ?? 0;
          if (code >= 200 && code < 300) resolve();
          else if (code >= 400 && code < 500 && code !== 408 && code !== 429) reject(new Rejected(`the target answered ${code}`));
          else reject(new Error(`the target answered ${code}`));
        },
      );
      this.inflight.add(req);
      req.on('close', () => this.inflight.delete(req));
      req.on('socket', (s) => s.unref());
      req.setTimeout(this.o.timeout ?? 5000, () => req.destroy(new Error(`no answer within ${this.o.timeout ?? 5000} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((wake) => {
      const timer = setTimeout(() => {
        this.sleeping = undefined;
        wake();
      }, ms);
      timer.unref();
      this.sleeping = { timer, wake };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.sleeping) {
      clearTimeout(this.sleeping.timer);
      this.sleeping.wake();
    }
    for (const r of this.inflight) r.destroy();
    this.agent.destroy();
  }
}
