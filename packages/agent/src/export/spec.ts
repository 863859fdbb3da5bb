/** An exporter as the config describes it (YAML `exporters:`), checked; secrets are named, not held. */
export type ExporterSpec =
  | { type: 'remote_write'; url: string; headers?: Record<string, string> }
  | { type: 'heroku'; url: string; period?: number }
  | { type: 'otlp'; url: string; headers?: Record<string, string>; encoding?: 'protobuf' | 'json'; compression?: 'gzip' | 'none' }
  | { type: 'graphite'; address: string; prefix?: string }
  | { type: 'influx'; url: string; token_env?: string }
  | {
      type: 'mackerel';
      service?: string;
      host_id?: string;
      url?: string;
      api_key_env?: string;
      api_key_file?: string;
      graph_defs?: boolean;
    };

/** Fields each type takes (beyond `type`), which are required, and the values a field with a fixed set takes (the first is the default). */
export const EXPORTER_FIELDS: Record<ExporterSpec['type'], { fields: string[]; required: string[]; choices?: Record<string, string[]> }> = {
  remote_write: { fields: ['url', 'headers', 'spool_max_bytes'], required: ['url'] },
  heroku: { fields: ['url', 'period', 'spool_max_bytes'], required: ['url'] },
  otlp: {
    fields: ['url', 'headers', 'encoding', 'compression', 'spool_max_bytes'],
    required: ['url'],
    choices: { encoding: ['protobuf', 'json'], compression: ['gzip', 'none'] },
  },
  graphite: { fields: ['address', 'prefix', 'spool_max_bytes'], required: ['address'] },
  influx: { fields: ['url', 'token_env', 'spool_max_bytes'], required: ['url'] },
  mackerel: { fields: ['service', 'host_id', 'url', 'api_key_env', 'api_key_file', 'graph_defs', 'spool_max_bytes'], required: [] },
};
