import { readFileSync } from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { ConfigError } from './config.js';

/** Keys of the YAML file, and the flag each one stands for. */
const KEYS: Record<string, string> = {
  statsd: 'statsd',
  statsd_unix: 'statsd-unix',
  http: 'http',
  data: 'data',
  flush_interval: 'flush-interval',
  recv_buffer: 'recv-buffer',
  max_series: 'max-series',
  console: 'console',
  scrape: 'scrape',
  scrape_interval: 'scrape-interval',
  scrape_timeout: 'scrape-timeout',
};

/**
 * Reads the YAML config file into flag values (lowest precedence: env vars and flags override it).
 * Anything wrong is a ConfigError naming the file, the line and the field.
 */
export function readConfigFile(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`config ${path}: cannot read: ${(err as Error).message}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const at = (node: Node | null | undefined) => (node?.range ? lines.linePos(node.range[0]).line : 1);
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = e?.linePos?.[0]?.line ?? 1;
    throw new ConfigError(`config ${path}:${line}: not valid YAML: ${e?.message.split('\n')[0]}`);
  }
  const out: Record<string, string> = {};
  if (doc.contents === null) return out;
  if (!isMap(doc.contents))
    throw new ConfigError(`config ${path}:${at(doc.contents as Node)}: the file must be a mapping of keys (statsd:, http:, …)`);
  for (const pair of doc.contents.items) {
    const keyNode = pair.key as Node;
    const key = isScalar(keyNode) ? String(keyNode.value) : '';
    const line = at(keyNode);
    const flag = KEYS[key];
    if (!flag) throw new ConfigError(`config ${path}:${line}: unknown field "${key}"; known: ${Object.keys(KEYS).join(', ')}`);
    const v = pair.value as Node | null;
    if (key === 'scrape') {
      if (!isSeq(v)) throw new ConfigError(`config ${path}:${line}: field "scrape" must be a list of URLs`);
      const urls: string[] = [];
      for (const item of v.items as Node[]) {
        if (!isScalar(item) || typeof item.value !== 'string')
          throw new ConfigError(`config ${path}:${at(item)}: field "scrape" items must be URLs`);
        urls.push(item.value);
      }
      out[flag] = urls.join(',');
      continue;
    }
    if (!isScalar(v) || (typeof v.value !== 'string' && typeof v.value !== 'number')) {
      throw new ConfigError(`config ${path}:${line}: field "${key}" must be a string or a number`);
    }
    out[flag] = String(v.value);
  }
  return out;
}
