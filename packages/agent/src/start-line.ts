import { join } from 'node:path';
import type { Agent } from './agent.js';

const hostPort = (host: string, port: number | undefined) => `${host.includes(':') ? `[${host}]` : host}:${port}`;

/**
 * The one line the agent prints once it listens: every listener with the address it really bound (port 0 resolved),
 * the store, each scrape target, each exporter, the alert rules and the window — so that what runs can be read off
 * a log without reading the configuration.
 */
export function startLine(agent: Agent): string {
  const c = agent.config;
  const a = agent.addresses();
  const parts: string[] = [];
  const udp = c.statsdUdp ? hostPort(c.statsdUdp.host, a.udp) : undefined;
  const tcp = c.statsdTcp ? hostPort(c.statsdTcp.host, a.tcp) : undefined;
  const statsd = (udp && udp === tcp ? [`udp+tcp ${udp}`] : [udp && `udp ${udp}`, tcp && `tcp ${tcp}`]).filter(Boolean);
  if (c.statsdUnix) statsd.push(`unix ${c.statsdUnix}`);
  parts.push(`statsd ${statsd.length ? statsd.join(' + ') : 'off'}${c.statsdNote ? ` (${c.statsdNote})` : ''}`);
  parts.push(`http ${c.http ? `http://${hostPort(c.http.host, a.http)}` : 'off'}`);
  parts.push(
    `store ${c.store === 'sqlite' ? `sqlite ${join(c.data, 'ekg.db')}` : c.store === 'prometheus' ? `prometheus ${c.storeUrl ?? ''}` : 'off'}`,
  );
  if (c.scrape.length) parts.push(`scrape ${c.scrape.map((t) => t.url).join(' ')}`);
  if (agent.exporters.length) parts.push(`export ${agent.exporters.map((e) => e.name).join(', ')}`);
  if (c.alerts.length)
    parts.push(`alerts ${c.alerts.length} rules → ${c.notify.length ? c.notify.map((n) => n.type).join(', ') : 'no notifier'}`);
  parts.push(`window ${c.flushInterval / 1000}s`);
  return `ekg-agent: ${parts.join(', ')}`;
}
