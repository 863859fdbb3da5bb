import { INTERVAL_GAUGE } from '../catalogue.js';
import type { Measurement } from './measurements.js';

export interface StatsdFormat {
  /** prepended with a dot, e.g. `myapp` → `myapp.runtime.gc.count` (default none) */
  prefix?: string;
  /** DogStatsD tags, `|#k:v,…` (etsy StatsD 0.9 and ekg-agent read them) */
  tags?: Record<string, string>;
}

function tagValue(s: string): string {
  return s.replace(/[|,#\n\s]/g, '_');
}

/**
 * StatsD lines for one window: counters `|c`, gauges `|g` (a negative gauge is reset first, so it is
 * not read as a delta). Given the window, the first line is the gauge `ekg.interval_ms`, its length:
 * ekg-agent reads the lines that follow with the same tags as describing that interval (a counter is
 * spread over it, a gauge holds for it); any other StatsD server keeps it as one more gauge.
 */
export function statsdLines(ms: readonly Measurement[], f: StatsdFormat = {}, window?: { start: number; end: number }): string[] {
  const prefix = f.prefix ? `${f.prefix.replace(/\.+$/, '')}.` : '';
  const tagList = f.tags ? Object.entries(f.tags).map(([k, v]) => `${tagValue(k)}:${tagValue(v)}`) : [];
  const tags = tagList.length ? `|#${tagList.join(',')}` : '';
  const lines: string[] = [];
  if (window && window.end > window.start && ms.length > 0)
    lines.push(`${prefix}${INTERVAL_GAUGE}:${Math.round(window.end - window.start)}|g${tags}`);
  for (const m of ms) {
    const value = Number.isInteger(m.value) ? String(m.value) : String(Math.round(m.value * 1e6) / 1e6);
    if (m.type === 'counter') lines.push(`${prefix}${m.name}:${value}|c${tags}`);
    else {
      if (m.value < 0) lines.push(`${prefix}${m.name}:0|g${tags}`);
      lines.push(`${prefix}${m.name}:${value}|g${tags}`);
    }
  }
  return lines;
}

/** A DogStatsD event: `_e{title,text}:title|text|d:<ts>|t:<alert>|#tags` (newlines in the text escaped as `\\n`). */
export function statsdEvent(
  title: string,
  text: string,
  f: StatsdFormat = {},
  ts = Math.floor(Date.now() / 1000),
  alert = 'warning',
): string {
  const t = title.replace(/[|\n]/g, ' ');
  const x = text.replace(/\n/g, '\\n').replace(/\|/g, '/');
  const tagList = f.tags ? Object.entries(f.tags).map(([k, v]) => `${tagValue(k)}:${tagValue(v)}`) : [];
  return `_e{${Buffer.byteLength(t)},${Buffer.byteLength(x)}}:${t}|${x}|d:${ts}|t:${alert}${tagList.length ? `|#${tagList.join(',')}` : ''}`;
}

/**
 * Packs lines into newline-separated packets of at most `max` bytes, never splitting a line. A line
 * longer than `max` travels alone (the transport reports it if the network refuses it).
 */
export function pack(lines: readonly string[], max: number): Buffer[] {
  const out: Buffer[] = [];
  let cur = '';
  let curBytes = 0;
  for (const line of lines) {
    const n = Buffer.byteLength(line);
    if (curBytes > 0 && curBytes + 1 + n > max) {
      out.push(Buffer.from(cur));
      cur = '';
      curBytes = 0;
    }
    cur = curBytes === 0 ? line : `${cur}\n${line}`;
    curBytes += curBytes === 0 ? n : n + 1;
  }
  if (curBytes > 0) out.push(Buffer.from(cur));
  return out;
}
