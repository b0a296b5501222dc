import { ExitCode, errorMessage } from '../errors.js'
import type { FencedError } from '../ssh/fenced-session.js'
import { LostLeaseError, type RolloutHostRecord, type RolloutRequestRecord } from '../store/store.js'
import { gatesActive, type GatesConfig } from '../gates/types.js'
import { bakeStarted, measureOnce, measureOptions } from './bake-step.js'
import { cooldownIgnoredEvent, type IgnoredCooldown } from './cooldown.js'
import { Hold } from './hold.js'
import { Inbox } from './inbox.js'
import { onStops, viewOf, type Ending, type RunState } from './run-state.js'
import type { StageProgress } from './restore.js'
import { decide, type Decision, type Facts, type RolloutView } from './decide.js'
import { Admission } from './admission.js'
import { PrepareAhead } from './prepare-ahead.js'
import type { IgnoredWindow } from './window.js'
import { countStatuses, type RolloutEvent, type StatusCounts } from './events.js'
import { Journal } from './journal.js'
import { exitCodeFor, type FinishOptions } from './exit-code.js'
import { HostRun, type LeftUpdating } from './host-run.js'
import type { HostOutcome } from './host-update.js'
import { ringOfStage, type PlannedHost } from './plan.js'
import { newRolloutRecord, pendingHostRecord, rolloutStarted } from './record.js'
import { gateRevertEnding, revertHosts, type RevertOutcome } from './revert.js'
import type { RolloutDeps, RolloutResult, RolloutSettings } from './request.js'
import { StoreRetry, StoreUnavailableError } from './store-retry.js'
import type { HostStatus, RolloutState } from '../types.js'

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
  private readonly log: Journal
  private readonly hosts: HostRun
  private readonly byName: Map<string, PlannedHost>
  private readonly inbox: Inbox
  /** Which hosts may start now: deploy windows, holds placed meanwhile. */
  private readonly admission: Admission
  /** Release layout: later stages' hosts prepared while a stage bakes or waits. */
  private readonly ahead: PrepareAhead
  /** Hosts this process is working on, with the promise of that work. */
  private readonly inFlight = new Map<string, Promise<void>>()
  private readonly settling = new Set<string>()
  private broken: unknown = null
  /** This run's hold on its rollout, lost once another process takes the lease over. */
  private readonly hold = new Hold()
  private stage: number
  /** Where the current stage is: announced, finished (when), its delay announced, its bake (since, measurements, verdict). */
  private where: { -readonly [K in keyof StageProgress]: StageProgress[K] }

  constructor(
    private readonly deps: RolloutDeps,
    private readonly settings: RolloutSettings,
    private readonly state: RunState,
  ) {
    this.rolloutId = state.rolloutId
    this.statuses = new Map(state.statuses ?? [])
    this.stage = state.stage ?? 0
    const p = state.progress
    this.where = p
      ? { ...p, bake: { ...p.bake, measurements: [...p.bake.measurements] } }
      : { stageStarted: false, stageFinishedAt: null, delayAnnounced: false, bake: { since: 0, measurements: [], passed: false, promoted: false } }
    this.byName = new Map(state.plan.hosts.map((h) => [h.name, h]))
    this.admission = new Admission(deps.store, settings, state.plan.hosts)
    this.inbox = new Inbox(deps.store, state.fence, state.owner, {
      promote: (request) => this.promoted(request),
      whyNotPromote: () => (this.gates ? null : 'this rollout has no gates: nothing bakes'),
      notApplied: (request, why) => this.notApplied(request, why),
    })
    this.retry = new StoreRetry(state.rolloutId, deps.clock, state.storeRetryMs, (event) => this.log.tell(event))
    this.log = new Journal(deps.store, state.fence, { told: deps.listeners, ...(deps.onStored ? { stored: deps.onStored } : {}) }, (write) => this.retry.write(write))
    this.hosts = new HostRun({
      ...{ rolloutId: state.rolloutId, fence: state.fence, owner: state.owner, lost: this.hold.signal, target: state.target },
      ...{ store: deps.store, executor: deps.executor, clock: deps.clock, retry: this.retry, log: this.log },
      ...{ settings: settings.host, connectTimeoutMs: settings.connectTimeoutMs, ...(deps.kill ? { kill: deps.kill } : {}) },
      ...{ sessions: state.sessions, statuses: this.statuses, outcomes: this.outcomes },
    })
    this.ahead = new PrepareAhead(this.hosts, Boolean(settings.host.releases), settings.concurrency, (e) => void (Hold.ends(e) && this.loseLease(e)))
    onStops(deps, (reason, cause) => void this.log.record({ type: 'rollout-stopping', rolloutId: this.rolloutId, reason, cause, at: this.at() }).catch(() => {}))
  }

  private get stopped(): boolean {
    return this.deps.stop?.aborted === true || this.deps.kill?.aborted === true || this.hold.lost
  }

  /** Another process took the lease over (see Hold); called by the renewals (keepLease) too. */
  loseLease(error: LostLeaseError | FencedError): void {
    this.hold.lose(error, this.rolloutId, (event) => this.log.tell(event), this.at())
  }

  /** Records an event of this rollout through its one journal: stored under the fence, then told to every listener. */
  readonly journal = (event: RolloutEvent): Promise<void> => this.log.record(event)

  /** A promote request consumed by the inbox: the bake ends as passed, and who and why is in the audit trail. */
  private async promoted(request: RolloutRequestRecord): Promise<void> {
    this.promote()
    await this.log.record({ type: 'rollout-promoted', rolloutId: this.rolloutId, stage: this.stage, actor: request.actor, reason: request.reason ?? '', skipBake: request.skipBake, at: this.at() })
  }

  private readonly notApplied = (request: RolloutRequestRecord, why: string): Promise<void> =>
    this.log.record({ type: 'request-not-applied', rolloutId: this.rolloutId, request: request.id, kind: request.kind, actor: request.actor, reason: request.reason, why, at: this.at() })

  /** A person's resume, promote or abort took the rollout over: requests sent before it are answered by it, not applied. */
  async supersedeRequests(by: string, sentBefore: Date): Promise<void> {
    for (const request of await this.retry.write(() => this.inbox.closeUnapplied(by, sentBefore))) await this.notApplied(request, by)
  }

  private readonly at = (): string => new Date(this.deps.clock.now()).toISOString()

  private counts = (): StatusCounts => countStatuses(this.state.plan.hosts.map((h) => this.statuses.get(h.name) ?? 'pending'))

  private get gates(): GatesConfig | null {
    return gatesActive(this.settings.gates) ? this.settings.gates : null
  }

  /** What the decision core sees: the recorded statuses and where the rollout is. */
  view(): RolloutView {
    return viewOf(this.state.plan, this.settings, this.gates, this.statuses, this.stage, this.where)
  }

  /** Writes the new rollout and its planned hosts (all pending), then announces it. */
  async record(seed: string, ignored: IgnoredCooldown | null = null, window: IgnoredWindow | null = null): Promise<void> {
    const { plan, startedAt, target, owner } = this.state
    const fresh = { id: this.rolloutId, settings: this.settings, plan, target, seed, owner, startedAt }
    await this.retry.write(() => this.deps.store.createRollout(this.state.fence, newRolloutRecord(fresh), plan.hosts.map(pendingHostRecord)))
    await this.log.record(rolloutStarted(fresh))
    if (ignored) await this.log.record(cooldownIgnoredEvent(ignored, this.rolloutId, startedAt))
    if (window) await this.log.record({ type: 'window-ignored', rolloutId: this.rolloutId, ...window, at: startedAt.toISOString() })
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
    let revertInterrupted = false
    try {
      const ending = await this.drive(options)
      if (this.hold.lost) return this.lostResult()
      if (ending.state === 'yielded') return await this.yieldToNextRun()
      state = ending.state
      error = ending.why ?? null
      revertInterrupted = ending.revertInterrupted === true
      if (state === 'interrupted') error = `stopped by ${String((this.deps.kill?.aborted ? this.deps.kill : this.deps.stop)?.reason ?? 'the operator')}`
    } catch (caught) {
      if (Hold.ends(caught)) {
        this.loseLease(caught)
        while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight.values()])
        return this.lostResult()
      }
      // The store is gone: leave the rollout `running` with a lapsing lease, for `resume`.
      if (caught instanceof StoreUnavailableError) throw caught
      state = 'failed'
      error = errorMessage(caught)
    }
    try {
      return await this.finish(state, error, { revertInterrupted })
    } catch (caught) {
      if (!Hold.ends(caught)) throw caught
      this.loseLease(caught)
      return this.lostResult()
    }
  }

  /** Once lost: exit 6 and who took it over; nothing of it was recorded by this process. */
  private lostResult(): RolloutResult {
    return { rolloutId: this.rolloutId, state: 'running', exitCode: ExitCode.locked, sha: this.state.target, counts: this.counts(), outcomes: this.outcomes, lost: this.hold.why }
  }

  /** Carries out decisions until one ends the run (or, with yieldAtWait, until only waiting is left). */
  async drive(options: { yieldAtWait?: boolean } = {}): Promise<Ending> {
    // Requests made before this process took the rollout over are facts from the first decision on.
    await this.inbox.poll()
    const stopListening = this.inbox.listen()
    try {
      for (;;) {
        const decision = decide(this.view(), await this.facts(), this.deps.clock.now())
        // Before leaving the rest to the next tick, one more look: a request that came meanwhile is applied now.
        if (options.yieldAtWait && decision.kind === 'wait-until' && this.inFlight.size === 0) {
          if (await this.inbox.poll()) continue
          this.prepareLater() // a tick prepares a batch before it leaves (yieldToNextRun waits for it)
          return { state: 'yielded' }
        }
        const end = await this.carryOut(decision)
        if (end) return end
      }
    } finally {
      stopListening()
    }
  }

  /** Leaves the rollout as recorded for the next tick: lease released, state running or baking. */
  private async yieldToNextRun(): Promise<RolloutResult> {
    await this.ahead.settle()
    await this.log.flush()
    await this.retry.write(() => this.deps.store.releaseLease(this.state.fence))
    const state: RolloutState = this.where.stageFinishedAt !== null && this.gates && !this.where.bake.passed ? 'baking' : 'running'
    // Gates in error: nothing is promoted or rolled back, and cron hears about it (exit 7) every time.
    const inError = state === 'baking' && this.where.bake.measurements.at(-1)?.verdict === 'error'
    return { rolloutId: this.rolloutId, state, exitCode: inError ? ExitCode.paused : ExitCode.ok, sha: this.state.target, counts: this.counts(), outcomes: this.outcomes }
  }

  private async facts(): Promise<Facts> {
    const now = this.deps.clock.now()
    const pending = (this.state.plan.byStage[this.stage] ?? []).filter((h) => (this.statuses.get(h.name) ?? 'pending') === 'pending').map((h) => h.name)
    const { closed, opensAt } = this.admission.closed(pending, now)
    const held = await this.admission.held(now)
    const base = { inFlight: new Set(this.inFlight.keys()), settling: this.settling, stopped: this.stopped, pause: this.inbox.pause }
    return { ...base, storeGaveUp: this.retry.gaveUp, lost: this.hold.lost, broken: this.broken !== null, closed, opensAt, held }
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
        this.where.stageStarted = true
        this.where.stageFinishedAt = null
        this.where.delayAnnounced = false
        await this.retry.write(() => this.deps.store.updateRollout(this.state.fence, { currentStage: decision.stage, state: 'running' }))
        const hosts = this.state.plan.byStage[decision.stage]!.map((h) => h.name)
        const ring = ringOfStage(this.state.plan.rings)[decision.stage] ?? null
        await this.log.record({ type: 'stage-started', rolloutId: this.rolloutId, stage: decision.stage, percent: this.state.plan.stages[decision.stage]!, hosts, ...(ring ? { ring } : {}), at: this.at() })
        return null
      }
      case 'finish-stage':
        this.where.stageFinishedAt = this.deps.clock.now()
        this.where.bake = { since: this.where.stageFinishedAt, measurements: [], passed: false, promoted: this.promoteOnce }
        this.promoteOnce = false
        const { stage, counts, failureRate, halted } = decision
        await this.log.record({ type: 'stage-finished', rolloutId: this.rolloutId, stage, percent: this.state.plan.stages[stage]!, counts, failureRate, halted, at: this.at() })
        if (this.gates && !decision.halted && !this.stopped) await this.startBake(decision.stage)
        return null
      case 'measure':
        return this.measure(decision.stage).then(() => null)
      case 'gates-passed':
        this.where.bake.passed = true
        await this.retry.write(() => this.deps.store.updateRollout(this.state.fence, { state: 'running' }))
        await this.log.record({ type: 'gates-passed', rolloutId: this.rolloutId, stage: decision.stage, at: this.at() })
        return null
      case 'gates-failed': {
        await this.log.record({ type: 'gates-failed', rolloutId: this.rolloutId, stage: decision.stage, reason: decision.reason, onFail: decision.onFail, at: this.at() })
        const why = `gates failed at stage ${decision.stage + 1}: ${decision.reason}`
        if (decision.onFail !== 'revert') return { state: 'halted', why }
        await this.retry.write(() => this.deps.store.updateRollout(this.state.fence, { state: 'running' })) // reverting: no longer baking
        return gateRevertEnding(why, await this.revert(await this.deps.store.listRolloutHosts(this.rolloutId), `rolled back: ${why}`))
      }
      case 'pause': {
        const by = this.inbox.pausedBy // a person's pause, or the gates'
        await this.log.record({ type: 'rollout-paused', rolloutId: this.rolloutId, stage: decision.stage, reason: by ? (by.reason ?? 'paused by hand') : decision.reason, ...(by ? { actor: by.actor, byHand: true } : {}), at: this.at() })
        return { state: 'paused', why: decision.reason }
      }
      case 'wait-until': {
        this.prepareLater()
        const delayMs = decision.until - this.deps.clock.now()
        if (decision.for === 'stage-delay' && !this.where.delayAnnounced) {
          this.where.delayAnnounced = true
          await this.log.record({ type: 'stage-delay', rolloutId: this.rolloutId, stage: this.stage, delayMs: this.settings.stageDelayMs, at: this.at() })
        }
        // A stop or a request from another shell (pause, promote) cuts the wait short.
        await this.deps.clock.sleep(delayMs, this.deps.stop ? AbortSignal.any([this.deps.stop, this.inbox.wake]) : this.inbox.wake)
        return null
      }
      case 'skip-held':
        return this.hosts.heldOut(this.byName.get(decision.host)!, 'held since the rollout began: never touched').then(() => null)
      case 'finish':
        return { state: decision.state, ...(decision.why ? { why: decision.why } : {}) }
      case 'give-up':
        throw this.broken ?? new StoreUnavailableError(this.rolloutId, 'writes kept failing')
    }
  }

  /** While this stage bakes or waits: later stages' pending hosts prepare the target (release layout). */
  private prepareLater(): void {
    this.ahead.kick(this.state.plan.hosts.filter((h) => h.stage > this.stage && (this.statuses.get(h.name) ?? 'pending') === 'pending'))
  }

  private promoteOnce = false // set by `promote` before a stage finished: its bake counts as passed

  /** `fleet rollout promote`: end the current (or next) bake as passed. */
  promote(): void {
    if (this.where.stageFinishedAt !== null) this.where.bake.promoted = true
    else this.promoteOnce = true
  }

  private async startBake(stage: number): Promise<void> {
    await this.retry.write(() => this.deps.store.updateRollout(this.state.fence, { state: 'baking' }))
    await this.log.record(bakeStarted(this.rolloutId, stage, this.gates!, this.where.bake.since, this.deps.clock.now()))
  }

  /** One measurement of every gate; the hosts moved so far are those of this stage and the ones before that succeeded. */
  private async measure(stage: number): Promise<void> {
    const hosts = this.state.plan.hosts.filter((h) => h.stage <= stage && this.statuses.get(h.name) === 'success').map((h) => h.name)
    const context = { sha: this.state.target, stage, hosts }
    const { record, event } = await measureOnce(this.rolloutId, this.gates!, context, this.deps.clock, measureOptions(this.settings, this.deps.stop))
    this.where.bake.measurements.push(record)
    await this.log.record(event)
  }

  /** Hosts a dead run left `updating`, with what it recorded of them (for settling). */
  private readonly left = new Map<string, LeftUpdating>()

  /** Starts a host's work in the background; the next decision sees it in flight. */
  private launch(name: string, left?: LeftUpdating): void {
    const host = this.byName.get(name)!
    const work = this.ahead.before(name).then(() => this.hosts.run(host, left))
      .catch((error: unknown) => {
        // Taken over: stop everything. A store that gave up is a fact the core knows; anything else is a bug to report.
        if (Hold.ends(error)) this.loseLease(error)
        else if (!(error instanceof StoreUnavailableError)) this.broken ??= error
      })
      .finally(() => {
        this.inFlight.delete(name)
        this.settling.delete(name)
      })
    this.inFlight.set(name, work)
  }

  async finish(state: RolloutState, error: string | null, options: FinishOptions = {}): Promise<RolloutResult> {
    const counts = this.counts()
    const exitCode = exitCodeFor(state, counts, options)
    await this.ahead.settle()
    const finishedAt = new Date(this.deps.clock.now())
    // A pause or promote that came too late is not dropped silently: it says so in the record.
    for (const request of await this.retry.write(() => this.inbox.closeUnapplied(`the rollout had ended ${state}`))) await this.notApplied(request, `the rollout had ended ${state}`)
    await this.retry.write(() => this.deps.store.updateRollout(this.state.fence, { state, finishedAt, exitCode, error }))
    const durationMs = finishedAt.getTime() - this.state.startedAt.getTime()
    await this.log.record({ type: 'rollout-finished', rolloutId: this.rolloutId, state, exitCode, counts, durationMs, error, at: finishedAt.toISOString() })
    await this.retry.write(() => this.deps.store.releaseLease(this.state.fence))
    return { rolloutId: this.rolloutId, state, exitCode, sha: this.state.target, counts, outcomes: this.outcomes }
  }

  /** Resume/abort: settle every host a dead run left `updating` (bounded by concurrency), nothing else. */
  async settle(rows: readonly RolloutHostRecord[]): Promise<void> {
    for (const row of rows) if (row.status === 'updating') this.left.set(row.name, { previous: row.previousVersion, step: row.step })
    for (;;) {
      const decision = decide(this.view(), await this.facts(), this.deps.clock.now())
      if (decision.kind === 'settle' || (decision.kind === 'wait-hosts' && this.inFlight.size > 0)) {
        await this.carryOut(decision)
        continue
      }
      if (this.retry.gaveUp) throw new StoreUnavailableError(this.rolloutId, 'writes kept failing')
      if (this.broken) throw this.broken
      return
    }
  }

  /** Abort --rollback or a gate revert: see revertHosts. */
  revert(rows: readonly RolloutHostRecord[], why = 'rolled back by `fleet rollout abort --rollback`'): Promise<RevertOutcome> {
    return revertHosts(rows, this.byName, this.settings, () => this.stopped, (host, previous) => this.hosts.moveBack(host, previous, why))
  }
}
