export {
  catalogue,
  defOf,
  type HerokuSpelling,
  herokuOf,
  type Kind as MetricKind,
  type MetricDef,
  type Unit,
  unitOf,
} from './catalogue.js';
export { bearerCheck } from './contract.js';
export { DURATION_FORMS, parseDuration, parseSize, parseSwitch, SIZE_FORMS, SWITCH_FORMS } from './duration.js';
export { createEkg, Ekg, type EkgOptions, type Health, VERSION } from './ekg.js';
export { type Reply, Router } from './endpoints.js';
export { herokuInterval } from './env.js';
export { codes, EkgError, type ErrorCode } from './errors.js';
export { escapeLabel, metricName } from './formats/prometheus.js';
export { registered } from './registry.js';
export type { ListenOptions } from './server.js';
export type { Snapshot } from './snapshot.js';
export type { CheckResult, Lifecycle, Stats, StatValue, Verdict, Vital, WindowInfo } from './types.js';
