import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { type NotifierSpec, type RuleDraft, readAlerts, readNotify } from './alert/rules.js';
import { ConfigError } from './errors.js';
import { EXPORTER_FIELDS, type ExporterSpec } from './export/spec.js';
import { parseListen } from './ingest/listeners.js';
import type { ScrapeSpec } from './ingest/scrape.js';
import { bytes, duration, url, YAML_KEYS } from './options.js';

/** Keys of the YAML file, and the option each one stands for (the option table's). */
const KEYS: Readonly<Record<string, string>> = YAML_KEYS;

const SCRAPE_KEYS = ['url', 'interval', 'timeout', 'format', 'heartbeat'];

/**
 * Reads the YAML config file into flag values (lowest precedence: env vars and flags override it),
 * and the scrape targets, which may each carry their own interval, timeout, format and probe.
 * Anything wrong is a ConfigError naming the file, the line and the field.
 */
export function readConfigFile(path: string): {
  values: Record<string, string>;
  /** the line each value is on, by flag name, for errors found later */
  lines: Record<string, number>;
  scrape: ScrapeSpec[] | undefined;
  exporters: ExporterSpec[] | undefined;
  /** `alerts:` and `notify:` (docs/agent-alerts.md) */
  alerts?: RuleDraft[];
  notify?: NotifierSpec[];
} {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`config ${path}: cannot read: ${(err as Error).message}`, 'EKG_AGENT_ERR_CONFIG_FILE');
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const at = (node: Node | null | undefined) => (node?.range ? lines.linePos(node.range[0]).line : 1);
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = e?.linePos?.[0]?.line ?? (e?.pos ? lines.linePos(e.pos[0]).line : 1);
    throw new ConfigError(`config ${path}:${line}: not valid YAML: ${e?.message.split('\n')[0]}`, 'EKG_AGENT_ERR_CONFIG_FILE');
  }
  const out: Record<string, string> = {};
  const where: Record<string, number> = {};
  let scrape: ScrapeSpec[] | undefined;
  let exporters: ExporterSpec[] | undefined;
  let alerts: RuleDraft[] | undefined;
  let notify: NotifierSpec[] | undefined;
  if (doc.contents === null) return { values: out, lines: where, scrape, exporters };
  if (!isMap(doc.contents))
    throw new ConfigError(
      `config ${path}:${at(doc.contents as Node)}: the file must be a mapping of keys (statsd:, http:, …)`,
      'EKG_AGENT_ERR_CONFIG_FILE',
    );
  for (const pair of doc.contents.items) {
    const keyNode = pair.key as Node;
    const key = isScalar(keyNode) ? String(keyNode.value) : '';
    const line = at(keyNode);
    const flag = KEYS[key];
    if (!flag)
      throw new ConfigError(
        `config ${path}:${line}: unknown field "${key}"; known: ${Object.keys(KEYS).join(', ')}`,
        'EKG_AGENT_ERR_UNKNOWN_OPTION',
      );
    const v = pair.value as Node | null;
    if (key === 'scrape') {
      if (!isSeq(v)) throw new ConfigError(`config ${path}:${line}: field "scrape" must be a list of URLs or {url, interval, …}`);
      scrape = [];
      for (const item of v.items as Node[]) {
        const where = `config ${path}:${at(item)}`;
        if (isScalar(item) && typeof item.value === 'string') {
          scrape.push({ url: checkUrl(item.value, where, 'scrape') });
          continue;
        }
        if (!isMap(item)) throw new ConfigError(`${where}: field "scrape" items must be URLs or mappings with url:`);
        const spec: Partial<ScrapeSpec> = {};
        for (const p of item.items) {
          const k = isScalar(p.key) ? String(p.key.value) : '';
          const val = p.value as Node | null;
          const w = `config ${path}:${at(p.key as Node)}`;
          const f = `scrape[${scrape.length}].${k}`;
          if (!SCRAPE_KEYS.includes(k))
            throw new ConfigError(`${w}: unknown field "${f}"; known: ${SCRAPE_KEYS.join(', ')}`, 'EKG_AGENT_ERR_UNKNOWN_OPTION');
          const str = isScalar(val) && (typeof val.value === 'string' || typeof val.value === 'number') ? String(val.value) : undefined;
          if (k === 'heartbeat' && isScalar(val) && val.value === false) {
            spec.heartbeat = false;
            continue;
          }
          if (str === undefined) throw new ConfigError(`${w}: field "${f}" must be a string`);
          try {
            if (k === 'url') spec.url = checkUrl(str, w, f);
            else if (k === 'interval' || k === 'timeout') spec[k] = duration(str, f);
            else if (k === 'format') {
              if (str !== 'json' && str !== 'prometheus') throw new ConfigError(`${f}: "${str}" must be json or prometheus`);
              spec.format = str;
            } else spec.heartbeat = str;
          } catch (err) {
            if (err instanceof ConfigError && !err.message.startsWith('config ')) throw new ConfigError(`${w}: ${err.message}`);
            throw err;
          }
        }
        if (!spec.url) throw new ConfigError(`${where}: field "scrape[${scrape.length}].url" is missing`);
        scrape.push(spec as ScrapeSpec);
      }
      continue;
    }
    if (key === 'exporters') {
      if (!isSeq(v)) throw new ConfigError(`config ${path}:${line}: field "exporters" must be a list of {type: …, …}`);
      exporters = (v.items as Node[]).map((item, n) => exporterOf(item, n, `config ${path}`, at));
      continue;
    }
    if (key === 'alerts') {
      alerts = readAlerts(v, `config ${path}`, line, at);
      continue;
    }
    if (key === 'notify') {
      notify = readNotify(v, `config ${path}`, line, at);
      continue;
    }
    if (key === 'remote_write' && isSeq(v)) {
      const list: string[] = [];
      for (const item of v.items as Node[]) {
        if (!isScalar(item) || typeof item.value !== 'string')
          throw new ConfigError(`config ${path}:${at(item)}: field "remote_write" items must be URLs`);
        list.push(checkUrl(item.value, `config ${path}:${at(item)}`, 'remote_write'));
      }
      out[flag] = list.join(',');
      where[flag] = line;
      continue;
    }
    if (!isScalar(v) || (typeof v.value !== 'string' && typeof v.value !== 'number')) {
      throw new ConfigError(`config ${path}:${line}: field "${key}" must be a string or a number`);
    }
    out[flag] = String(v.value);
    where[flag] = at(v);
  }
  return { values: out, lines: where, scrape, exporters, alerts, notify };
}

