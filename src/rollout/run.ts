import pLimit from 'p-limit'

import { ExitCode, errorMessage } from '../errors.js'
import type { Session } from '../ssh/executor.js'
import type { RolloutHostRecord } from '../store/store.js'
import { measure, summarize } from '../gates/measure.js'
import type { GatesConfig, MeasurementRecord } from '../gates/types.js'
import { CONTROL_POLL_MS } from './control.js'
import type { StageProgress } from './restore.js'
import { decide, type Decision, type RolloutView } from './decide.js'
import { emptyCounts, type StatusCounts } from './events.js'
import { EventLog } from './event-log.js'
import { exitCodeFor } from './exit-code.js'
import { HostRun, type LeftUpdating } from './host-run.js'
import type { HostOutcome } from './host-update.js'
import { stageSizes, type Plan, type PlannedHost } from './plan.js'
import type { RolloutDeps, RolloutResult, RolloutSettings } from './request.js'
import { StoreRetry, StoreUnavailableError } from './store-retry.js'
import type { HostStatus, RolloutState, Sha } from '../types.js'

/** How a drive ends, and why when that is worth recording. */
interface Ending {
  readonly state: 'completed' | 'halted' | 'interrupted' | 'paused' | 'yielded'
  readonly why?: string
}

export interface RunState {
  readonly rolloutId: string
  readonly target: Sha
  readonly plan: Plan
  readonly startedAt: Date
  readonly sessions: Map<string, Session>
  readonly storeRetryMs: number
  /** Statuses already recorded (resume); everything else starts pending. */
  readonly statuses?: ReadonlyMap<string, HostStatus>
  /** The stage a resumed rollout was in. */
  readonly stage?: number
  /** Where that stage was, from the log (see restore.ts). */
  readonly progress?: StageProgress
}

/**
 * One execution of a rollout: the driver around the decision core. It asks
 * decide() what to do, does it (starting a host's work in the background,
 * announcing or finishing a stage, waiting), records it, and asks again,
 * until the rollout is finished or must be left for `resume`.
 */
export class RolloutRun {
  readonly rolloutId: string
  private readonly statuses: Map<string, HostStatus>
  private readonly outcomes = new Map<string, HostOutcome>()
  private readonly retry: StoreRetry
  private readonly log: EventLog
  private readonly hosts: HostRun
  private readonly byName: Map<string, PlannedHost>
  /** Hosts this process is working on, with the promise of that work. */
  private readonly inFlight = new Map<string, Promise<void>>()
  private readonly settling = new Set<string>()
  private broken: unknown = null
  private stage: number
  private stageStarted = false
  private stageFinishedAt: number | null = null
  private delayAnnounced = false
  /** The current stage's bake: when it began, its measurements, whether its verdict is recorded. */
  private bake = { since: 0, measurements: [] as MeasurementRecord[], passed: false, promoted: false }

  constructor(
    private readonly deps: RolloutDeps,
    private readonly settings: RolloutSettings,
    private readonly state: RunState,
  ) {
    this.rolloutId = state.rolloutId
    this.statuses = new Map(state.statuses ?? [])
    this.stage = state.stage ?? 0
    if (state.progress) {
      this.stageStarted = state.progress.stageStarted
      this.stageFinishedAt = state.progress.stageFinishedAt
      this.delayAnnounced = state.progress.delayAnnounced
      this.bake = { ...state.progress.bake, measurements: [...state.progress.bake.measurements] }
    }
    this.byName = new Map(state.plan.hosts.map((h) => [h.name, h]))
    const listeners = deps.listeners
    this.retry = new StoreRetry(state.rolloutId, deps.clock, state.storeRetryMs, (event) => this.log.tell(event))
    this.log = new EventLog(state.rolloutId, deps.store, this.retry, listeners, deps.onStored)
    this.hosts = new HostRun({
      rolloutId: state.rolloutId,
      target: state.target,
      store: deps.store,
      executor: deps.executor,
      clock: deps.clock,
      retry: this.retry,
      log: this.log,
      settings: settings.host,
      connectTimeoutMs: settings.connectTimeoutMs,
      ...(deps.kill ? { kill: deps.kill } : {}),
      sessions: state.sessions,
      statuses: this.statuses,
      outcomes: this.outcomes,
    })
    const announce = (reason: 'signal' | 'abort') => () => {
      const cause = String((reason === 'signal' ? deps.stop : deps.kill)?.reason ?? 'signal')
      void this.log.emit({ type: 'rollout-stopping', rolloutId: this.rolloutId, reason, cause, at: this.at() }).catch(() => {})
    }
    deps.stop?.addEventListener('abort', announce('signal'), { once: true })
    deps.kill?.addEventListener('abort', announce('abort'), { once: true })
  }

