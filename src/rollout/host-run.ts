import { errorMessage } from '../errors.js'
import type { Executor, Session } from '../ssh/executor.js'
import { FencedError, fencedSession } from '../ssh/fenced-session.js'
import type { Fence, HostRecorder, HostState, RolloutHostPatch, Store } from '../store/store.js'
import type { RolloutEvent } from './events.js'
import type { Clock } from './clock.js'
import type { Journal } from './journal.js'
import { reconcileHost, updateHost, type HostOutcome, type HostSettings, type Phase } from './host-update.js'
import type { PlannedHost } from './plan.js'
import type { StoreRetry } from './store-retry.js'
import type { Host, HostStatus, Sha, StepName } from '../types.js'
import { sanitizeLine } from '../text/sanitize.js'
import { prepareRelease } from './host-release.js'
import { StepRunner } from './host-steps.js'

/** Connection attempts (1 s, 2 s, 4 s apart) before a rollback gives a lost host up. */
const RECONNECT_ATTEMPTS = 4

export interface HostRunContext {
  readonly rolloutId: string
  /** The lease this run holds: every write names it, and every host it touches is claimed with it. */
  readonly fence: Fence
  /** Written to a host's fence log when it is claimed. */
  readonly owner: string
  /** Aborted once this process lost its lease: no further command starts on any host. */
  readonly lost: AbortSignal
  readonly target: Sha
  readonly store: HostRecorder
  readonly executor: Executor
  readonly clock: Clock
  readonly retry: StoreRetry
  readonly log: Journal
  readonly settings: HostSettings
  readonly connectTimeoutMs: number
  /** Second Ctrl-C: in-flight commands are killed, their hosts rolled back. */
  readonly kill?: AbortSignal
  /** Connections opened while resolving the target, handed to that host's update. */
  readonly sessions: Map<string, Session>
  /** Every host status this run recorded, kept in step with the store (the decision core reads it). */
  readonly statuses: Map<string, HostStatus>
  readonly outcomes: Map<string, HostOutcome>
}

/**
 * The step column of a host a revert (abort --rollback, failed gates) is moving back: `revert`, then
 * `revert:<step>`; its status is `updating` and its previous version the one before the rollout. A
 * takeover finishes moving it back (never forward to the target).
 */
export const REVERT_STEP = 'revert'
export const isRevertStep = (step: string | null): boolean => step === REVERT_STEP || step?.startsWith(`${REVERT_STEP}:`) === true

/** What a crashed run left of a host: the previous version it recorded and its last step. */
export interface LeftUpdating {
  readonly previous: string | null
  readonly step: string | null
}

/**
 * The work on one host, with its writes: the update (or, after a crash, the
 * settling of a host left `updating`), and a revert's move back. A host's
 * outcome is stored with its `host-finished` event as one unit (recordWith).
 */
export class HostRun {
  constructor(private readonly ctx: HostRunContext) {}

  private at(): string {
    return new Date(this.ctx.clock.now()).toISOString()
  }

  async setHost(host: Host, patch: RolloutHostPatch & { status: HostStatus }, mirror: Parameters<Store['recordHostState']>[2]): Promise<void> {
    const { ctx } = this
    ctx.statuses.set(host.name, patch.status)
    // Two tables, no ordering between them: one round trip instead of two.
    await Promise.all([
      ctx.retry.write(() => ctx.store.updateRolloutHost(ctx.fence, host.name, patch)),
      ctx.retry.write(() => ctx.store.recordHostState(ctx.fence, host.name, mirror)),
    ])
  }

  /** Every command on a host goes through its fence: claimed by the first, checked by each after. */
  private fenced(host: Host, session: Session): Session {
    const { ctx } = this
    return fencedSession(session, {
      appDir: host.appDir,
      token: { storeId: ctx.fence.storeId, epoch: ctx.fence.epoch },
      label: `${ctx.rolloutId} ${ctx.owner}`,
      lost: ctx.lost,
    })
  }

  private async connect(host: Host): Promise<Session> {
    return this.fenced(host, await this.ctx.executor.connect(host, { timeoutMs: this.ctx.connectTimeoutMs }))
  }

