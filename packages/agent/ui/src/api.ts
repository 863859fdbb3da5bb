/** The agent's JSON API, with the token when the agent has one. */

import type { Instance, SeriesInfo, StoredEvent, QueryResult as StoreResult } from '../../src/store/reader.js';

export type { AlertsView } from '../../src/alert/alerts.js';
export type { Change as AlertChange } from '../../src/alert/notify.js';
export type { Instance, SeriesInfo };
/** A recorded event (a stall an app reported). */
export type AgentEvent = StoredEvent;

/** `/api/v1/query`'s answer: the store's, with the name and aggregation it used. */
export interface QueryResult extends StoreResult {
  name: string;
  agg: string;
}

export interface Query {
  name: string;
  tags?: string;
  agg?: string;
  by?: string;
  from: number;
  to: number;
  step?: number;
}

/** The agent answered 401: the dashboard asks for the token and tries again. */
export class Unauthorized extends Error {}

const KEY = 'ekg-agent-token';
let token: string | null = null;
try {
  token = localStorage.getItem(KEY);
} catch {
  // storage may be off (private mode): the token lives for this page only
}

export function setToken(t: string): void {
  token = t;
  try {
    localStorage.setItem(KEY, t);
  } catch {
    // see above
  }
}

/** Requests made since the page loaded, for tests and the status line. */
export const stats = { requests: 0, failures: 0 };

export async function api<T>(path: string, params: Record<string, string | number | undefined> = {}): Promise<T> {
  const u = new URL(path, location.origin);
  // (a path may carry its own query string, as a batch does)
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') u.searchParams.set(k, String(v));
  stats.requests++;
  const res = await fetch(u, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (res.status === 401) {
    // read to the end: a response left unread is an aborted request to the browser
    await res.arrayBuffer().catch(() => undefined);
    throw new Unauthorized('the agent wants its token');
  }
  const body = (await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }))) as T & { error?: string };
  if (!res.ok) {
    stats.failures++;
    throw new Error(body.error ?? `${res.status} ${res.statusText}`);
  }
  return body;
}

function paramsOf(q: Query): Record<string, string | undefined> {
  return {
    name: q.name,
    tags: q.tags,
    agg: q.agg,
    by: q.by,
    from: String(Math.round(q.from)),
    to: String(Math.round(q.to)),
    step: q.step ? `${q.step}s` : undefined,
  };
}

/** One query; `from` and `to` in ms, `step` in seconds. */
export function query(q: Query): Promise<QueryResult> {
  return api<QueryResult>('/api/v1/query', paramsOf(q));
}

/** Many queries in one request (`/api/v1/batch`): each answer, or undefined where that query failed. */
export async function batch(qs: Query[]): Promise<Array<QueryResult | undefined>> {
  if (qs.length === 0) return [];
  const u = new URLSearchParams();
  for (const q of qs) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(paramsOf(q))) if (v !== undefined && v !== '') p.set(k, v);
    u.append('q', p.toString());
  }
  const r = await api<{ results: Array<QueryResult | { error: string }> }>(`/api/v1/batch?${u}`);
  return r.results.map((x) => ('error' in x ? undefined : x));
}