  private get stopped(): boolean {
    return this.deps.stop?.aborted === true || this.deps.kill?.aborted === true
  }

  private at(): string {
    return new Date(this.deps.clock.now()).toISOString()
  }

  private counts(): StatusCounts {
    const counts = emptyCounts()
    for (const host of this.state.plan.hosts) counts[this.statuses.get(host.name) ?? 'pending']++
    return counts
  }

  /** Gates bake only when something is measured or a bake is asked for. */
  private get gates(): GatesConfig | null {
    const g = this.settings.gates
    return g && (g.bakeMs > 0 || g.metrics.length + g.checks.length > 0) ? g : null
  }

  /** What the decision core sees: the recorded statuses and where the rollout is. */
  view(): RolloutView {
    const gates = this.gates
    return {
      stages: this.state.plan.stages,
      failureThreshold: this.settings.failureThreshold,
      concurrency: this.settings.concurrency,
      stageDelayMs: this.settings.stageDelayMs,
      hosts: this.state.plan.hosts.map((h) => ({ name: h.name, stage: h.stage, status: this.statuses.get(h.name) ?? 'pending' })),
      stage: this.stage,
      stageStarted: this.stageStarted,
      stageFinishedAt: this.stageFinishedAt,
      gates: gates && {
        bake: gates,
        gateCount: gates.metrics.length + gates.checks.length,
        onFail: gates.onFail,
        since: this.bake.since,
        measurements: this.bake.measurements,
        passed: this.bake.passed,
        promoted: this.bake.promoted,
      },
    }
  }

  /** Writes the new rollout and its planned hosts (all pending). */
  async record(owner: string, seed: string): Promise<void> {
    const { plan, startedAt, target } = this.state
    await this.retry.write(() =>
      this.deps.store.createRollout(
        {
          id: this.rolloutId,
          state: 'running',
          ref: this.settings.ref,
          sha: target,
          stages: plan.stages,
          seed,
          currentStage: 0,
          settings: this.settings as unknown as Record<string, unknown>,
          owner,
          startedAt,
          finishedAt: null,
          heartbeatAt: startedAt,
          exitCode: null,
          error: null,
        },
        plan.hosts.map((h) => ({
          name: h.name,
          address: h.address,
          port: h.port,
          user: h.user,
          appDir: h.appDir,
          position: h.position,
          stage: h.stage,
          status: 'pending' as const,
          step: null,
          previousVersion: null,
          newVersion: null,
          error: null,
          startedAt: null,
          finishedAt: null,
        })),
      ),
    )
    await this.log.emit({
      type: 'rollout-started',
      rolloutId: this.rolloutId,
      ref: this.settings.ref,
      sha: target,
      stages: [...plan.stages],
      stageSizes: plan.byStage.map((s) => s.length),
      hosts: plan.hosts.length,
      concurrency: this.settings.concurrency,
      failureThreshold: this.settings.failureThreshold,
      seed,
      at: startedAt.toISOString(),
    })
  }

