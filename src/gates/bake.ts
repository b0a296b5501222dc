/**
 * The bake of one stage as a pure function of its facts: when the stage's last host finished and
 * the measurements taken since (times in ms on the driver's clock). It says what is due next;
 * it does no I/O and reads no clock, so the decision core can replay it and tests run in ms.
 *
 * Rules (design "Health gates", Timing and verdicts):
 * - The first measurement is due one `interval` after the stage finished, then one every
 *   `interval` after the previous one, the last one exactly when the bake ends
 *   (finished + max(bake, interval)).
 * - More than `failureLimit` failed measurements in the stage → fail.
 * - More than `inconclusiveLimit` inconclusive measurements in a row → pause. Only a conclusive
 *   measurement (pass or fail) breaks the row: errors in between neither count nor reset it.
 * - Errors for `errorTimeout` (from the first error of an unbroken run of errors) → pause. While
 *   in error the next measurement is due no later than that moment, so the pause is on time.
 * - The bake passes once it has lasted and the latest measurement passed: never while the last
 *   measurement is an error (no blind promotion), nor inconclusive or failed (one more measurement
 *   is taken; the limits above end a run that never gets better).
 * - No gate configured: nothing to measure; bake 0 passes at once, a longer bake is one (empty,
 *   passing) measurement when it ends.
 * `resume` of a paused rollout restarts the bake: pass the resume time as `stageFinishedAt` and
 * only the measurements taken since.
 */
import { formatDuration } from '../duration.js'
import type { GatesConfig, MeasurementRecord } from './types.js'

export type BakeConfig = Pick<GatesConfig, 'bakeMs' | 'intervalMs' | 'failureLimit' | 'inconclusiveLimit' | 'errorTimeoutMs'>

export interface BakeInput {
  readonly config: BakeConfig
  /** Number of metrics plus checks. */
  readonly gateCount: number
  /** When the stage's last host finished (or the rollout was resumed). */
  readonly stageFinishedAt: number
  /** This stage's measurements since stageFinishedAt, oldest first. */
  readonly measurements: readonly MeasurementRecord[]
}

export type BakeDecision =
  | { readonly kind: 'measure-at'; readonly at: number; readonly bakeEndsAt: number }
  | { readonly kind: 'pass' }
  | { readonly kind: 'fail'; readonly reason: string }
  | { readonly kind: 'pause'; readonly reason: string }

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`
const last = (m: MeasurementRecord): string => (m.reason ? `; last: ${m.reason}` : '')

export function evaluateBake({ config, gateCount, stageFinishedAt, measurements }: BakeInput): BakeDecision {
  if (gateCount === 0 && config.bakeMs === 0) return { kind: 'pass' }
  const interval = config.intervalMs
  const bakeEndsAt = stageFinishedAt + (gateCount === 0 ? config.bakeMs : Math.max(config.bakeMs, interval))
  const firstAt = gateCount === 0 ? bakeEndsAt : stageFinishedAt + interval

  let failures = 0
  let inconclusiveRow = 0
  let errorSince: number | null = null
  for (const m of measurements) {
    if (m.verdict === 'error') {
      errorSince ??= m.at
      if (m.at - errorSince >= config.errorTimeoutMs) {
        return { kind: 'pause', reason: `gates in error for ${formatDuration(m.at - errorSince)} (errorTimeout ${formatDuration(config.errorTimeoutMs)})${last(m)}` }
      }
      continue
    }
    errorSince = null
    if (m.verdict === 'inconclusive') {
      inconclusiveRow++
      if (inconclusiveRow > config.inconclusiveLimit) {
        return {
          kind: 'pause',
          reason: `${plural(inconclusiveRow, 'inconclusive measurement')} in a row (inconclusiveLimit ${config.inconclusiveLimit})${last(m)}`,
        }
      }
      continue
    }
    inconclusiveRow = 0
    if (m.verdict === 'fail') {
      failures++
      if (failures > config.failureLimit) {
        return { kind: 'fail', reason: `${plural(failures, 'failed measurement')} (failureLimit ${config.failureLimit})${last(m)}` }
      }
    }
  }

  const latest = measurements.at(-1)
  if (latest === undefined) return { kind: 'measure-at', at: firstAt, bakeEndsAt }
  if (latest.at >= bakeEndsAt && latest.verdict === 'pass') return { kind: 'pass' }
  let at = latest.at + interval
  if (latest.at < bakeEndsAt) at = Math.min(at, bakeEndsAt)
  if (errorSince !== null) at = Math.min(at, errorSince + config.errorTimeoutMs)
  return { kind: 'measure-at', at: Math.max(at, latest.at), bakeEndsAt }
}
