import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import pLimit from 'p-limit'

import { FleetError, LockedError, UsageError, ExitCode, errorMessage } from '../errors.js'
import type { Executor, Session } from '../ssh/executor.js'
import type { RolloutHostPatch, RolloutHostRecord, RolloutRecord, Store } from '../store/store.js'
import type { Clock } from './clock.js'
import { emptyCounts, type RolloutEvent, type RolloutListener, type StatusCounts } from './events.js'
import { exitCodeFor } from './exit-code.js'
import { reconcileHost, updateHost, type HostOutcome, type HostSettings, type Phase } from './host-update.js'
import { outageReason } from '../store/outage.js'
import { sanitizeLine } from '../text/sanitize.js'
import { resolveTarget } from './target.js'
import { buildPlan, failureRate, haltIsCertain, isFailure, stageSizes, type Plan, type PlannedHost } from './plan.js'
import type { Host, HostStatus, RolloutState, Sha, StepName } from './types.js'

/** A lease not renewed for this long belongs to a crashed orchestrator. */
export const LEASE_TTL_MS = 30_000
const HEARTBEAT_MS = 5_000
const EVENT_FLUSH_MS = 200
/** Connection attempts (1 s, 2 s, 4 s apart) before a rollback gives a lost host up. */
const RECONNECT_ATTEMPTS = 4

/**
 * A lease is stale when its heartbeat lapsed, or at once when its holder ran
 * on this machine and that process is gone (SIGKILL, OOM, reboot).
 */
export function leaseIsStale(holder: string | null, heartbeatAt: Date, now: number): boolean {
  if (now - heartbeatAt.getTime() > LEASE_TTL_MS) return true
  const match = holder?.match(/^[^@]*@(.+) pid (\d+)$/)
  if (!match || match[1] !== hostname()) return false
  try {
    process.kill(Number(match[2]), 0)
    return false
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

export interface RolloutDeps {
  readonly store: Store
  readonly executor: Executor
  readonly clock: Clock
  readonly listeners: readonly RolloutListener[]
  /** Graceful stop (first Ctrl-C): no new hosts start; in-flight hosts finish. */
  readonly stop?: AbortSignal
  /** Kill (second Ctrl-C): in-flight commands are killed and their hosts rolled back. */
  readonly kill?: AbortSignal
}

/** What a rollout runs with; stored with it so resume and abort need no config. */
export interface RolloutSettings {
  readonly ref: string
  readonly stages: readonly number[]
  readonly failureThreshold: number
  readonly concurrency: number
  readonly stageDelayMs: number
  readonly connectTimeoutMs: number
  readonly host: HostSettings
}

/** A new rollout: its settings, the hosts, and who asks. */
export interface RolloutRequest extends Omit<RolloutSettings, 'host'> {
  readonly hosts: readonly Host[]
  readonly settings: HostSettings
  readonly seed?: string
  /** Who runs it, for the lock and the record: user@machine pid. */
  readonly owner: string
  readonly storeRetryMs?: number
}

/** How long store writes are retried (e.g. Postgres restarting) before the run gives up, resumable. */
export const STORE_RETRY_MS = 60_000

export class StoreUnavailableError extends FleetError {
  constructor(rolloutId: string, cause: string) {
    super(
      `the database stayed unreachable (${cause}); no new hosts were started and hosts in flight finished. ` +
        `Rollout ${rolloutId} is recoverable: run \`fleet rollout resume\` once the database is back`,
      ExitCode.internal,
    )
  }
}

/** Connection-level database failures worth waiting out; anything else is a bug or bad data. */
export function isTransientStoreError(error: unknown): boolean {
  if (error instanceof FleetError) return false
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code.startsWith('E')))
    return true
  return /terminat|ECONNREFUSED|ECONNRESET|connect|timeout|closed/i.test(errorMessage(error))
}

export interface RolloutResult {
  readonly rolloutId: string
  readonly state: RolloutState
  readonly exitCode: ExitCode
  readonly sha: string
  readonly counts: StatusCounts
  readonly outcomes: ReadonlyMap<string, HostOutcome>
}

export interface ResolvedPlan {
  readonly plan: Plan
  readonly target: { readonly ref: string; readonly sha: Sha }
}