  /**
   * Drives the rollout to its end, then records the outcome and releases the
   * lease. With `yieldAtWait` (a cron tick, `start --detach`) it returns as
   * soon as all that is left is to wait (a bake's next measurement, a stage
   * delay): the rollout stays `running`/`baking` for the next tick.
   */
  async run(options: { yieldAtWait?: boolean } = {}): Promise<RolloutResult> {
    let state: RolloutState
    let error: string | null = null
    try {
      const ending = await this.drive(options)
      if (ending.state === 'yielded') return await this.yieldToNextRun()
      state = ending.state
      error = ending.why ?? null
      if (state === 'interrupted') error = `stopped by ${String((this.deps.kill?.aborted ? this.deps.kill : this.deps.stop)?.reason ?? 'the operator')}`
    } catch (caught) {
      // The store is gone: leave the rollout `running` with a lapsing lease, for `resume`.
      if (caught instanceof StoreUnavailableError) throw caught
      state = 'failed'
      error = errorMessage(caught)
    }
    return this.finish(state, error)
  }

  /** Carries out decisions until one ends the run (or, with yieldAtWait, until only waiting is left). */
  async drive(options: { yieldAtWait?: boolean } = {}): Promise<Ending> {
    const polling = this.deps.control ? setInterval(() => void this.pollControl(), CONTROL_POLL_MS) : null
    polling?.unref()
    try {
      for (;;) {
        const decision = decide(this.view(), this.facts(), this.deps.clock.now())
        if (options.yieldAtWait && decision.kind === 'wait-until' && this.inFlight.size === 0) return { state: 'yielded' }
        const end = await this.carryOut(decision)
        if (end) return end
      }
    } finally {
      if (polling) clearInterval(polling)
    }
  }

  /** A pause or promote request from another shell: taken into account at the next decision. */
  private pauseRequest: string | null = null
  private wake = new AbortController()

  private async pollControl(): Promise<void> {
    let requests
    try {
      requests = await this.deps.control!.poll(this.rolloutId)
    } catch {
      return // the next poll tries again; a missed request is never acted on half-way
    }
    for (const request of requests) {
      if (request.kind === 'pause') this.pauseRequest ??= `paused by ${request.actor}${request.reason ? `: ${request.reason}` : ''}`
      else this.promote()
      this.wake.abort()
      this.wake = new AbortController()
    }
  }

  /** Leaves the rollout as recorded for the next tick: lease released, state running or baking. */
  private async yieldToNextRun(): Promise<RolloutResult> {
    await this.log.flush()
    await this.retry.write(() => this.deps.store.releaseLease(this.rolloutId))
    const state: RolloutState = this.stageFinishedAt !== null && this.gates && !this.bake.passed ? 'baking' : 'running'
    // Gates in error: nothing is promoted or rolled back, and cron hears about it (exit 7) every time.
    const inError = state === 'baking' && this.bake.measurements.at(-1)?.verdict === 'error'
    return { rolloutId: this.rolloutId, state, exitCode: inError ? ExitCode.paused : ExitCode.ok, sha: this.state.target, counts: this.counts(), outcomes: this.outcomes }
  }

  private facts() {
    return {
      inFlight: new Set(this.inFlight.keys()),
      settling: this.settling,
      stopped: this.stopped,
      pause: this.pauseRequest,
      storeGaveUp: this.retry.gaveUp,
      broken: this.broken !== null,
    }
  }

