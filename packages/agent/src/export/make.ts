import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import type { QueuedExporter } from './exporter.js';
import { GraphiteExporter } from './graphite.js';
import { HerokuExporter } from './heroku.js';
import { InfluxExporter } from './influx.js';
import { MackerelExporter } from './mackerel.js';
import { OtlpExporter } from './otlp.js';
import { RemoteWriteExporter } from './remote-write.js';
import type { ExporterSpec } from './spec.js';

/** A secret from the env var it names or the file it names (first line); never from the config itself. */
export function secret(envName: string | undefined, file: string | undefined, what: string): string {
  if (file) {
    try {
      const v = readFileSync(file, 'utf8').split(/\r?\n/)[0]?.trim();
      if (v) return v;
    } catch (err) {
      throw new ConfigError(`${what}: cannot read ${file}: ${(err as Error).message}`, 'EKG_AGENT_ERR_SECRET');
    }
    throw new ConfigError(`${what}: ${file} is empty`, 'EKG_AGENT_ERR_SECRET');
  }
  const name = envName as string;
  const v = process.env[name]?.trim();
  if (!v) throw new ConfigError(`${what}: the environment variable ${name} is not set`, 'EKG_AGENT_ERR_SECRET');
  return v;
}

/** The exporter a spec describes, spooling under `<spoolRoot>/<type>-<target>`. */
export function makeExporter(spec: ExporterSpec & { spool_max_bytes?: number }, spoolRoot: string): QueuedExporter {
  const target =
    spec.type === 'mackerel' ? (spec.service ?? spec.host_id ?? '') : spec.type === 'graphite' ? spec.address : new URL(spec.url).host;
  const queue = { spoolDir: join(spoolRoot, `${spec.type}-${target}`.replace(/[^a-zA-Z0-9._-]/g, '_')), maxBytes: spec.spool_max_bytes };
  switch (spec.type) {
    case 'remote_write':
      return new RemoteWriteExporter({ url: spec.url, headers: spec.headers, ...queue });
    case 'heroku':
      return new HerokuExporter({ url: spec.url, period: spec.period, ...queue });
    case 'otlp':
      return new OtlpExporter({ url: spec.url, headers: spec.headers, encoding: spec.encoding, compression: spec.compression, ...queue });
    case 'graphite':
      return new GraphiteExporter({ address: spec.address, prefix: spec.prefix, ...queue });
    case 'influx':
      return new InfluxExporter({
        url: spec.url,
        token: spec.token_env ? secret(spec.token_env, undefined, 'influx token') : undefined,
        ...queue,
      });
    case 'mackerel':
      return new MackerelExporter({
        apiKey: secret(spec.api_key_file ? undefined : (spec.api_key_env ?? 'MACKEREL_APIKEY'), spec.api_key_file, 'mackerel api key'),
        service: spec.service,
        hostId: spec.host_id,
        url: spec.url,
        graphDefs: spec.graph_defs,
        ...queue,
      });
  }
}
