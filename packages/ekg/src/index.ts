export {
  catalogue,
  convert,
  defOf,
  type HerokuSpelling,
  herokuOf,
  INTERVAL_GAUGE,
  type Kind as MetricKind,
  type MetricDef,
  type OtelInstrument,
  type OtelSpelling,
  type OtherUnit,
  otelInstruments,
  otelOf,
  otelText,
  type PromFamily,
  type PromType,
  prometheusFamilies,
  statsdOnly,
  type Unit,
  ucumOf,
  unitOf,
  unitScale,
} from './catalogue.js';
export { DURATION_FORMS, parseDuration, parseSize, parseSwitch, SIZE_FORMS, SWITCH_FORMS } from './duration.js';
export { createEkg, Ekg, type Health, VERSION } from './ekg.js';
export { herokuInterval } from './env.js';
export { codes, EkgError, type ErrorCode } from './errors.js';
export { escapeLabel, metricName } from './formats/prometheus.js';
export { bearerCheck } from './http/contract.js';
export { type Reply, Router } from './http/router.js';
export type { ListenOptions } from './http/server.js';
export type { EkgOptions } from './options.js';
export { registered } from './registry.js';
export type { CheckResult, Lifecycle, Stats, StatValue, Verdict, Vital, WindowInfo } from './types.js';
export type { Snapshot } from './window/snapshot.js';