  private async carryOut(decision: Decision): Promise<Ending | null> {
    switch (decision.kind) {
      case 'settle': {
        const row = this.left.get(decision.host) ?? { previous: null, step: null }
        this.left.delete(decision.host)
        this.settling.add(decision.host)
        this.launch(decision.host, row)
        return null
      }
      case 'start-host':
        // Recorded `updating` before the next decision, so it is never started twice.
        this.statuses.set(decision.host, 'updating')
        this.launch(decision.host)
        return null
      case 'wait-hosts':
        if (this.inFlight.size === 0) throw new Error('internal: asked to wait with no host in flight')
        await Promise.race(this.inFlight.values())
        return null
      case 'start-stage': {
        this.stage = decision.stage
        this.stageStarted = true
        this.stageFinishedAt = null
        this.delayAnnounced = false
        await this.retry.write(() => this.deps.store.updateRollout(this.rolloutId, { currentStage: decision.stage, state: 'running' }))
        const hosts = this.state.plan.byStage[decision.stage]!.map((h) => h.name)
        await this.log.emit({ type: 'stage-started', rolloutId: this.rolloutId, stage: decision.stage, percent: this.state.plan.stages[decision.stage]!, hosts, at: this.at() })
        return null
      }
      case 'finish-stage':
        this.stageFinishedAt = this.deps.clock.now()
        this.bake = { since: this.stageFinishedAt, measurements: [], passed: false, promoted: this.promoteOnce }
        this.promoteOnce = false
        await this.log.emit({
          type: 'stage-finished',
          rolloutId: this.rolloutId,
          stage: decision.stage,
          percent: this.state.plan.stages[decision.stage]!,
          counts: decision.counts,
          failureRate: decision.failureRate,
          halted: decision.halted,
          at: this.at(),
        })
        if (this.gates && !decision.halted && !this.stopped) await this.startBake(decision.stage)
        return null
      case 'measure':
        await this.measure(decision.stage)
        return null
      case 'gates-passed':
        this.bake.passed = true
        await this.retry.write(() => this.deps.store.updateRollout(this.rolloutId, { state: 'running' }))
        await this.log.emit({ type: 'gates-passed', rolloutId: this.rolloutId, stage: decision.stage, at: this.at() })
        return null
      case 'gates-failed': {
        await this.log.emit({ type: 'gates-failed', rolloutId: this.rolloutId, stage: decision.stage, reason: decision.reason, onFail: decision.onFail, at: this.at() })
        const why = `gates failed at stage ${decision.stage + 1}: ${decision.reason}`
        if (decision.onFail === 'revert') await this.revert(await this.deps.store.listRolloutHosts(this.rolloutId), `rolled back: ${why}`)
        return { state: 'halted', why }
      }
      case 'pause':
        await this.log.emit({ type: 'rollout-paused', rolloutId: this.rolloutId, stage: decision.stage, reason: decision.reason, at: this.at() })
        return { state: 'paused', why: decision.reason }
      case 'wait-until': {
        const delayMs = decision.until - this.deps.clock.now()
        if (decision.for === 'stage-delay' && !this.delayAnnounced) {
          this.delayAnnounced = true
          await this.log.emit({ type: 'stage-delay', rolloutId: this.rolloutId, stage: this.stage, delayMs: this.settings.stageDelayMs, at: this.at() })
        }
        // A stop or a request from another shell (pause, promote) cuts the wait short.
        await this.deps.clock.sleep(delayMs, this.deps.stop ? AbortSignal.any([this.deps.stop, this.wake.signal]) : this.wake.signal)
        return null
      }
      case 'finish':
        return { state: decision.state }
      case 'give-up':
        throw this.broken ?? new StoreUnavailableError(this.rolloutId, 'writes kept failing')
    }
  }

  /** Set by `promote`: the next bake of this run counts as passed. */
  private promoteOnce = false

  /** `fleet rollout promote`: end the current (or next) bake as passed. */
  promote(): void {
    if (this.stageFinishedAt !== null) this.bake.promoted = true
    else this.promoteOnce = true
  }

  private async startBake(stage: number): Promise<void> {
    const gates = this.gates!
    await this.retry.write(() => this.deps.store.updateRollout(this.rolloutId, { state: 'baking' }))
    const bakeMs = Math.max(gates.bakeMs, gates.metrics.length + gates.checks.length > 0 ? gates.intervalMs : 0)
    const endsAt = new Date(this.bake.since + bakeMs).toISOString()
    await this.log.emit({ type: 'bake-started', rolloutId: this.rolloutId, stage, bakeMs: gates.bakeMs, intervalMs: gates.intervalMs, endsAt, at: this.at() })
  }

