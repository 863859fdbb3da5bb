export { compress as snappyCompress } from 'snappyjs';
export { Agent, type SelfStats } from './agent.js';
export { Aggregator, type Flushed, type FlushResult } from './aggregate/aggregator.js';
export { Sketch } from './aggregate/sketch.js';
export { type AgentConfig, ConfigError, loadConfig } from './config.js';
export { type ExporterStatus, QueuedExporter } from './export/exporter.js';
export { GraphiteExporter, graphiteLines } from './export/graphite.js';
export { HerokuExporter } from './export/heroku.js';
export { InfluxExporter, influxLines } from './export/influx.js';
export { MackerelExporter } from './export/mackerel.js';
export { OtlpExporter, otlpJson, otlpModel, otlpProto, otlpRequest } from './export/otlp.js';
export { encodeWriteRequest, type TimeSeries } from './export/protobuf.js';
export { RemoteWriteExporter, toTimeSeries } from './export/remote-write.js';
export { LISTEN_FORMS, type ListenAddress, parseListen, STATSD_FORMS } from './ingest/listeners.js';
export { PushError, parsePush } from './ingest/push.js';
export { type BadReason, parseLine, parsePacket, type Sample } from './ingest/statsd-parse.js';
export { ConsoleSink } from './sinks/console.js';
export type { Sink } from './sinks/sink.js';
export { PromStore } from './store/prom.js';
export {
  AGGS,
  type Agg,
  type Instance,
  type Query,
  QueryError,
  type QueryResult,
  type SeriesInfo,
  type StoreReader,
} from './store/reader.js';
export { DEFAULT_RETENTION, SqliteStore, StoreError, type StoreStatus } from './store/sqlite.js';
