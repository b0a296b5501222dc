/**
 * Health gates (design: "Health gates"): the validated config, one gate's result, one measurement
 * (every gate at once), and what bake.ts needs to know of past measurements.
 */

/**
 * pass < inconclusive < fail < error: the worst of all gates counts for a measurement. `error`
 * ranks above `fail` because "while gates are in error nothing is promoted and nothing rolled
 * back": a measurement we could not fully take is never acted on, not even to revert.
 */
export type Verdict = 'pass' | 'inconclusive' | 'fail' | 'error'
export const VERDICT_ORDER: readonly Verdict[] = ['pass', 'inconclusive', 'fail', 'error']

export type OnFail = 'revert' | 'halt'

export interface MetricGate {
  readonly name: string
  /** PromQL; {sha} {stage} {hosts} only inside quoted strings (checked by the config). */
  readonly query: string
  readonly min: number | null
  readonly max: number | null
}

export interface CheckGate {
  readonly name: string
  /** A shell command run where fleet runs; {sha} {stage} {hosts} are shell-quoted. */
  readonly command: string
}

/** `gates.*`, durations in milliseconds (config key `bake` → `bakeMs`, as elsewhere in FleetConfig). */
export interface GatesConfig {
  readonly bakeMs: number
  readonly intervalMs: number
  /** fingerprint: of the real URL, in stored settings only (where the URL's password is masked). */
  readonly prometheus: { readonly url: string | null; readonly timeoutMs: number; readonly fingerprint?: string }
  readonly metrics: readonly MetricGate[]
  readonly checks: readonly CheckGate[]
  readonly failureLimit: number
  readonly inconclusiveLimit: number
  readonly errorTimeoutMs: number
  readonly onFail: OnFail
}

/** What the placeholders stand for in one measurement. */
export interface GateContext {
  /** The target commit. */
  readonly sha: string
  /** 0-based index of the stage being baked. */
  readonly stage: number
  /** Names of the hosts this rollout moved so far (this stage and the ones before). */
  readonly hosts: readonly string[]
}

/** One gate in one measurement: the `gates` items of the `gate-measured` event. */
export interface GateResult {
  readonly name: string
  readonly kind: 'metric' | 'check'
  /** The metric's value; a check's exit code; null when there is none (no data, timeout, unreachable). */
  readonly value: number | null
  /** `+Inf` or `-Inf`: a value JSON cannot carry (value is null then). */
  readonly valueText?: string
  readonly min: number | null
  readonly max: number | null
  readonly verdict: Verdict
  /** One line, sanitized: why this verdict ("0.21 > max 0.01", "no series", "connection refused"). */
  readonly reason: string
  /** Checks only: the tail of the command's output (last ~2 KiB, stdout and stderr), sanitized. */
  readonly output?: string
}

export interface Measurement {
  readonly gates: readonly GateResult[]
  /** The worst of all gates (VERDICT_ORDER); `pass` when no gate is configured. */
  readonly verdict: Verdict
}

/** A past measurement as bake.ts sees it. */
export interface MeasurementRecord {
  /** When it was taken (ms, the driver's clock: the start of the measurement). */
  readonly at: number
  readonly verdict: Verdict
  /** Short summary for the fail/pause reason (e.g. the failing gates' reasons). */
  readonly reason?: string
}

export const worstVerdict = (verdicts: Iterable<Verdict>): Verdict => {
  let worst = 0
  for (const v of verdicts) worst = Math.max(worst, VERDICT_ORDER.indexOf(v))
  return VERDICT_ORDER[worst]!
}

/** Gates bake only when something is measured or a bake is asked for; otherwise a stage is promoted at once. */
export const gatesActive = (g: GatesConfig | null | undefined): g is GatesConfig => !!g && (g.bakeMs > 0 || g.metrics.length + g.checks.length > 0)
