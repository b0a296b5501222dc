import { evaluateBake, type BakeConfig } from '../gates/bake.js'
import type { MeasurementRecord, OnFail } from '../gates/types.js'
import type { StatusCounts } from './events.js'
import { emptyCounts } from './events.js'
import { failureRate, haltIsCertain, type StageTally } from './plan.js'
import type { HostStatus } from '../types.js'

/**
 * The decision core of a rollout: from what is recorded (the hosts' statuses,
 * the stage the rollout is in, when that stage finished) and the facts this
 * process just observed (which hosts it is working on, whether it was told to
 * stop, whether the store gave up), the one next thing to do. Pure: no SSH,
 * no store, no clock, no terminal; the driver (run.ts) carries each action
 * out, records it, and asks again. `start`, `resume` and `abort` all drive
 * the same function, so a rollout goes on the same way whoever picks it up.
 */

export interface HostView {
  readonly name: string
  readonly stage: number
  readonly status: HostStatus
}

/** The health gates of the current stage's bake (null: no gates and no bake, promote at once). */
export interface GatesView {
  readonly bake: BakeConfig
  /** Metrics plus checks. */
  readonly gateCount: number
  readonly onFail: OnFail
  /** When this stage's bake began: the stage's end, or a resume (which bakes again from zero). */
  readonly since: number
  /** This bake's measurements, oldest first. */
  readonly measurements: readonly MeasurementRecord[]
  /** The bake's verdict was recorded. */
  readonly passed: boolean
  /** A person ended the bake as passed (`fleet rollout promote`). */
  readonly promoted: boolean
}

export interface RolloutView {
  /** Cumulative percentages; the hosts carry their stage index. */
  readonly stages: readonly number[]
  readonly failureThreshold: number
  readonly concurrency: number
  readonly stageDelayMs: number
  /** In canary order. */
  readonly hosts: readonly HostView[]
  /** The stage the rollout is in. */
  readonly stage: number
  /** The stage was announced (its hosts may start). */
  readonly stageStarted: boolean
  /** When the current stage finished (ms since the epoch), null while it runs. */
  readonly stageFinishedAt: number | null
  readonly gates: GatesView | null
  /** Failed hosts the whole rollout may have (all stages and rings); one more halts it. null: no budget. */
  readonly failureBudget?: number | null
}

export interface Facts {
  /** Hosts this process is updating or settling right now. */
  readonly inFlight: ReadonlySet<string>
  /** The subset of inFlight being settled after a crash: the stages wait for them. */
  readonly settling: ReadonlySet<string>
  /** Told to stop (signal, output gone): no new host starts. */
  readonly stopped: boolean
  /** A person asked for a pause (why): no new host starts; once none is in flight, the rollout pauses. */
  readonly pause: string | null
  /** The store stayed unreachable: no new host starts, the rollout is left resumable. */
  readonly storeGaveUp: boolean
  /** Another process took the lease over: this run only lets its work in flight end, then stops. */
  readonly lost?: boolean
  /** A host's work failed in a way that is a bug, not a host outcome. */
  readonly broken: boolean
  /** Hosts that may not start now: outside their deploy window. */
  readonly closed?: ReadonlySet<string>
  /** When the first of the closed hosts may start (null: no window ever opens for them). */
  readonly opensAt?: number | null
  /** Hosts held (`fleet hosts hold`) since the rollout began: never touched, recorded `held`. */
  readonly held?: ReadonlySet<string>
}

