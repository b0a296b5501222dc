import { randomBytes } from 'node:crypto'
import pLimit from 'p-limit'

import { FleetError, LockedError, UsageError, ExitCode, errorMessage } from '../errors.js'
import { gitLsRemote, parseLsRemote } from '../remote/commands.js'
import { render } from '../remote/shell.js'
import { checkRef } from '../remote/validate.js'
import type { Executor, Session } from '../ssh/executor.js'
import type { Store } from '../store/store.js'
import type { Clock } from './clock.js'
import { emptyCounts, type RolloutEvent, type RolloutListener, type StatusCounts } from './events.js'
import { exitCodeFor } from './exit-code.js'
import { updateHost, type HostOutcome, type HostSettings } from './host-update.js'
import { buildPlan, failureRate, haltIsCertain, isFailure, type Plan, type PlannedHost } from './plan.js'
import type { Host, HostStatus, RolloutState, Sha } from './types.js'

/** A lease not renewed for this long belongs to a crashed orchestrator. */
export const LEASE_TTL_MS = 30_000
const HEARTBEAT_MS = 5_000

export interface RolloutDeps {
  readonly store: Store
  readonly executor: Executor
  readonly clock: Clock
  readonly listeners: readonly RolloutListener[]
  /** Graceful stop (first Ctrl-C): no new hosts start; in-flight hosts finish. */
  readonly stop?: AbortSignal
  /** Hard abort (second Ctrl-C): in-flight commands are killed and their hosts rolled back. */
  readonly abort?: AbortSignal
}

export interface RolloutRequest {
  readonly hosts: readonly Host[]
  readonly ref: string
  readonly stages: readonly number[]
  readonly failureThreshold: number
  readonly concurrency: number
  readonly stageDelayMs: number
  readonly connectTimeoutMs: number
  readonly settings: HostSettings
  readonly seed?: string
  /** Who runs it, for the lock and the record: user@machine pid. */
  readonly owner: string
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
 * Resolves the ref to one commit by asking the first reachable canary
 * (`git ls-remote` with that host's own remote and credentials). The
 * connection is handed back so that host's update reuses it.
 */
export async function resolveTarget(
  ref: string,
  plan: Plan,
  deps: Pick<RolloutDeps, 'executor'>,
  request: Pick<RolloutRequest, 'connectTimeoutMs' | 'settings'>,
  sessions: Map<string, Session>,
): Promise<Sha> {
  if (/^[0-9a-f]{40}$/.test(ref) || /^[0-9a-f]{64}$/.test(ref)) return ref as Sha
  const refProblem = checkRef(ref)
  if (refProblem) throw new UsageError(`--ref ${JSON.stringify(ref)} ${refProblem}`)
  const tried: string[] = []
  for (const host of plan.hosts.slice(0, 3)) {
    let session: Session
    try {
      session = await deps.executor.connect(host, { timeoutMs: request.connectTimeoutMs })
    } catch (error) {
      tried.push(`${host.name}: ${errorMessage(error)}`)
      continue
    }
    sessions.set(host.name, session)
    const result = await session.run(render(gitLsRemote(host.appDir, request.settings.remote, ref)), {
      timeoutMs: request.settings.commandTimeoutMs,
    })
    if (result.code !== 0) {
      tried.push(`${host.name}: git ls-remote failed: ${result.stderr.trim().split('\n').slice(-2).join(' ')}`)
      continue
    }
    const parsed = parseLsRemote(result.stdout, ref)
    if ('error' in parsed) throw new UsageError(`${parsed.error} (asked ${host.name}, remote "${request.settings.remote}")`)
    return parsed.sha as Sha
  }
  throw new FleetError(`cannot resolve ref "${ref}": no host could answer (${tried.join('; ')})`, ExitCode.internal)
}

/** Inventory + ref → the ordered, staged plan with the target commit. Touches nothing on the hosts. */
export async function planRollout(
  deps: Pick<RolloutDeps, 'executor'>,
  request: RolloutRequest,
  sessions: Map<string, Session>,
  seed: string,
): Promise<ResolvedPlan> {
  const plan = buildPlan(request.hosts, request.stages, seed)
  const sha = await resolveTarget(request.ref, plan, deps, request, sessions)
  return { plan, target: { ref: request.ref, sha } }
}

/** Runs a whole staged rollout. Emits events; every host status change is written to the store first. */
export async function runRollout(deps: RolloutDeps, request: RolloutRequest): Promise<RolloutResult> {
  const { store, clock } = deps
  const startedAt = new Date(clock.now())
  const rolloutId = newRolloutId(startedAt)
  const seed = request.seed ?? rolloutId

  if (request.hosts.length === 0) throw new UsageError('the inventory has no active hosts: nothing to roll out')

  const lock = await store.acquireLock(rolloutId, request.owner, startedAt)
  if (!lock.acquired) {
    const stale = clock.now() - lock.heartbeatAt.getTime() > LEASE_TTL_MS
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
      resolved = await planRollout(deps, request, sessions, seed)
    } catch (error) {
      for (const session of sessions.values()) session.close()
      await store.releaseLock(rolloutId)
      throw error
    }
    return await new RolloutRun(deps, request, rolloutId, seed, startedAt, resolved, sessions).run()
  } finally {
    clearInterval(heartbeat)
    for (const session of sessions.values()) session.close()
  }
}

class RolloutRun {
  private readonly statuses = new Map<string, HostStatus>()
  private readonly outcomes = new Map<string, HostOutcome>()
  private halting = false

