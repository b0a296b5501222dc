import type { EventType } from '../events.js'
import type { HostStatus, RolloutState, StepName } from '../types.js'
import type { GateResult, Verdict } from '../gates/types.js'
import type { Phase } from './host-update.js'

export type StatusCounts = Record<HostStatus, number>

export const emptyCounts = (): StatusCounts => ({
  pending: 0,
  updating: 0,
  success: 0,
  failed: 0,
  rolled_back: 0,
  rollback_failed: 0,
  skipped: 0,
  held: 0,
})

export function countStatuses(statuses: Iterable<HostStatus>): StatusCounts {
  const counts = emptyCounts()
  for (const status of statuses) counts[status]++
  return counts
}

/**
 * What the engine tells the world. Renderers (tty, plain, JSON) and the store
 * subscribe; the engine knows nothing about terminals. Field names are a
 * documented, stable contract of `--json`.
 */
export type RolloutEvent =
  | {
      type: 'rollout-started'
      rolloutId: string
      ref: string
      sha: string
      stages: number[]
      stageSizes: number[]
      hosts: number
      concurrency: number
      failureThreshold: number
      seed: string
      /** With rollout.rings: each ring's name (null: the hosts of no listed ring) and how many stages it has. */
      rings?: { name: string | null; stages: number }[]
      /** Held hosts, in no stage, with why. */
      held?: { name: string; reason: string }[]
      /** rollout.failureBudget in hosts. */
      failureBudget?: number | null
      at: string
    }
  | { type: 'stage-started'; rolloutId: string; stage: number; percent: number; hosts: string[]; ring?: string | null; at: string }
  | { type: 'host-started'; rolloutId: string; stage: number; host: string; address: string; at: string }
  /** `note`: what the operator should know about this step (a release expected kept, prepared again). */
  | { type: 'host-step'; rolloutId: string; stage: number; host: string; step: StepName; phase: Phase; note?: string; at: string }
  /** Release layout: a later stage's host prepared the target ahead (its own update then only activates). */
  | { type: 'host-prepared'; rolloutId: string; stage: number; host: string; ok: boolean; error: string | null; durationMs: number; at: string }
  | {
      type: 'host-finished'
      rolloutId: string
      stage: number
      host: string
      status: HostStatus
      previousVersion: string | null
      newVersion: string | null
      failedStep: StepName | null
      error: string | null
      durationMs: number
      at: string
    }
  | {
      type: 'stage-finished'
      rolloutId: string
      stage: number
      percent: number
      counts: StatusCounts
      failureRate: number
      halted: boolean
      at: string
    }
  | { type: 'stage-delay'; rolloutId: string; stage: number; delayMs: number; at: string }
    /** reason: first stop (`signal`) or the second, killing one (`abort`); cause: SIGINT, SIGTERM, SIGHUP, output closed, … */
  | { type: 'rollout-stopping'; rolloutId: string; reason: 'signal' | 'abort'; cause?: string; at: string }
  /** One measurement of every gate during a stage's bake. */
  | { type: 'gate-measured'; rolloutId: string; stage: number; gates: GateResult[]; verdict: Verdict; at: string }
  | { type: 'gates-passed'; rolloutId: string; stage: number; at: string }
  | { type: 'gates-failed'; rolloutId: string; stage: number; reason: string; onFail: 'revert' | 'halt'; at: string }
  /** A person ended the current bake as passed (`fleet rollout promote`), asked of a running process. */
  | { type: 'rollout-promoted'; rolloutId: string; stage: number; actor: string; reason: string; skipBake: boolean; at: string }
  /** A pause or promote request was consumed without effect: who sent it, and why it did nothing. */
  | { type: 'request-not-applied'; rolloutId: string; request: string; kind: 'pause' | 'promote'; actor: string; reason: string | null; why: string; at: string }
  /** A command took the rollout over (resume, promote, abort, a tick after a stale holder): the new owner at a new lease epoch. */
  | { type: 'rollout-taken-over'; rolloutId: string; owner: string; epoch: number; from: string | null; by: string; at: string }
  /** A person continued a paused, interrupted or stopped rollout (`fleet rollout resume`). */
  | { type: 'rollout-resumed'; rolloutId: string; stage: number; from: string; actor: string; reason: string | null; changed?: string[]; at: string }
  /** A person ended it (`fleet rollout abort`), moving updated hosts back with `rollback`. */
  | { type: 'rollout-aborting'; rolloutId: string; rollback: boolean; actor: string; reason: string | null; at: string }
  /** This process lost the lease to another holder and stopped: told to this process's listeners only (it can no longer write). */
  | { type: 'rollout-lost'; rolloutId: string; holder: string | null; reason: string; at: string }
  /** The rollout waits for a person or for gate data (exit 7); reason says which. */
  | { type: 'rollout-paused'; rolloutId: string; stage: number; reason: string; actor?: string; byHand?: boolean; at: string }
  /** A stage's bake began: measurements every interval until it ends. */
  | { type: 'bake-started'; rolloutId: string; stage: number; bakeMs: number; intervalMs: number; endsAt: string; at: string }
  /** Writes to the database fail and are retried until retryUntil; no new host starts meanwhile. Not stored (the store is down). */
  | { type: 'store-unavailable'; rolloutId: string; error: string; retryUntil: string; at: string }
  | { type: 'store-recovered'; rolloutId: string; outageMs: number; at: string }
  /** A rollout started while a cooldown was in force: who ignored it, and why. */
  | { type: 'cooldown-ignored'; rolloutId: string; until: string; cause: 'halted' | 'reverted'; causedBy: string | null; actor: string; reason: string; at: string }
  /** A rollout started outside every deploy window (`--ignore-window --reason`): who, why, when the next opened. */
  | { type: 'window-ignored'; rolloutId: string; opensAt: string | null; actor: string; reason: string; at: string }
  /** `fleet rollback <host>`: a person moves one host; rolloutId is the latest rollout that included it (null: none did). */
  | { type: 'host-rollback-started'; rolloutId: string | null; host: string; to: string; actor: string; reason: string | null; at: string }
  | { type: 'host-rollback-step'; rolloutId: string | null; host: string; step: StepName; phase: Phase; note?: string; at: string }
  | {
      type: 'host-rollback-finished'
      rolloutId: string | null
      host: string
      to: string
      already: boolean
      status: HostStatus
      previousVersion: string | null
      newVersion: string | null
      failedStep: StepName | null
      error: string | null
      actor: string
      at: string
    }
  | {
      type: 'rollout-finished'
      rolloutId: string
      state: RolloutState
      exitCode: number
      counts: StatusCounts
      durationMs: number
      error: string | null
      at: string
    }

export type RolloutListener = (event: RolloutEvent) => void

/** Compile-time: every type the engine emits is in the catalogue (src/events.ts). */
type Catalogued<T extends EventType> = T
export type EngineEventType = Catalogued<RolloutEvent['type']>