const newRolloutId = (now: Date): string =>
  `${now.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}-${randomBytes(2).toString('hex')}`

/**
 * Inventory + ref → the target commit (proven to exist) and the ordered,
 * staged plan. Touches nothing on the hosts. The default seed is the target
 * commit, so a dry run shows the canaries the real run will use and the same
 * release always starts on the same hosts.
 */
export async function planRollout(
  deps: Pick<RolloutDeps, 'executor'>,
  request: RolloutRequest,
  sessions: Map<string, Session>,
): Promise<ResolvedPlan> {
  const resolved = await resolveTarget(
    {
      ref: request.ref,
      hosts: request.hosts,
      remote: request.settings.remote,
      connectTimeoutMs: request.connectTimeoutMs,
      commandTimeoutMs: request.settings.commandTimeoutMs,
    },
    deps.executor,
  )
  const plan = buildPlan(request.hosts, request.stages, request.seed ?? resolved.sha)
  // The connection is worth keeping only for a host that is updated right away.
  if (plan.byStage.find((s) => s.length > 0)?.some((h) => h.name === resolved.host)) sessions.set(resolved.host, resolved.session)
  else resolved.session.close()
  return { plan, target: { ref: request.ref, sha: resolved.sha } }
}

/** Runs a whole staged rollout. Emits events; every host status change is written to the store first. */
export async function runRollout(deps: RolloutDeps, request: RolloutRequest): Promise<RolloutResult> {
  const { store, clock } = deps
  const startedAt = new Date(clock.now())
  const rolloutId = newRolloutId(startedAt)

  if (request.hosts.length === 0) throw new UsageError('the inventory has no active hosts: nothing to roll out')

  let lock = await store.acquireLock(rolloutId, request.owner, startedAt)
  if (
    !lock.acquired &&
    lock.rolloutId !== null &&
    !lock.rolloutId.startsWith('rollback-') &&
    leaseIsStale(lock.holder, lock.heartbeatAt, clock.now()) &&
    !(await store.getRollout(lock.rolloutId))
  ) {
    // A start that died before recording its rollout had changed no host: its lease guards nothing.
    await store.forceReleaseLock(lock.rolloutId)
    lock = await store.acquireLock(rolloutId, request.owner, startedAt)
  }
  if (!lock.acquired) {
    const stale = leaseIsStale(lock.holder, lock.heartbeatAt, clock.now())
    throw new LockedError(
      stale
        ? `rollout ${lock.rolloutId} (${lock.holder}, since ${lock.since.toISOString()}) stopped without finishing (last heartbeat ${lock.heartbeatAt.toISOString()}); run \`fleet rollout resume\` or \`fleet rollout abort\``
        : `rollout ${lock.rolloutId} is running (${lock.holder}, since ${lock.since.toISOString()})`,
    )
  }

  const sessions = new Map<string, Session>()
  const heartbeat = setInterval(() => void store.heartbeat(rolloutId).catch(() => {}), HEARTBEAT_MS)
  try {
    let resolved: ResolvedPlan
    try {
      resolved = await planRollout(deps, request, sessions)
    } catch (error) {
      for (const session of sessions.values()) session.close()
      await store.releaseLock(rolloutId)
      throw error
    }
    const settings: RolloutSettings = {
      ref: resolved.target.ref,
      stages: request.stages,
      failureThreshold: request.failureThreshold,
      concurrency: request.concurrency,
      stageDelayMs: request.stageDelayMs,
      connectTimeoutMs: request.connectTimeoutMs,
      host: request.settings,
    }
    const run = new RolloutRun(deps, settings, {
      rolloutId,
      target: resolved.target.sha,
      plan: resolved.plan,
      startedAt,
      sessions,
      storeRetryMs: request.storeRetryMs ?? STORE_RETRY_MS,
    })
    await run.record(request.owner, resolved.plan.seed)
    return await run.run(0)
  } finally {
    clearInterval(heartbeat)
    for (const session of sessions.values()) session.close()
  }
}

interface RunState {
  readonly rolloutId: string
  readonly target: Sha
  readonly plan: Plan
  readonly startedAt: Date
  readonly sessions: Map<string, Session>
  readonly storeRetryMs: number
  /** Statuses already recorded (resume); everything else starts pending. */
  readonly statuses?: ReadonlyMap<string, HostStatus>
}