/** One `exporters:` item, checked field by field; errors name the line and `exporters[n].field`. */
function exporterOf(item: Node, n: number, file: string, at: (node: Node | null | undefined) => number): ExporterSpec {
  if (!isMap(item)) throw new ConfigError(`${file}:${at(item)}: field "exporters[${n}]" must be a mapping with type:`);
  const raw: Record<string, unknown> = {};
  const lineOf: Record<string, number> = {};
  for (const p of item.items) {
    const k = isScalar(p.key) ? String(p.key.value) : '';
    lineOf[k] = at(p.key as Node);
    const val = p.value as Node | null;
    raw[k] = isScalar(val)
      ? val.value
      : isMap(val)
        ? Object.fromEntries(
            val.items.map((q) => [String((q.key as { value: unknown }).value), String((q.value as { value: unknown })?.value ?? '')]),
          )
        : undefined;
  }
  const type = raw.type as ExporterSpec['type'];
  const known = EXPORTER_FIELDS[type];
  if (!known)
    throw new ConfigError(
      `${file}:${lineOf.type ?? at(item)}: field "exporters[${n}].type": "${String(raw.type)}" must be one of ${Object.keys(EXPORTER_FIELDS).join(', ')}`,
    );
  for (const k of Object.keys(raw)) {
    if (k === 'api_key' || k === 'token')
      throw new ConfigError(
        `${file}:${lineOf[k]}: field "exporters[${n}].${k}": secrets are not read from the file; use ${k}_env or ${k}_file`,
      );
    if (k !== 'type' && !known.fields.includes(k))
      throw new ConfigError(
        `${file}:${lineOf[k]}: unknown field "exporters[${n}].${k}" for ${type}; known: ${known.fields.join(', ')}`,
        'EKG_AGENT_ERR_UNKNOWN_OPTION',
      );
  }
  for (const k of known.required)
    if (raw[k] === undefined) throw new ConfigError(`${file}:${at(item)}: field "exporters[${n}].${k}" is missing`);
  const where = (k: string) => `${file}:${lineOf[k] ?? at(item)}`;
  for (const [k, allowed] of Object.entries(known.choices ?? {}))
    if (raw[k] !== undefined && !allowed.includes(String(raw[k])))
      throw new ConfigError(`${where(k)}: field "exporters[${n}].${k}": "${String(raw[k])}" must be one of ${allowed.join(', ')}`);
  if (typeof raw.url === 'string') raw.url = checkUrl(raw.url, where('url'), `exporters[${n}].url`);
  else if (raw.url !== undefined) throw new ConfigError(`${where('url')}: field "exporters[${n}].url" must be a URL`);
  const address = raw.address === undefined ? undefined : parseListen(String(raw.address), '');
  if (raw.address !== undefined && (address === undefined || address === 'off' || address.host === ''))
    throw new ConfigError(`${where('address')}: field "exporters[${n}].address": "${raw.address}" must be HOST:PORT`);
  if (raw.period !== undefined) {
    try {
      raw.period = duration(String(raw.period), `exporters[${n}].period`);
    } catch (err) {
      throw new ConfigError(`${where('period')}: ${(err as Error).message}`);
    }
  }
  if (raw.spool_max_bytes !== undefined) {
    try {
      raw.spool_max_bytes = bytes(String(raw.spool_max_bytes), `exporters[${n}].spool_max_bytes`);
    } catch (err) {
      throw new ConfigError(`${where('spool_max_bytes')}: ${(err as Error).message}`);
    }
  }
  if (type === 'mackerel' && !raw.service === !raw.host_id)
    throw new ConfigError(
      `${file}:${at(item)}: field "exporters[${n}]": mackerel needs exactly one of service (service metrics) or host_id (host metrics)`,
    );
  return raw as ExporterSpec;
}

function checkUrl(v: string, where: string, field: string): string {
  try {
    return url(v, `field "${field}"`);
  } catch (err) {
    throw new ConfigError(`${where}: ${(err as Error).message}`, (err as ConfigError).code);
  }
}