  constructor(
    private readonly deps: RolloutDeps,
    private readonly request: RolloutRequest,
    private readonly rolloutId: string,
    private readonly seed: string,
    private readonly startedAt: Date,
    private readonly resolved: ResolvedPlan,
    private readonly sessions: Map<string, Session>,
  ) {}

  private get stopping(): boolean {
    return this.halting || this.deps.stop?.aborted === true || this.deps.abort?.aborted === true
  }

  private at(): string {
    return new Date(this.deps.clock.now()).toISOString()
  }

  /** Store first, then listeners: what a renderer shows is already recorded. */
  private async emit(event: RolloutEvent): Promise<void> {
    const host = 'host' in event ? event.host : null
    await this.deps.store.appendEvent({ rolloutId: this.rolloutId, type: event.type, host, data: event, at: new Date(event.at) })
    for (const listener of this.deps.listeners) listener(event)
  }

  private counts(hosts: readonly PlannedHost[] = this.resolved.plan.hosts): StatusCounts {
    const counts = emptyCounts()
    for (const host of hosts) counts[this.statuses.get(host.name) ?? 'pending']++
    return counts
  }

  async run(): Promise<RolloutResult> {
    const { store } = this.deps
    const { plan, target } = this.resolved
    const settings = {
      ref: target.ref,
      stages: this.request.stages,
      failureThreshold: this.request.failureThreshold,
      concurrency: this.request.concurrency,
      stageDelayMs: this.request.stageDelayMs,
      connectTimeoutMs: this.request.connectTimeoutMs,
      host: this.request.settings,
    }
    await store.createRollout(
      {
        id: this.rolloutId,
        state: 'running',
        ref: target.ref,
        sha: target.sha,
        stages: plan.stages,
        seed: this.seed,
        currentStage: 0,
        settings,
        owner: this.request.owner,
        startedAt: this.startedAt,
        finishedAt: null,
        heartbeatAt: this.startedAt,
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
        status: 'pending',
        step: null,
        previousVersion: null,
        newVersion: null,
        error: null,
        startedAt: null,
        finishedAt: null,
      })),
    )
    await this.emit({
      type: 'rollout-started',
      rolloutId: this.rolloutId,
      ref: target.ref,
      sha: target.sha,
      stages: [...plan.stages],
      stageSizes: plan.byStage.map((s) => s.length),
      hosts: plan.hosts.length,
      concurrency: this.request.concurrency,
      failureThreshold: this.request.failureThreshold,
      seed: this.seed,
      at: this.at(),
    })