/** One execution of a rollout's stages: a fresh start, or the continuation of a resumed one. */
export class RolloutRun {
  private readonly statuses: Map<string, HostStatus>
  private readonly outcomes = new Map<string, HostOutcome>()
  private halting = false
  private storeGaveUp = false
  private stopAnnounced = false
  readonly rolloutId: string

  constructor(
    private readonly deps: RolloutDeps,
    private readonly settings: RolloutSettings,
    private readonly state: RunState,
  ) {
    this.rolloutId = state.rolloutId
    this.statuses = new Map(state.statuses ?? [])
    const announce = (reason: 'signal' | 'abort') => () => {
      const cause = String((reason === 'signal' ? deps.stop : deps.kill)?.reason ?? 'signal')
      void this.emit({ type: 'rollout-stopping', rolloutId: this.rolloutId, reason, cause, at: this.at() }).catch(() => {})
    }
    deps.stop?.addEventListener('abort', announce('signal'), { once: true })
    deps.kill?.addEventListener('abort', announce('abort'), { once: true })
  }

  private get interrupted(): boolean {
    return this.deps.stop?.aborted === true || this.deps.kill?.aborted === true
  }

  /**
   * No new host starts once the stage is lost, the operator stopped us, or the
   * store gave up. While the store is only failing, a starting host waits in
   * its first write (`updating`), so nothing runs unrecorded.
   */
  private get stopping(): boolean {
    return this.halting || this.interrupted || this.storeGaveUp
  }

  private at(): string {
    return new Date(this.deps.clock.now()).toISOString()
  }

  /**
   * Every store write goes through here: retried with backoff while the
   * database is away (a Postgres restart), and meanwhile no host is started
   * blind. Gives up after storeRetryMs, leaving the rollout resumable.
   */
  private async persist<T>(write: () => Promise<T>): Promise<T> {
    const deadline = this.deps.clock.now() + this.state.storeRetryMs
    let delay = 250
    for (;;) {
      try {
        const result = await write()
        if (this.storeOutageSince !== null) this.storeBack()
        return result
      } catch (error) {
        if (!isTransientStoreError(error)) throw error
        if (this.storeGaveUp || this.deps.clock.now() + delay > deadline) {
          this.storeGaveUp = true
          throw new StoreUnavailableError(this.rolloutId, errorMessage(error))
        }
        if (this.storeOutageSince === null) this.storeAway(error, deadline)
        await this.deps.clock.sleep(delay)
        delay = Math.min(delay * 2, 5_000)
      }
    }
  }

  /** When the current database outage began; null while writes go through. */
  private storeOutageSince: number | null = null

  /**
   * The operator hears at once that writes are being retried and for how
   * long; these two events go to the listeners only (the store is the thing
   * that is down) and the outage is in the log through the hosts' timings.
   */
  private storeAway(error: unknown, deadline: number): void {
    this.storeOutageSince = this.deps.clock.now()
    const event: RolloutEvent = { type: 'store-unavailable', rolloutId: this.rolloutId, error: sanitizeLine(outageReason(error)), retryUntil: new Date(deadline).toISOString(), at: this.at() }
    for (const listener of this.deps.listeners) listener(event)
  }

  private storeBack(): void {
    const event: RolloutEvent = { type: 'store-recovered', rolloutId: this.rolloutId, outageMs: this.deps.clock.now() - this.storeOutageSince!, at: this.at() }
    this.storeOutageSince = null
    for (const listener of this.deps.listeners) listener(event)
  }

  /**
   * Appends to the event log and tells the listeners. Host states are written
   * synchronously before their events; the log itself is written in batches
   * (one INSERT per ~200 ms, and at every stage and rollout boundary), which
   * keeps store statements per host low without losing an outcome.
   */
  private async emit(event: RolloutEvent): Promise<void> {
    const host = 'host' in event ? event.host : null
    this.eventBuffer.push({ rolloutId: this.rolloutId, type: event.type, host, data: event, at: new Date(event.at) })
    for (const listener of this.deps.listeners) listener(event)
    // Host events are batched: the host's state is already in its row. Stage and rollout events flush.
    if (event.type === 'host-step' || event.type === 'host-started' || event.type === 'host-finished' || event.type === 'stage-delay') {
      this.flushTimer ??= setTimeout(() => void this.flushEvents().catch(() => {}), EVENT_FLUSH_MS)
      return
    }
    await this.flushEvents()
  }

