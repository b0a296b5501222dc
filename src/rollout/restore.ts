import { summarize } from '../gates/measure.js'
import type { Measurement, MeasurementRecord } from '../gates/types.js'

/** The event types that record where a stage is; all a later run needs to go on from the log. */
export const STAGE_EVENT_TYPES = ['stage-started', 'stage-finished', 'stage-delay', 'bake-started', 'gate-measured', 'gates-passed', 'rollout-promoted'] as const

export interface StageProgress {
  readonly stageStarted: boolean
  readonly stageFinishedAt: number | null
  readonly delayAnnounced: boolean
  readonly bake: { since: number; measurements: MeasurementRecord[]; passed: boolean; promoted: boolean }
}

interface LoggedEvent {
  readonly type: string
  readonly data: unknown
  readonly at: Date
}

const stageOf = (e: LoggedEvent): number | null => {
  const stage = (e.data as { stage?: unknown } | null)?.stage
  return typeof stage === 'number' ? stage : null
}

/**
 * Where the current stage is, from the rollout's log: announced, finished
 * (when), its bake (since when, its measurements, passed, promoted). A cron
 * tick or a resume goes on from there instead of starting the stage over.
 */
export function stageProgress(events: readonly LoggedEvent[], stage: number): StageProgress {
  const mine = events.filter((e) => stageOf(e) === stage)
  const last = (type: string) => mine.findLast((e) => e.type === type)
  const finished = last('stage-finished')
  const bakeStarted = last('bake-started')
  const since = bakeStarted?.at.getTime() ?? finished?.at.getTime() ?? 0
  const measurements = mine
    .filter((e) => e.type === 'gate-measured' && e.at.getTime() >= since)
    .map((e) => {
      const m = e.data as Measurement
      return { at: e.at.getTime(), verdict: m.verdict, reason: summarize({ gates: m.gates ?? [], verdict: m.verdict }) }
    })
  return {
    stageStarted: last('stage-started') !== undefined,
    stageFinishedAt: finished?.at.getTime() ?? null,
    delayAnnounced: last('stage-delay') !== undefined,
    bake: { since, measurements, passed: last('gates-passed') !== undefined, promoted: last('rollout-promoted') !== undefined },
  }
}