    let state: RolloutState = 'completed'
    let error: string | null = null
    try {
      state = await this.runStages()
    } catch (caught) {
      state = 'failed'
      error = errorMessage(caught)
    }
    const counts = this.counts()
    const exitCode = exitCodeFor(state, counts)
    const finishedAt = new Date(this.deps.clock.now())
    await store.updateRollout(this.rolloutId, { state, finishedAt, exitCode, error })
    await this.emit({
      type: 'rollout-finished',
      rolloutId: this.rolloutId,
      state,
      exitCode,
      counts,
      durationMs: finishedAt.getTime() - this.startedAt.getTime(),
      error,
      at: finishedAt.toISOString(),
    })
    await store.releaseLock(this.rolloutId)
    return { rolloutId: this.rolloutId, state, exitCode, sha: this.resolved.target.sha, counts, outcomes: this.outcomes }
  }

  private async runStages(): Promise<RolloutState> {
    const { plan } = this.resolved
    const lastNonEmpty = plan.byStage.findLastIndex((s) => s.length > 0)
    for (const [stage, hosts] of plan.byStage.entries()) {
      if (hosts.length === 0) continue
      if (this.stopping) break
      await this.deps.store.updateRollout(this.rolloutId, { currentStage: stage })
      const percent = plan.stages[stage]!
      await this.emit({ type: 'stage-started', rolloutId: this.rolloutId, stage, percent, hosts: hosts.map((h) => h.name), at: this.at() })

      const limit = pLimit(this.request.concurrency)
      await Promise.all(hosts.map((host) => limit(() => this.processHost(host, hosts))))

      const counts = this.counts(hosts)
      const tally = { size: hosts.length, failures: counts.failed + counts.rolled_back + counts.rollback_failed, skipped: counts.skipped, finished: 0 }
      const rate = failureRate(tally)
      const halted = this.halting || rate > this.request.failureThreshold
      await this.emit({ type: 'stage-finished', rolloutId: this.rolloutId, stage, percent, counts, failureRate: rate, halted, at: this.at() })
      if (halted) return 'halted'
      if (this.deps.stop?.aborted || this.deps.abort?.aborted) return 'interrupted'
      if (stage < lastNonEmpty && this.request.stageDelayMs > 0) {
        await this.emit({ type: 'stage-delay', rolloutId: this.rolloutId, stage, delayMs: this.request.stageDelayMs, at: this.at() })
        await this.deps.clock.sleep(this.request.stageDelayMs, this.deps.stop)
      }
    }
    return this.deps.stop?.aborted || this.deps.abort?.aborted ? 'interrupted' : 'completed'
  }

  private async processHost(host: PlannedHost, stageHosts: readonly PlannedHost[]): Promise<void> {
    // A pool, not batches: this runs as soon as a slot frees, unless the stage's fate is already sealed.
    if (this.stopping) return
    const { store, clock } = this.deps
    const id = this.rolloutId
    const started = clock.now()
    this.statuses.set(host.name, 'updating')
    await store.updateRolloutHost(id, host.name, { status: 'updating', startedAt: new Date(started), step: 'connect' })
    await store.recordHostState(host.name, { status: 'updating' })
    await this.emit({ type: 'host-started', rolloutId: id, stage: host.stage, host: host.name, address: host.address, at: this.at() })

    const connect = () => this.deps.executor.connect(host, { timeoutMs: this.request.connectTimeoutMs })
    let outcome: HostOutcome
    let session = this.sessions.get(host.name)
    this.sessions.delete(host.name)
    try {
      session ??= await connect()
    } catch (error) {
      session = undefined
      outcome = { status: 'failed', previousVersion: null, newVersion: null, failedStep: 'connect', error: errorMessage(error) }
    }
    if (session) {
      const live = session
      const sessionsUsed: Session[] = [live]
      try {
        outcome = await updateHost({
          session: live,
          host,
          target: this.resolved.target.sha,
          settings: this.request.settings,
          clock,
          ...(this.deps.abort ? { abort: this.deps.abort } : {}),
          reconnect: async () => {
            const fresh = await connect()
            sessionsUsed.push(fresh)
            return fresh
          },
          hooks: {
            step: async (step, phase) => {
              await store.updateRolloutHost(id, host.name, { step })
              await this.emit({ type: 'host-step', rolloutId: id, stage: host.stage, host: host.name, step, phase, at: this.at() })
            },
            previousVersion: async (sha) => {
              await store.updateRolloutHost(id, host.name, { previousVersion: sha })
            },
          },
        })
      } finally {
        for (const s of sessionsUsed) s.close()
      }
    }
    outcome = outcome!

    this.statuses.set(host.name, outcome.status)
    this.outcomes.set(host.name, outcome)
    const finished = clock.now()
    await store.updateRolloutHost(id, host.name, {
      status: outcome.status,
      step: outcome.failedStep,
      previousVersion: outcome.previousVersion,
      newVersion: outcome.newVersion,
      error: outcome.error,
      finishedAt: new Date(finished),
    })
    await store.recordHostState(host.name, {
      status: outcome.status,
      ...(outcome.newVersion ? { currentVersion: outcome.newVersion } : {}),
      ...(outcome.status === 'success' ? { previousVersion: outcome.previousVersion } : {}),
    })
    await this.emit({
      type: 'host-finished',
      rolloutId: id,
      stage: host.stage,
      host: host.name,
      status: outcome.status,
      previousVersion: outcome.previousVersion,
      newVersion: outcome.newVersion,
      failedStep: outcome.failedStep,
      error: outcome.error,
      durationMs: finished - started,
      at: new Date(finished).toISOString(),
    })

    if (isFailure(outcome.status)) {
      const counts = this.counts(stageHosts)
      const tally = { size: stageHosts.length, failures: counts.failed + counts.rolled_back + counts.rollback_failed, skipped: counts.skipped, finished: 0 }
      if (haltIsCertain(tally, this.request.failureThreshold)) this.halting = true
    }
  }
}
