import type { GateResult } from '../gates/types.js'
/**
 * The live view's reducer: rollout events in, what the view shows out (LiveState). No output
 * here; live-frame.ts draws a state, summary.ts tabulates it at the end.
 */
import type { RolloutEvent, StatusCounts } from '../rollout/events.js'
import { emptyCounts } from '../rollout/events.js'
import type { Phase } from '../rollout/host-update.js'
import type { HostStatus, StepName } from '../types.js'
import { sanitize } from '../text/sanitize.js'

type Finished = Extract<RolloutEvent, { type: 'rollout-finished' }>
type HostFinished = Extract<RolloutEvent, { type: 'host-finished' }>

export type FailureStatus = 'failed' | 'rolled_back' | 'rollback_failed'
export const isFailure = (status: HostStatus): status is FailureStatus =>
  status === 'failed' || status === 'rolled_back' || status === 'rollback_failed'

/** `stopped`: the stage ended with hosts never started (Ctrl-C), which is neither done nor halted. */
export type StageStatus = 'pending' | 'current' | 'done' | 'halted' | 'stopped'

export interface StageView {
  readonly percent: number
  readonly size: number
  finished: number
  status: StageStatus
}

export interface InFlightHost {
  readonly stage: number
  step: StepName | null
  phase: Phase
  /** When the host started (ms since epoch): the age shown is the host's, not the step's. */
  readonly since: number
  /** Being moved back by a revert (gates failed, abort --rollback), not updated. */
  readonly reverting?: boolean
}

export interface FailureView {
  readonly host: string
  readonly stage: number
  readonly status: FailureStatus
  readonly failedStep: StepName | null
  /** At most ERROR_LINES lines, sanitised (remote stderr may carry escape codes). */
  readonly error: readonly string[]
  /** Moved back by a revert: it did not fail a step, the release was taken back. */
  readonly reverted?: boolean
}

/** A host that did not succeed, as the end-of-rollout table shows it. */
export interface OutcomeRow {
  readonly host: string
  readonly stage: number
  readonly status: FailureStatus
  readonly failedStep: StepName | null
  readonly error: string | null
  readonly previousVersion: string | null
  readonly newVersion: string | null
}

const ERROR_LINES = 3
/** The frame shows the newest few; keeping a few more lets a caller ask for more without unbounded memory. */
const RECENT_FAILURES = 32
/** Per list (rollback_failed, others): the table shows 50 rows, this only bounds memory for huge failing fleets. */
export const MAX_STORED_OUTCOMES = 1000

/**
 * The useful part of an engine error in ERROR_LINES lines: its first line names the step and exit
 * code, its last lines are the end of stderr (and, after a failed rollback, why the rollback failed).
 */
export function errorTail(error: string | null, lines = ERROR_LINES): string[] {
  if (!error) return []
  const all = error
    .replace(/\t/g, ' ')
    .split(/\r?\n|\r/)
    // Remote text: escape sequences would corrupt a redrawn frame (or worse, the terminal).
    .map((l) => sanitize(l).trimEnd())
    .filter((l) => l.trim() !== '')
  return all.length <= lines ? all : [all[0]!, ...all.slice(all.length - (lines - 1))]
}

/**
 * Everything the live view shows, kept up to date in O(1) per event: no field is ever
 * recomputed by walking the hosts, so a 10,000-host rollout costs the same per event as a 10-host one.
 * Fields are public for renderers; only apply() changes them.
 */
export class LiveState {
  rolloutId = ''
  target: { ref: string; sha: string } | null = null
  hosts = 0
  concurrency = 0
  stages: StageView[] = []
  counts: StatusCounts = emptyCounts()
  startedAt: number | null = null
  stopping: 'signal' | 'abort' | null = null
  /** What the rollout is doing now, for the header: updating hosts, baking a stage, or moving hosts back. */
  mode: 'running' | 'baking' | 'reverting' = 'running'
  /** The bake in progress: its stage, when it ends, and the last value of every gate. */
  bake: { stage: number; endsAt: number; gates: readonly GateResult[]; verdict: string | null } | null = null
  /** Insertion-ordered, so the first entries are the hosts that have been running longest. */
  readonly inFlight = new Map<string, InFlightHost>()
  /** Newest last, bounded by RECENT_FAILURES. */
  readonly recentFailures: FailureView[] = []
  /** Non-success outcomes for the summary; rollback_failed kept apart so a flood of rollbacks never pushes them out. */
  readonly critical: OutcomeRow[] = []
  readonly otherFailures: OutcomeRow[] = []
  finished: Finished | null = null
  /** Release layout: hosts of later stages prepared ahead so far. */
  prepared = 0

