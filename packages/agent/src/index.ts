export { Agent, type SelfStats } from './agent.js';
export { Aggregator, type Flushed, type FlushResult } from './aggregate/aggregator.js';
export { Sketch } from './aggregate/sketch.js';
export { type AgentConfig, ConfigError, loadConfig } from './config.js';
export { PushError, parsePush } from './ingest/push.js';
export { type BadReason, parseLine, parsePacket, type Sample } from './ingest/statsd-parse.js';
export { ConsoleSink } from './sinks/console.js';
export type { Sink } from './sinks/sink.js';
