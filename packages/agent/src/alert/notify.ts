import { join } from 'node:path';
import type { FlushResult } from '../aggregate/aggregator.js';
import type { AgentErrorCode } from '../errors.js';
import { type Outcome, post, QueuedExporter } from '../export/exporter.js';
import { secret } from '../export/make.js';
import type { NotifierSpec, Severity } from './rules.js';

/** One state change of one group of one rule: what every notifier is given. */
export interface Change {
  alert: string;
  state: 'firing' | 'resolved';
  severity: Severity;
  /** the group's tags (`by` of the rule); {} for a rule over everything */
  group: Record<string, string>;
  /** the value that decided the change (null where there is none, e.g. an instance that went silent) */
  value: number | null;
  threshold: number | null;
  /** `above` or `below` for a threshold rule; null for the built-ins that watch a state */
  op: 'above' | 'below' | null;
  /** epoch ms: since when the condition (or its absence, for a resolve) held */
  since: number;
  /** epoch ms: the change */
  at: number;
  /** one line a person can read: what crossed, or what the app reported (a stall names its function) */
  message: string;
  /** the dashboard view of the group, a path and hash under the dashboard's address (`/#/instance?key=…`) */
  link: string;
  /** 0 for the change itself; 1, 2, … for the reminders a rule's `renotify` sends while it fires */
  renotify: number;
}

/** What a webhook receives: one POST per change, this JSON object. */
export function webhookBody(c: Change, dashboard: string) {
  return {
    alert: c.alert,
    state: c.state,
    severity: c.severity,
    group: c.group,
    value: c.value,
    threshold: c.threshold,
    op: c.op,
    since: new Date(c.since).toISOString(),
    at: new Date(c.at).toISOString(),
    message: c.message,
    dashboard: `${dashboard}${c.link}`,
    renotify: c.renotify,
  };
}

const groupText = (g: Record<string, string>) =>
  Object.entries(g)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/** One line per change, as Slack and the stderr log show it. */
export function changeLine(c: Change): string {
  const g = groupText(c.group);
  const head = c.state === 'firing' ? (c.renotify > 0 ? 'still firing' : 'firing') : 'resolved';
  return `${c.alert}${g ? ` {${g}}` : ''} ${head} (${c.severity}): ${c.message}`;
}

/** Slack's incoming webhook: one message per evaluation that changed something (changes grouped, so a fleet going down is one message). */
export function slackBody(cs: Change[], dashboard: string) {
  const icon = (c: Change) =>
    c.state === 'resolved' ? ':large_green_circle:' : c.severity === 'critical' ? ':red_circle:' : ':large_orange_circle:';
  const firing = cs.filter((c) => c.state === 'firing').length;
  const head = cs.length === 1 ? changeLine(cs[0] as Change) : `${firing} firing, ${cs.length - firing} resolved`;
  return {
    text: `ekg-agent: ${head}`,
    blocks: [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: cs
            .slice(0, 40)
            .map((c) => `${icon(c)} ${slackEscape(changeLine(c))} <${dashboard}${c.link}|dashboard>`)
            .concat(cs.length > 40 ? [`… and ${cs.length - 40} more`] : [])
            .join('\n'),
        },
      },
    ],
  };
}

const slackEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Mackerel check monitoring: `{"reports":[…]}`, up to 100 a request, one report per change. */
export function mackerelBodies(cs: Change[], hostId: string, dashboard: string) {
  const reports = cs.map((c) => {
    const g = groupText(c.group);
    return {
      source: { type: 'host', hostId },
      name: `ekg ${c.alert}${g ? ` ${g}` : ''}`.slice(0, 250),
      status: c.state === 'resolved' ? 'OK' : c.severity === 'critical' ? 'CRITICAL' : 'WARNING',
      message: `${changeLine(c)} ${dashboard}${c.link}`.slice(0, 1000),
      occurredAt: Math.floor(c.at / 1000),
    };
  });
  const out: Array<{ reports: typeof reports }> = [];
  for (let i = 0; i < reports.length; i += 100) out.push({ reports: reports.slice(i, i + 100) });
  return out;
}

const NO_WINDOW: FlushResult = { start: 0, end: 0, series: [] };

/**
 * A notifier: its notifications wait in an exporter's spool (on disk under the data dir: retried
 * with backoff, replayed in order after a restart, what overflows counted), exactly as a window's
 * batches do. `send` queues the bodies of one evaluation's changes and hands them to the queue.
 */
export class Notifier extends QueuedExporter {
  private pending: Array<{ body: Uint8Array; samples: number }> = [];
  private readonly target: string;
  private readonly headers: Record<string, string>;
  private readonly agentUrl: string | (() => string);
  protected override get code(): AgentErrorCode {
    return 'EKG_AGENT_ERR_NOTIFY';
  }

  constructor(
    readonly spec: NotifierSpec,
    spoolRoot: string,
    agentUrl: string | (() => string),
  ) {
    const host = spec.type === 'mackerel' ? (spec.host_id as string) : new URL(spec.url as string).host;
    super(`notify ${spec.type} ${host}`, {
      spoolDir: join(spoolRoot, `notify-${spec.type}-${host}`.replace(/[^a-zA-Z0-9._-]/g, '_')),
      maxBytes: spec.spool_max_bytes,
      backoff: spec.backoff ?? 1000,
      maxBackoff: spec.max_backoff ?? 60_000,
    });
    this.agentUrl = agentUrl;
    this.headers = { 'content-type': 'application/json' };
    if (spec.type === 'mackerel') {
      const base = (spec.url ?? 'https://api.mackerelio.com').replace(/\/$/, '');
      this.target = `${base}/api/v0/monitoring/checks/report`;
      // the key is read as the Mackerel exporter reads it: api_key_file, else api_key_env (default MACKEREL_APIKEY)
      this.headers['x-api-key'] = secret(
        spec.api_key_file ? undefined : (spec.api_key_env ?? 'MACKEREL_APIKEY'),
        spec.api_key_file,
        'mackerel api key',
      );
    } else this.target = spec.url as string;
  }

  /** The dashboard's address in links: `dashboard_url`, else the agent's own HTTP address. */
  get dashboard(): string {
    return this.spec.dashboard_url ?? (typeof this.agentUrl === 'function' ? this.agentUrl() : this.agentUrl);
  }

  /** Whether this notifier takes the rule's changes. */
  wants(rule: string): boolean {
    return !this.spec.alerts || this.spec.alerts.includes(rule);
  }

  send(changes: Change[]): void {
    const cs = changes.filter((c) => this.wants(c.alert));
    if (cs.length === 0) return;
    const bodies =
      this.spec.type === 'webhook'
        ? cs.map((c) => webhookBody(c, this.dashboard))
        : this.spec.type === 'slack'
          ? [slackBody(cs, this.dashboard)]
          : mackerelBodies(cs, this.spec.host_id as string, this.dashboard);
    for (const b of bodies) this.pending.push({ body: Buffer.from(JSON.stringify(b)), samples: 1 });
    this.write(NO_WINDOW);
  }

  protected encode(): Array<{ body: Uint8Array; samples: number }> {
    return this.pending.splice(0);
  }

  protected deliver(body: Uint8Array): Promise<Outcome> {
    return post(this, this.target, body, this.headers);
  }
}