  /** One measurement of every gate; the hosts moved so far are those of this stage and the ones before that succeeded. */
  private async measure(stage: number): Promise<void> {
    const at = this.deps.clock.now()
    const hosts = this.state.plan.hosts.filter((h) => h.stage <= stage && this.statuses.get(h.name) === 'success').map((h) => h.name)
    const m = await measure(this.gates!, { sha: this.state.target, stage, hosts }, {
      checkTimeoutMs: this.settings.host.commandTimeoutMs,
      ...(this.settings.checksDir ? { cwd: this.settings.checksDir } : {}),
      ...(this.deps.stop ? { signal: this.deps.stop } : {}),
    })
    this.bake.measurements.push({ at, verdict: m.verdict, reason: summarize(m) })
    await this.log.emit({ type: 'gate-measured', rolloutId: this.rolloutId, stage, gates: [...m.gates], verdict: m.verdict, at: new Date(at).toISOString() })
  }

  /** Hosts a dead run left `updating`, with what it recorded of them (for settling). */
  private readonly left = new Map<string, LeftUpdating>()

  /** Starts a host's work in the background; the next decision sees it in flight. */
  private launch(name: string, left?: LeftUpdating): void {
    const host = this.byName.get(name)!
    const work = this.hosts
      .run(host, left)
      .catch((error: unknown) => {
        // A store that gave up is a fact the core knows; anything else is a bug to report.
        if (!(error instanceof StoreUnavailableError)) this.broken ??= error
      })
      .finally(() => {
        this.inFlight.delete(name)
        this.settling.delete(name)
      })
    this.inFlight.set(name, work)
  }

  async finish(state: RolloutState, error: string | null, options: { revertHalted?: boolean } = {}): Promise<RolloutResult> {
    const counts = this.counts()
    const exitCode = exitCodeFor(state, counts, options)
    const finishedAt = new Date(this.deps.clock.now())
    await this.retry.write(() => this.deps.store.updateRollout(this.rolloutId, { state, finishedAt, exitCode, error }))
    await this.log.emit({
      type: 'rollout-finished',
      rolloutId: this.rolloutId,
      state,
      exitCode,
      counts,
      durationMs: finishedAt.getTime() - this.state.startedAt.getTime(),
      error,
      at: finishedAt.toISOString(),
    })
    await this.retry.write(() => this.deps.store.releaseLease(this.rolloutId))
    return { rolloutId: this.rolloutId, state, exitCode, sha: this.state.target, counts, outcomes: this.outcomes }
  }

  /** Resume/abort: settle every host a dead run left `updating` (bounded by concurrency), nothing else. */
  async settle(rows: readonly RolloutHostRecord[]): Promise<void> {
    for (const row of rows) if (row.status === 'updating') this.left.set(row.name, { previous: row.previousVersion, step: row.step })
    for (;;) {
      const decision = decide(this.view(), this.facts(), this.deps.clock.now())
      if (decision.kind === 'settle' || (decision.kind === 'wait-hosts' && this.inFlight.size > 0)) {
        await this.carryOut(decision)
        continue
      }
      if (this.retry.gaveUp) throw new StoreUnavailableError(this.rolloutId, 'writes kept failing')
      if (this.broken) throw this.broken
      return
    }
  }

  /**
   * Abort --rollback: moves every host this rollout updated back to its
   * previous version, in the rollout's stages, under the same threshold.
   * Returns false when a stage of the move back failed too often.
   */
  async revert(rows: readonly RolloutHostRecord[], why = 'rolled back by `fleet rollout abort --rollback`'): Promise<boolean> {
    const updated = rows.filter((r) => r.status === 'success' && r.previousVersion)
    const hosts = updated.map((r) => ({ host: this.byName.get(r.name)!, previous: r.previousVersion! }))
    let offset = 0
    for (const size of stageSizes(hosts.length, this.settings.stages)) {
      const stageHosts = hosts.slice(offset, offset + size)
      offset += size
      if (stageHosts.length === 0) continue
      const limit = pLimit(this.settings.concurrency)
      const moved = await Promise.allSettled(stageHosts.map(({ host, previous }) => limit(async () => (this.stopped ? true : this.hosts.moveBack(host, previous, why)))))
      const failures = moved.filter((r) => r.status === 'rejected' || !r.value).length
      if (failures / stageHosts.length > this.settings.failureThreshold) return false
    }
    return true
  }
}