export type Decision =
  /** A host left `updating` by a run that died: find out what it really is. */
  | { readonly kind: 'settle'; readonly host: string }
  | { readonly kind: 'start-host'; readonly host: string }
  /** A pending host that was held meanwhile: recorded `held` (final, finished for its stage, in no failure rate), never touched. */
  | { readonly kind: 'skip-held'; readonly host: string }
  /** Nothing to start: wait for a host in flight to finish. */
  | { readonly kind: 'wait-hosts' }
  | { readonly kind: 'start-stage'; readonly stage: number }
  | { readonly kind: 'finish-stage'; readonly stage: number; readonly counts: StatusCounts; readonly failureRate: number; readonly halted: boolean }
  /** The stage delay or the next gate measurement: go on at `until`, or earlier if stopped. */
  | { readonly kind: 'wait-until'; readonly until: number; readonly for: 'stage-delay' | 'measurement' | 'window' }
  /** Take one measurement of every gate now. */
  | { readonly kind: 'measure'; readonly stage: number; readonly bakeEndsAt: number }
  | { readonly kind: 'gates-passed'; readonly stage: number }
  /** The release is unhealthy: move the hosts back (`revert`) or stop where it is (`halt`); the rollout ends halted. */
  | { readonly kind: 'gates-failed'; readonly stage: number; readonly reason: string; readonly onFail: OnFail }
  /** Inconclusive or unreachable gates: wait for a person or for data; nothing is promoted or rolled back. */
  | { readonly kind: 'pause'; readonly stage: number; readonly reason: string }
  | { readonly kind: 'finish'; readonly state: 'completed' | 'halted' | 'interrupted'; readonly why?: string }
  /** The store gave up or a host's work broke: leave the rollout as recorded and report. */
  | { readonly kind: 'give-up' }

export function stageCounts(view: RolloutView, stage: number): StatusCounts {
  const counts = emptyCounts()
  for (const host of view.hosts) if (host.stage === stage) counts[host.status]++
  return counts
}

export function stageTally(view: RolloutView, stage: number): StageTally {
  const counts = stageCounts(view, stage)
  const size = view.hosts.filter((h) => h.stage === stage).length
  // Held hosts, like skipped ones, are left out of the rate: they were never tried.
  return { size, failures: counts.failed + counts.rolled_back + counts.rollback_failed, skipped: counts.skipped + counts.held }
}

const nonEmptyAfter = (view: RolloutView, stage: number): number | null => {
  for (let s = stage + 1; s < view.stages.length; s++) if (view.hosts.some((h) => h.stage === s)) return s
  return null
}

/** Why the failure budget halts the rollout, or null while it holds: more failed hosts than it allows, all stages together. */
function budgetSpent(view: RolloutView): string | null {
  if (view.failureBudget === null || view.failureBudget === undefined) return null
  const failed = view.hosts.filter((h) => h.status === 'failed' || h.status === 'rolled_back' || h.status === 'rollback_failed').length
  return failed > view.failureBudget ? `failure budget exceeded: ${failed} hosts failed across the rollout, the budget is ${view.failureBudget}` : null
}