  /** For a rollback after the connection dropped: sshd may be restarting, so try a few times. */
  private async reconnect(host: Host): Promise<Session> {
    let delay = 1_000
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.connect(host)
      } catch (error) {
        if (attempt >= RECONNECT_ATTEMPTS) throw error
        await this.ctx.clock.sleep(delay)
        delay *= 2
      }
    }
  }

  /**
   * Step changes are written in order but without holding up the host: the
   * step column only informs `status` and resume, and resume treats a step
   * that lags behind the truth safely (it re-applies or finishes a rollback).
   * The previous version is different: it must be stored before anything
   * changes, so that write is awaited. settle() waits for the queue.
   */
  private hooks(host: PlannedHost, revert = false) {
    const { ctx } = this
    let last = ''
    let queue: Promise<void> = Promise.resolve()
    let failure: unknown = null
    const enqueue = (write: () => Promise<void>) => {
      queue = queue.then(() => ctx.retry.write(write)).catch((error: unknown) => {
        failure ??= error
      })
      return queue
    }
    return {
      step: async (step: StepName, phase: Phase, note?: string) => {
        // The version step runs two commands; one step change is one write.
        if (`${phase}:${step}` === last) return
        last = `${phase}:${step}`
        void enqueue(() => ctx.store.updateRolloutHost(ctx.fence, host.name, { step: revert ? `${REVERT_STEP}:${step}` : step }))
        await ctx.log.record({ type: 'host-step', rolloutId: ctx.rolloutId, stage: host.stage, host: host.name, step, phase, ...(note ? { note } : {}), at: this.at() })
      },
      previousVersion: async (sha: string) => {
        // A move back starts from the target: the row keeps the version the host ran before the rollout.
        if (revert) return
        await enqueue(() => ctx.store.updateRolloutHost(ctx.fence, host.name, { previousVersion: sha }))
        if (failure) throw failure
      },
      settle: async () => {
        await queue
        if (failure) throw failure
      },
    }
  }

  /** Updates a pending host to the target (or settles one a crash left `updating`), then records the outcome. */
  async run(host: PlannedHost, left?: LeftUpdating): Promise<void> {
    const { ctx } = this
    if (left?.previous && isRevertStep(left.step)) {
      const why = `was being moved back to ${left.previous.slice(0, 12)} when the orchestrator stopped (last step ${left.step}); moved back by the takeover`
      await this.moveBack(host, left.previous, why, true)
      return
    }
    const started = ctx.clock.now()
    if (!left) {
      try {
        // Only if it is still pending in the store: a host is never started twice.
        const claimed = await ctx.retry.write(() => ctx.store.claimRolloutHost(ctx.fence, host.name, 'pending', { status: 'updating', startedAt: new Date(started), step: 'connect' }))
        if (!claimed) throw new Error(`host ${host.name} is no longer pending in the store: this run's view of rollout ${ctx.rolloutId} is out of date`)
        ctx.statuses.set(host.name, 'updating')
        await ctx.retry.write(() => ctx.store.recordHostState(ctx.fence, host.name, { status: 'updating' }))
      } catch (error) {
        // Not recorded, so not started: it stays what the store says, pending.
        ctx.statuses.set(host.name, 'pending')
        throw error
      }
      await ctx.log.record({ type: 'host-started', rolloutId: ctx.rolloutId, stage: host.stage, host: host.name, address: host.address, at: this.at() })
    }

    const hooks = this.hooks(host)
    let outcome: HostOutcome
    const resolving = ctx.sessions.get(host.name)
    ctx.sessions.delete(host.name)
    let session: Session | undefined = resolving && this.fenced(host, resolving)
    try {
      session ??= await this.connect(host)
    } catch (error) {
      session = undefined
      outcome = left
        ? { status: 'rollback_failed', previousVersion: left.previous, newVersion: null, failedStep: 'connect', error: `was updating when the orchestrator stopped and is unreachable now, its state is unknown: ${errorMessage(error)}` }
        : { status: 'failed', previousVersion: null, newVersion: null, failedStep: 'connect', error: errorMessage(error) }
    }
    if (session) {
      const sessionsUsed: Session[] = [session]
      const input = {
        session,
        host,
        target: ctx.target,
        settings: ctx.settings,
        clock: ctx.clock,
        hooks,
        reconnect: async () => {
          const fresh = await this.reconnect(host)
          sessionsUsed.push(fresh)
          return fresh
        },
      }
      try {
        if (left) {
          const result = await reconcileHost({ ...input, previous: left.previous, step: left.step })
          if (result.kind === 'pending') {
            await this.setHost(host, { status: 'pending', step: null, startedAt: null }, { status: 'pending' })
            return
          }
          outcome = result.outcome
        } else {
          outcome = await updateHost({ ...input, ...(ctx.kill ? { kill: ctx.kill } : {}) })
        }
      } catch (error) {
        // Taken over: the new holder settles this host from what is really on it.
        if (error instanceof FencedError) throw error
        outcome = { status: 'rollback_failed', previousVersion: left?.previous ?? null, newVersion: null, failedStep: null, error: `could not establish the host's state: ${errorMessage(error)}` }
      } finally {
        for (const s of sessionsUsed) s.close()
      }
    }
    await this.record(host, outcome!, started, hooks)
  }

  /**
   * Prepare ahead (release layout): the target's release made ready on a host of a later stage while
   * this stage bakes or waits; its own update then only activates. Nothing live changes. Recorded as
   * the step `prepared` on its pending row and a `host-prepared` event; a failure is only noted: the
   * host's own update prepares again, and fails there, in its own stage.
   */
  async prepareAhead(host: PlannedHost): Promise<void> {
    const { ctx } = this
    const started = ctx.clock.now()
    let session: Session | null = null
    let error: string | null = null
    try {
      session = await this.connect(host)
      await prepareRelease(new StepRunner(session, ctx.settings.commandTimeoutMs, { step: () => {}, previousVersion: () => {} }, undefined), host, ctx.settings, ctx.target, 'update')
      await ctx.retry.write(() => ctx.store.claimRolloutHost(ctx.fence, host.name, 'pending', { step: 'prepared' }))
    } catch (caught) {
      if (caught instanceof FencedError) throw caught
      error = sanitizeLine(errorMessage(caught)).slice(0, 300)
    } finally {
      session?.close()
    }
    await ctx.log.record({ type: 'host-prepared', rolloutId: ctx.rolloutId, stage: host.stage, host: host.name, ok: error === null, error, durationMs: ctx.clock.now() - started, at: this.at() })
  }

  /** A pending host held since the rollout began: recorded `held` with why, never connected to. */
  async heldOut(host: PlannedHost, why: string): Promise<void> {
    this.ctx.statuses.set(host.name, 'held')
    await this.record(host, { status: 'held', previousVersion: null, newVersion: null, failedStep: null, error: why }, this.ctx.clock.now(), { settle: async () => {} })
  }

  private async record(host: PlannedHost, result: HostOutcome, started: number, hooks: { settle(): Promise<void> }): Promise<void> {
    const { ctx } = this
    ctx.outcomes.set(host.name, result)
    const finished = ctx.clock.now()
    await hooks.settle()
    await this.finish(
      host,
      { status: result.status, step: result.failedStep, previousVersion: result.previousVersion, newVersion: result.newVersion, error: result.error, finishedAt: new Date(finished) },
      {
        status: result.status,
        ...(result.newVersion ? { currentVersion: result.newVersion } : {}),
        ...(result.status === 'success' ? { previousVersion: result.previousVersion } : {}),
      },
      {
      type: 'host-finished',
      rolloutId: ctx.rolloutId,
      stage: host.stage,
      host: host.name,
      status: result.status,
      previousVersion: result.previousVersion,
      newVersion: result.newVersion,
      failedStep: result.failedStep,
      error: result.error,
        durationMs: finished - started,
        at: new Date(finished).toISOString(),
      },
    )
  }

  /** A host's outcome: its row, its inventory row and its `host-finished` event, stored as one unit (never a row without its event). */
  private async finish(host: PlannedHost, patch: RolloutHostPatch & { status: HostStatus }, mirror: HostState, event: Extract<RolloutEvent, { type: 'host-finished' }>): Promise<void> {
    const { ctx } = this
    ctx.statuses.set(host.name, patch.status)
    await ctx.log.recordWith(event, (events) => ctx.store.recordHostOutcome(ctx.fence, host.name, patch, mirror, events))
  }

  /**
   * A revert (abort --rollback, failed gates) for one host: back to `previous`, its version before
   * the rollout. The row says `updating` (step `revert`, then `revert:<step>`) while it moves, and
   * keeps `previous` as its previous version, so a takeover finishes the move back (`left`: this run
   * took over a host a stopped run was moving back; every step runs again, as its HEAD may already
   * be `previous` while its service still runs the target). Moved back → `rolled_back`; not moved →
   * restored by the update's own safety net, so it stays `success` (still on the target, running),
   * with the failure noted; after a takeover, a host that could not be moved back (or reached) is
   * `rollback_failed`: what the stopped run left on it is unknown. Returns whether it was moved back.
   */
  async moveBack(host: PlannedHost, previous: string, why: string, left = false): Promise<boolean> {
    const { ctx } = this
    const started = ctx.clock.now()
    if (!left) {
      // Recorded before anything changes, and only if the row still says it runs the target.
      const claimed = await ctx.retry.write(() => ctx.store.claimRolloutHost(ctx.fence, host.name, 'success', { status: 'updating', step: REVERT_STEP }))
      if (!claimed) throw new Error(`host ${host.name} is no longer \`success\` in the store: this run's view of rollout ${ctx.rolloutId} is out of date`)
      ctx.statuses.set(host.name, 'updating')
      await ctx.retry.write(() => ctx.store.recordHostState(ctx.fence, host.name, { status: 'updating' }))
    }
    const end = (status: HostStatus, newVersion: string | null | undefined, failedStep: StepName | null, error: string) =>
      this.finish(host, { status, step: failedStep, error, ...(newVersion === undefined ? {} : { newVersion }) }, { status, ...(newVersion ? { currentVersion: newVersion } : {}) }, {
        ...{ type: 'host-finished', rolloutId: ctx.rolloutId, stage: host.stage, host: host.name, status, previousVersion: previous },
        ...{ newVersion: newVersion === undefined ? ctx.target : newVersion, failedStep, error, durationMs: ctx.clock.now() - started, at: this.at() },
      })
    let session: Session
    try {
      session = await this.connect(host)
    } catch (error) {
      // Unreachable: this run changed nothing (the row stays as it was); what a stopped run left is unknown.
      if (left) await end('rollback_failed', null, 'connect', `${why}, but it is unreachable now and its state is unknown: ${errorMessage(error)}`)
      else await end('success', undefined, null, `${why}, but could not reach it: ${errorMessage(error)}`)
      return false
    }
    const sessions = [session]
    const hooks = this.hooks(host, true)
    try {
      const outcome = await updateHost({
        ...{ session, host, target: previous as Sha, reapply: left, settings: ctx.settings, clock: ctx.clock, hooks },
        reconnect: async () => {
          const fresh = await this.connect(host)
          sessions.push(fresh)
          return fresh
        },
      })
      // On `previous`, proven (after a takeover, the safety net may have restored a HEAD already there).
      const moved = outcome.status === 'success' || outcome.status === 'skipped' || (outcome.status === 'rolled_back' && outcome.newVersion === previous)
      // Still on the target, running: nothing changed, or the safety net restored it.
      const stayed = left ? outcome.status === 'rolled_back' && outcome.newVersion === ctx.target : outcome.status !== 'rollback_failed'
      const failure = `${why}, but could not be moved back: ${outcome.error}`
      await hooks.settle()
      if (moved) await end('rolled_back', outcome.newVersion, null, why)
      else if (stayed) await end('success', left ? ctx.target : undefined, outcome.failedStep, failure)
      else await end('rollback_failed', outcome.newVersion, outcome.failedStep, failure)
      return moved
    } finally {
      for (const s of sessions) s.close()
    }
  }
}
