import type { ErrorCode } from '../errors.js';
import { EkgError } from '../errors.js';
import { warn } from '../log.js';
import { bad, ms } from '../options.js';
import type { CheckResult, Stats, Verdict, Vital } from '../types.js';
import { type Outcome, readVerdict, type StatsLimits, sanitizeStats, settle } from './runner.js';

const RESERVED = new Set(['runtime', 'http', 'ekg']);
const NAME = /^[a-zA-Z][a-zA-Z0-9_]{0,63}$/;

interface VitalState {
  vital: Vital;
  /** the vital's name and methods, read once at registration: a getter on the vital never runs again */
  name: string;
  fns: Pick<Vital, 'init' | 'stats' | 'check' | 'close'>;
  fatal: boolean;
  timeout: number;
  initError: string | undefined;
  /** last check verdict, for /metrics */
  lastCheck: boolean | undefined;
}

/**
 * An instance's custom vitals: registration (names and methods checked once), and each call —
 * init, stats, check, close — under the runner's guard and timeout, with the failures counted.
 */
export class VitalSet {
  private readonly list: VitalState[] = [];
  /** Failed vital calls since start, by cause: the counters of the vital budgets (docs/limits.md). */
  readonly failures = { threw: 0, timeout: 0, badStats: 0, badVerdict: 0 };
  /** Vitals a probe must ask, recomputed only when the set changes (this is on every probe). */
  private checkableCache: VitalState[] | undefined;

  /** `changed` is called when a verdict may have changed outside a check (an init failing). */
  constructor(
    private readonly defaults: { timeout: number; limits: StatsLimits },
    private readonly changed: () => void,
  ) {}

  /** Registers a vital (throws EKG_ERR_BAD_OPTION / EKG_ERR_DUPLICATE_VITAL); returns it for init(). */
  add(v: Vital): VitalState {
    if (v === null || typeof v !== 'object') throw bad('vitals[]', 'an object with a name', v);
    if (typeof v.name !== 'string' || !NAME.test(v.name))
      throw bad('vital.name', 'letters, digits and _ starting with a letter (at most 64)', v.name);
    if (RESERVED.has(v.name)) throw bad('vital.name', `not one of the built-in names (${[...RESERVED].join(', ')})`, v.name);
    if (this.list.some((s) => s.name === v.name))
      throw new EkgError('EKG_ERR_DUPLICATE_VITAL', `a vital named "${v.name}" is already registered`);
    const fns: VitalState['fns'] = {};
    for (const m of ['init', 'stats', 'check', 'close'] as const) {
      const fn = v[m];
      if (fn !== undefined && typeof fn !== 'function') throw bad(`vital ${v.name}.${m}`, 'a function', fn);
      if (fn) fns[m] = fn as never;
    }
    const st: VitalState = {
      vital: v,
      name: v.name,
      fns,
      fatal: v.fatal === true,
      timeout: ms(`vital ${v.name}.timeout`, v.timeout, this.defaults.timeout, 1),
      initError: undefined,
      lastCheck: undefined,
    };
    this.list.push(st);
    this.checkableCache = undefined;
    return st;
  }

  private countFailure(code: ErrorCode): void {
    const f = this.failures;
    if (code === 'EKG_ERR_VITAL_TIMEOUT') f.timeout++;
    else if (code === 'EKG_ERR_VITAL_BAD_STATS') f.badStats++;
    else if (code === 'EKG_ERR_VITAL_BAD_VERDICT') f.badVerdict++;
    else f.threw++;
  }

  async init(st: VitalState): Promise<void> {
    const init = st.fns.init;
    if (!init) return;
    const out = await settle(`vital "${st.name}" init()`, () => init.call(st.vital), st.timeout);
    if (!out.ok) {
      st.initError = out.error;
      this.changed();
      this.checkableCache = undefined;
      this.countFailure(out.code);
      warn('EKG_ERR_VITAL_INIT', out.error);
    }
  }

  async initAll(): Promise<void> {
    await Promise.all(this.list.map((st) => this.init(st)));
  }

  /** Each vital's stats for a window, sanitized to the limits; a failure is an `error` entry. */
  async collect(): Promise<Array<{ name: string; stats?: Stats; error?: string }>> {
    return Promise.all(
      this.list.map(async (st) => {
        const name = st.name;
        if (st.initError) return { name, error: st.initError };
        const statsFn = st.fns.stats;
        if (!statsFn) return { name };
        const out = await settle(`vital "${name}" stats()`, () => statsFn.call(st.vital), st.timeout);
        const clean = out.ok ? sanitizeStats(out.value, this.defaults.limits) : out;
        if (!clean.ok) {
          this.countFailure(clean.code);
          warn(clean.code, clean.error, `stats:${name}`);
          return { name, error: clean.error };
        }
        return { name, stats: clean.value };
      }),
    );
  }

  /** The last verdict of each vital whose check has run. */
  lastChecks(): Record<string, boolean> {
    const checks: Record<string, boolean> = {};
    for (const st of this.list) if (st.lastCheck !== undefined) checks[st.name] = st.lastCheck;
    return checks;
  }

  /** True when a probe must ask a vital (one has a check, or failed its init). */
  hasChecks(): boolean {
    this.checkableCache ??= this.list.filter((st) => st.initError || st.fns.check);
    return this.checkableCache.length > 0;
  }

  /** Runs every check concurrently, each under its timeout; never rejects on a vital's fault. */
  async check(): Promise<{ ok: boolean; checks: Record<string, CheckResult> }> {
    this.hasChecks();
    const list = this.checkableCache as VitalState[];
    const checks: Record<string, CheckResult> = {};
    const results = await Promise.all(list.map((st) => this.checkOne(st)));
    let ok = true;
    list.forEach((st, i) => {
      const r = results[i] as CheckResult;
      checks[st.name] = r;
      st.lastCheck = r.ok;
      if (!r.ok) ok = false;
    });
    return { ok, checks };
  }

  private async checkOne(st: VitalState): Promise<CheckResult> {
    if (st.initError) return { ok: false, detail: st.initError };
    const fn = st.fns.check as NonNullable<Vital['check']>;
    const out: Outcome<Verdict | boolean> = await settle(`vital "${st.name}" check()`, () => fn.call(st.vital), st.timeout);
    if (!out.ok) {
      this.countFailure(out.code);
      warn(out.code, out.error, `check:${st.name}`);
      return { ok: false, detail: out.error };
    }
    const v = readVerdict(`vital "${st.name}" check()`, out.value);
    if (v.bad !== undefined) {
      this.countFailure('EKG_ERR_VITAL_BAD_VERDICT');
      warn('EKG_ERR_VITAL_BAD_VERDICT', v.bad, `verdict:${st.name}`);
    }
    return v.detail === undefined ? { ok: v.ok } : { ok: v.ok, detail: v.detail };
  }

  /** The first vital marked `fatal` whose last check failed, if any. */
  fatalFailure(): string | undefined {
    for (const st of this.list) if (st.fatal && st.lastCheck === false) return st.name;
    return undefined;
  }

  /** Runs every vital's close() under its timeout. */
  async close(): Promise<void> {
    await Promise.all(
      this.list.map(async (st) => {
        const fn = st.fns.close;
        if (!fn) return;
        const out = await settle(`vital "${st.name}" close()`, () => fn.call(st.vital), st.timeout);
        if (!out.ok) {
          this.countFailure(out.code);
          warn(out.code, out.error);
        }
      }),
    );
  }
}