export function decide(view: RolloutView, facts: Facts, now: number): Decision {
  const full = facts.inFlight.size >= view.concurrency

  // The rollout is someone else's: nothing starts here any more, not even a settle (the new owner settles).
  if (facts.lost) return facts.inFlight.size > 0 ? { kind: 'wait-hosts' } : { kind: 'finish', state: 'interrupted' }
  // Nothing new starts, not even a settle, while nothing could be recorded.
  if (facts.storeGaveUp || facts.broken) return facts.inFlight.size > 0 ? { kind: 'wait-hosts' } : { kind: 'give-up' }

  // Hosts a dead run left `updating` come first: nothing else is decided on a guess.
  const unsettled = view.hosts.find((h) => h.status === 'updating' && !facts.inFlight.has(h.name))
  if (unsettled) return full ? { kind: 'wait-hosts' } : { kind: 'settle', host: unsettled.name }
  if (facts.settling.size > 0) return { kind: 'wait-hosts' }

  if (facts.pause !== null && !facts.stopped) return facts.inFlight.size > 0 ? { kind: 'wait-hosts' } : { kind: 'pause', stage: view.stage, reason: facts.pause }

  const { stage } = view
  const here = view.hosts.filter((h) => h.stage === stage)
  if (here.length === 0 || stage >= view.stages.length) {
    // An empty stage (tiny fleets) is passed over silently.
    const next = nonEmptyAfter(view, stage)
    if (next === null) return { kind: 'finish', state: facts.stopped ? 'interrupted' : 'completed' }
    return facts.stopped ? { kind: 'finish', state: 'interrupted' } : { kind: 'start-stage', stage: next }
  }
  if (!view.stageStarted && view.stageFinishedAt === null)
    return facts.stopped ? { kind: 'finish', state: 'interrupted' } : { kind: 'start-stage', stage }

  const overBudget = budgetSpent(view)
  if (view.stageFinishedAt === null) {
    const halting = haltIsCertain(stageTally(view, stage), view.failureThreshold) || overBudget !== null
    const waiting = (h: HostView) => h.status === 'pending' && !facts.inFlight.has(h.name)
    if (!facts.stopped) {
      const held = here.find((h) => waiting(h) && facts.held?.has(h.name))
      if (held) return { kind: 'skip-held', host: held.name }
    }
    if (!facts.stopped && !halting && !full) {
      const next = here.find((h) => waiting(h) && !facts.closed?.has(h.name))
      if (next) return { kind: 'start-host', host: next.name }
    }
    if (facts.inFlight.size > 0) return { kind: 'wait-hosts' }
    // Only the deploy window keeps the rest back: wait for it (a tick leaves it to the next one).
    if (!facts.stopped && !halting && here.some((h) => waiting(h) && facts.closed?.has(h.name)))
      return facts.opensAt != null ? { kind: 'wait-until', until: facts.opensAt, for: 'window' } : { kind: 'finish', state: 'halted', why: 'no deploy window ever opens for the hosts left' }
    const rate = failureRate(stageTally(view, stage))
    // The operator's stop wins: hosts a kill rolled back must not read as a halt.
    const halted = !facts.stopped && (rate > view.failureThreshold || overBudget !== null)
    return { kind: 'finish-stage', stage, counts: stageCounts(view, stage), failureRate: rate, halted }
  }

  if (facts.stopped) return { kind: 'finish', state: 'interrupted' }
  const gates = view.gates
  const bake = gates && !gates.passed && !gates.promoted ? evaluateBake({ config: gates.bake, gateCount: gates.gateCount, stageFinishedAt: gates.since, measurements: gates.measurements }) : null
  // Failed gates come before the stage's failure rate: a revert a crash cut short (the hosts it moved back count as failures) is finished.
  if (gates && bake?.kind === 'fail') return { kind: 'gates-failed', stage, reason: bake.reason, onFail: gates.onFail }
  if (overBudget !== null) return { kind: 'finish', state: 'halted', why: overBudget }
  if (failureRate(stageTally(view, stage)) > view.failureThreshold) return { kind: 'finish', state: 'halted' }
  // A stage a stop ended early still has hosts to do: it runs again (resume, promote, a tick).
  if (here.some((h) => h.status === 'pending')) return { kind: 'start-stage', stage }
  if (gates && !gates.passed) {
    if (gates.promoted || !bake) return { kind: 'gates-passed', stage }
    switch (bake.kind) {
      case 'measure-at':
        return now >= bake.at ? { kind: 'measure', stage, bakeEndsAt: bake.bakeEndsAt } : { kind: 'wait-until', until: bake.at, for: 'measurement' }
      case 'pass':
        return { kind: 'gates-passed', stage }
      case 'fail':
        return { kind: 'gates-failed', stage, reason: bake.reason, onFail: gates.onFail }
      case 'pause':
        return { kind: 'pause', stage, reason: bake.reason }
    }
  }
  const next = nonEmptyAfter(view, stage)
  if (next === null) return { kind: 'finish', state: 'completed' }
  const until = view.stageFinishedAt + view.stageDelayMs
  if (now < until) return { kind: 'wait-until', until, for: 'stage-delay' }
  return { kind: 'start-stage', stage: next }
}