  private readonly eventBuffer: Parameters<Store['appendEvents']>[0][number][] = []
  private eventWrites: Promise<void> = Promise.resolve()
  private flushTimer: NodeJS.Timeout | null = null

  /** Writes buffered events in order, one statement per batch; concurrent callers queue up. */
  private flushEvents(): Promise<void> {
    if (this.flushTimer) clearTimeout(this.flushTimer)
    this.flushTimer = null
    const write = this.eventWrites.then(async () => {
      const batch = this.eventBuffer.splice(0)
      try {
        if (batch.length) await this.persist(() => this.deps.store.appendEvents(batch))
      } catch (error) {
        this.eventBuffer.unshift(...batch)
        throw error
      }
    })
    this.eventWrites = write.catch(() => {})
    return write
  }

  private counts(hosts: readonly PlannedHost[] = this.state.plan.hosts): StatusCounts {
    const counts = emptyCounts()
    for (const host of hosts) counts[this.statuses.get(host.name) ?? 'pending']++
    return counts
  }

  private tally(hosts: readonly PlannedHost[]) {
    const counts = this.counts(hosts)
    return { counts, size: hosts.length, failures: counts.failed + counts.rolled_back + counts.rollback_failed, skipped: counts.skipped, finished: 0 }
  }

  /** Writes the new rollout and its planned hosts (all pending). */
  async record(owner: string, seed: string): Promise<void> {
    const { plan, startedAt, target } = this.state
    await this.persist(() =>
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
    await this.emit({
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

  /** Runs the stages from `fromStage` on, then records the outcome and releases the lock. */
  async run(fromStage: number): Promise<RolloutResult> {
    let state: RolloutState
    let error: string | null = null
    try {
      state = await this.runStages(fromStage)
      if (state === 'interrupted') error = `stopped by ${String((this.deps.kill?.aborted ? this.deps.kill : this.deps.stop)?.reason ?? 'the operator')}`
    } catch (caught) {
      // The store is gone: leave the rollout `running` with a lapsing lease, for `resume`.
      if (caught instanceof StoreUnavailableError) throw caught
      state = 'failed'
      error = errorMessage(caught)
    }
    return this.finish(state, error)
  }

  async finish(state: RolloutState, error: string | null, options: { revertHalted?: boolean } = {}): Promise<RolloutResult> {
    const counts = this.counts()
    const exitCode = exitCodeFor(state, counts, options)
    const finishedAt = new Date(this.deps.clock.now())
    await this.persist(() => this.deps.store.updateRollout(this.rolloutId, { state, finishedAt, exitCode, error }))
    await this.emit({
      type: 'rollout-finished',
      rolloutId: this.rolloutId,
      state,
      exitCode,
      counts,
      durationMs: finishedAt.getTime() - this.state.startedAt.getTime(),
      error,
      at: finishedAt.toISOString(),
    })
    await this.persist(() => this.deps.store.releaseLock(this.rolloutId))
    return { rolloutId: this.rolloutId, state, exitCode, sha: this.state.target, counts, outcomes: this.outcomes }
  }

  private async runStages(fromStage: number): Promise<RolloutState> {
    const { plan } = this.state
    const lastNonEmpty = plan.byStage.findLastIndex((s) => s.length > 0)
    for (const [stage, hosts] of plan.byStage.entries()) {
      if (stage < fromStage || hosts.length === 0) continue
      if (this.stopping) break
      await this.persist(() => this.deps.store.updateRollout(this.rolloutId, { currentStage: stage }))
      const percent = plan.stages[stage]!
      await this.emit({ type: 'stage-started', rolloutId: this.rolloutId, stage, percent, hosts: hosts.map((h) => h.name), at: this.at() })

      const limit = pLimit(this.settings.concurrency)
      const todo = hosts.filter((h) => (this.statuses.get(h.name) ?? 'pending') === 'pending')
      // allSettled: even if the store gives up, hosts in flight finish their update or rollback.
      const settled = await Promise.allSettled(todo.map((host) => limit(() => this.processHost(host, hosts))))
      const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
      if (failure) throw failure.reason

      const tally = this.tally(hosts)
      const rate = failureRate(tally)
      // The operator's stop wins: hosts their abort rolled back must not read as a halt.
      const halted = !this.interrupted && (this.halting || rate > this.settings.failureThreshold)
      await this.emit({ type: 'stage-finished', rolloutId: this.rolloutId, stage, percent, counts: tally.counts, failureRate: rate, halted, at: this.at() })
      if (this.interrupted) return 'interrupted'
      if (halted) return 'halted'
      if (stage < lastNonEmpty && this.settings.stageDelayMs > 0) {
        await this.emit({ type: 'stage-delay', rolloutId: this.rolloutId, stage, delayMs: this.settings.stageDelayMs, at: this.at() })
        await this.deps.clock.sleep(this.settings.stageDelayMs, this.deps.stop)
      }
    }
    return this.interrupted ? 'interrupted' : 'completed'
  }

  private async setHost(host: PlannedHost, patch: RolloutHostPatch & { status: HostStatus }, mirror: Parameters<Store['recordHostState']>[1]) {
    this.statuses.set(host.name, patch.status)
    // Two tables, no ordering between them: one round trip instead of two.
    await Promise.all([
      this.persist(() => this.deps.store.updateRolloutHost(this.rolloutId, host.name, patch)),
      this.persist(() => this.deps.store.recordHostState(host.name, mirror)),
    ])
  }

  private connect(host: Host): Promise<Session> {
    return this.deps.executor.connect(host, { timeoutMs: this.settings.connectTimeoutMs })
  }

  /** For a rollback after the connection dropped: sshd may be restarting, so try a few times. */
  private async reconnect(host: Host): Promise<Session> {
    let delay = 1_000
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.connect(host)
      } catch (error) {
        if (attempt >= RECONNECT_ATTEMPTS) throw error
        await this.deps.clock.sleep(delay)
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
  private hooks(host: PlannedHost) {
    const id = this.rolloutId
    let last = ''
    let queue: Promise<void> = Promise.resolve()
    let failure: unknown = null
    const enqueue = (write: () => Promise<void>) => {
      queue = queue.then(() => this.persist(write)).catch((error: unknown) => {
        failure ??= error
      })
      return queue
    }
    return {
      step: async (step: StepName, phase: Phase) => {
        // The version step runs two commands; one step change is one write.
        if (`${phase}:${step}` === last) return
        last = `${phase}:${step}`
        void enqueue(() => this.deps.store.updateRolloutHost(id, host.name, { step }))
        await this.emit({ type: 'host-step', rolloutId: id, stage: host.stage, host: host.name, step, phase, at: this.at() })
      },
      previousVersion: async (sha: string) => {
        await enqueue(() => this.deps.store.updateRolloutHost(id, host.name, { previousVersion: sha }))
        if (failure) throw failure
      },
      settle: async () => {
        await queue
        if (failure) throw failure
      },
    }
  }

  private async processHost(host: PlannedHost, stageHosts: readonly PlannedHost[], reconcile?: { previous: string | null; step: string | null }): Promise<void> {
    // A pool, not batches: this runs as soon as a slot frees, unless the stage's fate is already sealed.
    if (this.stopping && !reconcile) return
    const { clock } = this.deps
    const started = clock.now()
    if (!reconcile) {
      await this.setHost(host, { status: 'updating', startedAt: new Date(started), step: 'connect' }, { status: 'updating' })
      await this.emit({ type: 'host-started', rolloutId: this.rolloutId, stage: host.stage, host: host.name, address: host.address, at: this.at() })
    }

    let outcome: HostOutcome | null = null
    const hooks = this.hooks(host)
    let session = this.state.sessions.get(host.name)
    this.state.sessions.delete(host.name)
    try {
      session ??= await this.connect(host)
    } catch (error) {
      session = undefined
      outcome = reconcile
        ? { status: 'rollback_failed', previousVersion: reconcile.previous, newVersion: null, failedStep: 'connect', error: `was updating when the orchestrator stopped and is unreachable now, its state is unknown: ${errorMessage(error)}` }
        : { status: 'failed', previousVersion: null, newVersion: null, failedStep: 'connect', error: errorMessage(error) }
    }
    if (session) {
      const sessionsUsed: Session[] = [session]
      const input = {
        session,
        host,
        target: this.state.target,
        settings: this.settings.host,
        clock,
        hooks,
        reconnect: async () => {
          const fresh = await this.reconnect(host)
          sessionsUsed.push(fresh)
          return fresh
        },
      }
      try {
        if (reconcile) {
          const result = await reconcileHost({ ...input, previous: reconcile.previous, step: reconcile.step })
          if (result.kind === 'pending') {
            await this.setHost(host, { status: 'pending', step: null, startedAt: null }, { status: 'pending' })
            return
          }
          outcome = result.outcome
        } else {
          outcome = await updateHost({ ...input, ...(this.deps.kill ? { kill: this.deps.kill } : {}) })
        }
      } catch (error) {
        outcome = { status: 'rollback_failed', previousVersion: reconcile?.previous ?? null, newVersion: null, failedStep: null, error: `could not establish the host's state: ${errorMessage(error)}` }
      } finally {
        for (const s of sessionsUsed) s.close()
      }
    }
    const result = outcome!
    this.outcomes.set(host.name, result)
    const finished = clock.now()
    await hooks.settle()
    await this.setHost(
      host,
      {
        status: result.status,
        step: result.failedStep,
        previousVersion: result.previousVersion,
        newVersion: result.newVersion,
        error: result.error,
        finishedAt: new Date(finished),
      },
      {
        status: result.status,
        ...(result.newVersion ? { currentVersion: result.newVersion } : {}),
        ...(result.status === 'success' ? { previousVersion: result.previousVersion } : {}),
      },
    )
    await this.emit({
      type: 'host-finished',
      rolloutId: this.rolloutId,
      stage: host.stage,
      host: host.name,
      status: result.status,
      previousVersion: result.previousVersion,
      newVersion: result.newVersion,
      failedStep: result.failedStep,
      error: result.error,
      durationMs: finished - started,
      at: new Date(finished).toISOString(),
    })
    if (isFailure(result.status) && haltIsCertain(this.tally(stageHosts), this.settings.failureThreshold)) this.halting = true
  }

  /**
   * Abort --rollback: moves every host this rollout updated back to its
   * previous version, in the rollout's stages, under the same threshold.
   * A host moved back is `rolled_back`; one that could not be moved was
   * restored by the update's own safety net and stays `success` (still on
   * the target, running), with the failure noted.
   */
  async revert(rows: readonly RolloutHostRecord[]): Promise<boolean> {
    const updated = rows.filter((r) => r.status === 'success' && r.previousVersion)
    const previousOf = new Map(updated.map((r) => [r.name, r.previousVersion!]))
    const byName = new Map(this.state.plan.hosts.map((h) => [h.name, h]))
    const hosts = updated.map((r) => byName.get(r.name)!)
    const sizes = stageSizes(hosts.length, this.settings.stages)
    let offset = 0
    for (const size of sizes) {
      const stageHosts = hosts.slice(offset, offset + size)
      offset += size
      if (stageHosts.length === 0) continue
      let failures = 0
      const limit = pLimit(this.settings.concurrency)
      await Promise.allSettled(
        stageHosts.map((host) =>
          limit(async () => {
            if (this.interrupted) return
            const previous = previousOf.get(host.name)!
            let session: Session
            try {
              session = await this.connect(host)
            } catch (error) {
              failures++
              await this.setHost(host, { status: 'success', error: `abort --rollback could not reach it: ${errorMessage(error)}` }, { status: 'success' })
              return
            }
            const sessions = [session]
            const hooks = this.hooks(host)
            try {
              const outcome = await updateHost({
                session,
                host,
                target: previous as Sha,
                settings: this.settings.host,
                clock: this.deps.clock,
                hooks,
                reconnect: async () => {
                  const fresh = await this.connect(host)
                  sessions.push(fresh)
                  return fresh
                },
              })
              const status: HostStatus = outcome.status === 'success' || outcome.status === 'skipped' ? 'rolled_back' : outcome.status === 'rollback_failed' ? 'rollback_failed' : 'success'
              if (status !== 'rolled_back') failures++
              await hooks.settle()
              const error = status === 'rolled_back' ? 'rolled back by `fleet rollout abort --rollback`' : `abort --rollback failed: ${outcome.error}`
              await this.setHost(host, { status, newVersion: outcome.newVersion, error }, { status, ...(outcome.newVersion ? { currentVersion: outcome.newVersion } : {}) })
              await this.emit({
                type: 'host-finished',
                rolloutId: this.rolloutId,
                stage: host.stage,
                host: host.name,
                status,
                previousVersion: previous,
                newVersion: outcome.newVersion,
                failedStep: outcome.failedStep,
                error,
                durationMs: 0,
                at: this.at(),
              })
            } finally {
              for (const s of sessions) s.close()
            }
          }),
        ),
      )
      if (failures / stageHosts.length > this.settings.failureThreshold) return false
    }
    return true
  }

  /** Resume: settle every host left `updating` by a crash, all at once (bounded by concurrency). */
  async reconcile(updating: readonly { host: PlannedHost; previous: string | null; step: string | null }[]): Promise<void> {
    const limit = pLimit(this.settings.concurrency)
    const byStage = (stage: number) => this.state.plan.byStage[stage] ?? []
    const settled = await Promise.allSettled(updating.map((u) => limit(() => this.processHost(u.host, byStage(u.host.stage), { previous: u.previous, step: u.step }))))
    const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failure) throw failure.reason
  }
}

/** Rebuilds the plan of a stored rollout: its hosts in their recorded order and stages. */
export function storedPlan(rollout: RolloutRecord, hosts: readonly RolloutHostRecord[]): Plan {
  const planned: PlannedHost[] = [...hosts]
    .sort((a, b) => a.position - b.position)
    .map((h) => ({ name: h.name, address: h.address, port: h.port, user: h.user, appDir: h.appDir, position: h.position, stage: h.stage }))
  const byStage: PlannedHost[][] = rollout.stages.map(() => [])
  for (const host of planned) byStage[host.stage]?.push(host)
  return { seed: rollout.seed, stages: rollout.stages, byStage, hosts: planned }
}

/**
 * Finds the rollout a crashed (or killed) orchestrator left behind and takes
 * over its lease. Refuses while its holder is still heartbeating.
 */
export async function takeOverStaleRollout(deps: Pick<RolloutDeps, 'store' | 'clock'>, owner: string, verb: string): Promise<RolloutRecord> {
  const lock = await deps.store.lockState()
  const rollout = lock.rolloutId ? await deps.store.getRollout(lock.rolloutId) : null
  if (lock.rolloutId && !rollout && leaseIsStale(lock.holder, lock.heartbeatAt ?? new Date(0), deps.clock.now())) {
    await deps.store.forceReleaseLock(lock.rolloutId)
    const host = lock.rolloutId.match(/^rollback-(.*)-[0-9a-f]{6}$/)?.[1]
    // A single-host `fleet rollback` died holding the lease: say which host to check.
    if (host !== undefined)
      throw new FleetError(
        `released the lock left by an interrupted \`fleet rollback ${host}\` (${lock.holder}); that host may be half-way: run \`fleet rollback ${host}\` again`,
        ExitCode.ok,
      )
    // A start that stopped before recording its rollout had changed no host.
    throw new FleetError(`released the lock left by a \`fleet rollout start\` that stopped before changing any host (${lock.holder}); nothing to ${verb}`, ExitCode.ok)
  }
  if (!lock.rolloutId) {
    const latest = await deps.store.getRollout()
    // An interrupted rollout (Ctrl-C, SIGTERM, SIGHUP, output gone) released its lease cleanly; it goes on from where it stopped.
    if (latest?.state === 'interrupted') {
      const taken = await deps.store.acquireLock(latest.id, owner, new Date(deps.clock.now()))
      if (!taken.acquired) throw new LockedError(`rollout ${taken.rolloutId} took the lock first (${taken.holder})`)
      await deps.store.updateRollout(latest.id, { state: 'running', finishedAt: null, exitCode: null, error: null })
      return latest
    }
    throw new UsageError(
      latest ? `nothing to ${verb}: the latest rollout ${latest.id} is ${latest.state} and no rollout holds the lock` : `nothing to ${verb}: no rollout has run yet`,
    )
  }
  if (!rollout) throw new UsageError(`nothing to ${verb}: the lock names rollout ${lock.rolloutId}, which is not recorded, and its holder (${lock.holder}) is alive`)
  const heartbeatAt = lock.heartbeatAt ?? rollout.heartbeatAt
  const age = deps.clock.now() - heartbeatAt.getTime()
  if (!leaseIsStale(lock.holder, heartbeatAt, deps.clock.now()))
    throw new LockedError(
      `rollout ${rollout.id} is still running (${lock.holder}, last heartbeat ${Math.round(age / 1000)}s ago); stop it with Ctrl-C or SIGTERM where it runs`,
    )
  if (!(await deps.store.takeOverLock(rollout.id, owner, new Date(deps.clock.now()))))
    throw new LockedError(`another fleet process took over rollout ${rollout.id} first`)
  return rollout
}

/**
 * Takes over a crashed rollout, rebuilds its run from the store, records why
 * (`rollout-resumed` / `rollout-aborting`), settles every host left
 * `updating`, then hands the run to `then` — all under a renewed lease.
 */
async function takeOverAndSettle<T>(
  deps: RolloutDeps,
  owner: string,
  verb: 'resume' | 'abort',
  event: (rollout: RolloutRecord) => { type: string; data: Record<string, unknown> },
  then: (run: RolloutRun, rollout: RolloutRecord) => Promise<T>,
): Promise<T> {
  const { store, clock } = deps
  const rollout = await takeOverStaleRollout(deps, owner, verb)
  const heartbeat = setInterval(() => void store.heartbeat(rollout.id).catch(() => {}), HEARTBEAT_MS)
  try {
    const rows = await store.listRolloutHosts(rollout.id)
    const plan = storedPlan(rollout, rows)
    const run = new RolloutRun(deps, rollout.settings as unknown as RolloutSettings, {
      rolloutId: rollout.id,
      target: rollout.sha as Sha,
      plan,
      startedAt: rollout.startedAt,
      sessions: new Map(),
      storeRetryMs: STORE_RETRY_MS,
      statuses: new Map(rows.map((r) => [r.name, r.status])),
    })
    const { type, data } = event(rollout)
    await store.appendEvent({ rolloutId: rollout.id, type, data: { owner, ...data, at: new Date(clock.now()).toISOString() } })
    const byName = new Map(plan.hosts.map((h) => [h.name, h]))
    await run.reconcile(rows.filter((r) => r.status === 'updating').map((r) => ({ host: byName.get(r.name)!, previous: r.previousVersion, step: r.step })))
    return await then(run, rollout)
  } finally {
    clearInterval(heartbeat)
  }
}

/**
 * `fleet rollout abort [--rollback]`: ends a rollout a crash left behind
 * (hosts left `updating` are settled first), optionally moving every host it
 * updated back to its previous version.
 */
export function abortRollout(deps: RolloutDeps, owner: string, options: { rollback: boolean }): Promise<RolloutResult & { revertComplete: boolean }> {
  return takeOverAndSettle(deps, owner, 'abort', () => ({ type: 'rollout-aborting', data: { rollback: options.rollback } }), async (run, rollout) => {
    const revertComplete = options.rollback ? await run.revert(await deps.store.listRolloutHosts(rollout.id)) : true
    const result = await run.finish('aborted', revertComplete ? null : 'abort --rollback halted: too many hosts could not be moved back', { revertHalted: !revertComplete })
    return { ...result, revertComplete }
  })
}

/**
 * `fleet rollout resume`: settles every host a crash left `updating` (from
 * its real HEAD, service and last step over SSH), then continues from the
 * stage the rollout was in.
 */
export function resumeRollout(deps: RolloutDeps, owner: string): Promise<RolloutResult> {
  return takeOverAndSettle(deps, owner, 'resume', (rollout) => ({ type: 'rollout-resumed', data: { stage: rollout.currentStage } }), (run, rollout) => run.run(rollout.currentStage))
}