  apply(event: RolloutEvent): void {
    switch (event.type) {
      case 'rollout-started':
        this.rolloutId = event.rolloutId
        this.target = { ref: event.ref, sha: event.sha }
        this.hosts = event.hosts
        this.concurrency = event.concurrency
        this.stages = event.stages.map((percent, i) => ({ percent, size: event.stageSizes[i] ?? 0, finished: 0, status: 'pending' }))
        this.counts = { ...emptyCounts(), pending: event.hosts }
        this.startedAt = Date.parse(event.at)
        return
      case 'stage-started':
        // The engine never announces empty stages; passing one means it is behind us.
        this.stages.forEach((s, i) => {
          if (i < event.stage && s.status === 'pending') s.status = 'done'
        })
        if (this.stages[event.stage]) this.stages[event.stage]!.status = 'current'
        this.bake = null
        this.mode = 'running'
        return
      case 'host-started':
        this.inFlight.set(event.host, { stage: event.stage, step: null, phase: 'update', since: Date.parse(event.at) })
        this.move('pending', 'updating')
        return
      case 'host-step': {
        const host = this.inFlight.get(event.host)
        if (host) {
          host.step = event.step
          host.phase = event.phase
        } else {
          const reverting = this.mode === 'reverting'
          this.inFlight.set(event.host, { stage: event.stage, step: event.step, phase: event.phase, since: Date.parse(event.at), reverting })
          if (reverting) this.move('success', 'updating')
        }
        return
      }
      case 'host-finished': {
        const reverted = this.inFlight.get(event.host)?.reverting === true
        // A host we never saw start (renderer attached late) was counted as pending, not updating.
        this.move(this.inFlight.delete(event.host) ? 'updating' : reverted || this.mode === 'reverting' ? 'success' : 'pending', event.status)
        if (!reverted && this.mode !== 'reverting' && this.stages[event.stage]) this.stages[event.stage]!.finished++
        if (isFailure(event.status)) this.recordFailure(event, event.status, reverted || this.mode === 'reverting')
        return
      }
      case 'stage-finished': {
        const stage = this.stages[event.stage]
        if (stage) stage.status = event.halted ? 'halted' : stage.finished < stage.size ? 'stopped' : 'done'
        return
      }
      case 'stage-delay':
        return
      case 'host-prepared':
        if (event.ok) this.prepared++
        return
      case 'bake-started':
        this.bake = { stage: event.stage, endsAt: Date.parse(event.endsAt), gates: [], verdict: null }
        this.mode = 'baking'
        return
      case 'gate-measured':
        if (this.bake) this.bake = { ...this.bake, gates: event.gates, verdict: event.verdict }
        return
      case 'gates-passed':
        this.bake = null
        this.mode = 'running'
        return
      case 'gates-failed':
        this.bake = null
        this.mode = event.onFail === 'revert' ? 'reverting' : 'running'
        return
      case 'rollout-aborting':
        if (event.rollback) this.mode = 'reverting'
        return
      case 'rollout-stopping':
        // A second Ctrl-C escalates; nothing de-escalates.
        if (this.stopping !== 'abort') this.stopping = event.reason
        return
      case 'rollout-finished':
        this.finished = event
        this.counts = { ...event.counts } // the engine's tally is the authority at the end
        this.inFlight.clear()
        if (event.state === 'completed') for (const s of this.stages) if (s.status === 'pending') s.status = 'done'
        return
    }
  }

  private move(from: HostStatus, to: HostStatus): void {
    this.counts[from] = Math.max(0, this.counts[from] - 1)
    this.counts[to]++
  }

  private recordFailure(event: HostFinished, status: FailureStatus, reverted: boolean): void {
    const error = errorTail(event.error)
    this.recentFailures.push({ host: event.host, stage: event.stage, status, failedStep: event.failedStep, error, reverted })
    if (this.recentFailures.length > RECENT_FAILURES) this.recentFailures.shift() // bounded: O(RECENT_FAILURES)
    const list = status === 'rollback_failed' ? this.critical : this.otherFailures
    if (list.length < MAX_STORED_OUTCOMES)
      list.push({
        host: event.host,
        stage: event.stage,
        status,
        failedStep: event.failedStep,
        error: error[0] ?? null,
        previousVersion: event.previousVersion,
        newVersion: event.newVersion,
      })
  }

  get done(): number {
    const c = this.counts
    return c.success + c.skipped + c.held + c.failed + c.rolled_back + c.rollback_failed
  }

  get failures(): number {
    return this.counts.failed + this.counts.rolled_back + this.counts.rollback_failed
  }
}
