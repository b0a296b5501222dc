import { randomBytes } from 'node:crypto'

import type { FailureBudget } from '../config/shape.js'
import { UsageError, errorMessage } from '../errors.js'
import type { Session } from '../ssh/executor.js'
import { anchorOf } from './clock.js'
import { keepLease, takeLeaseForStart } from './lease.js'
import { buildPlan, canaryOrder, type Plan } from './plan.js'
import type { RolloutDeps, RolloutRequest, RolloutResult, RolloutSettings } from './request.js'
import { RolloutRun } from './run.js'
import { STORE_RETRY_MS } from './store-retry.js'
import { isFullSha, resolveTarget } from './target.js'
import type { Sha } from '../types.js'

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
export async function planRollout(deps: Pick<RolloutDeps, 'executor'>, request: RolloutRequest, sessions: Map<string, Session>): Promise<ResolvedPlan> {
  // With the seed known up front (given, or the ref is a full SHA), the canaries answer; a branch
  // or tag is resolved on hosts in an order of its own, since the seed is the commit it names.
  const knownSeed = request.seed ?? (isFullSha(request.ref) ? request.ref : null)
  const known = knownSeed === null ? null : buildPlan(request.hosts, request.stages, knownSeed, request.rings ?? [])
  const resolved = await resolveTarget(
    {
      ref: request.ref,
      hosts: known?.hosts ?? canaryOrder(request.hosts, request.ref),
      remote: request.settings.remote,
      connectTimeoutMs: request.connectTimeoutMs,
      commandTimeoutMs: request.settings.commandTimeoutMs,
    },
    deps.executor,
  )
  // Kept for that host's own update, whichever stage it is in: one connection per host.
  sessions.set(resolved.host, resolved.session)
  const plan = known ?? buildPlan(request.hosts, request.stages, resolved.sha, request.rings ?? [])
  return { plan, target: { ref: request.ref, sha: resolved.sha } }
}

/**
 * Runs a whole staged rollout. Emits events; every host status change is
 * written to the store first. `detach`: return once only waiting is left (a
 * bake, a stage delay) and leave the rest to `fleet rollout tick`.
 */
export async function runRollout(deps: RolloutDeps, request: RolloutRequest, options: { detach?: boolean } = {}): Promise<RolloutResult> {
  const { store, clock } = deps
  const startedAt = new Date(clock.now())
  const rolloutId = newRolloutId(startedAt)
  if (request.hosts.length === 0) throw new UsageError('the inventory has no active hosts: nothing to roll out')

  const fence = await takeLeaseForStart(store, rolloutId, request.owner)
  const sessions = new Map<string, Session>()
  let run: RolloutRun | null = null
  const stopRenewing = keepLease(store, fence, { onLost: (error) => run?.loseLease(error), clock: anchorOf(clock) })
  try {
    let resolved: ResolvedPlan
    try {
      // `hosts disable` refuses the hosts of a start that holds the lock; one that came between the
      // inventory read and the lock is seen here.
      if (request.fromHostsTable) {
        const disabled = new Set((await store.listHosts()).filter((h) => !h.active).map((h) => h.name))
        request = { ...request, hosts: request.hosts.filter((h) => !disabled.has(h.name)) }
        if (request.hosts.length === 0) throw new UsageError('the inventory has no active hosts: nothing to roll out')
      }
      resolved = await planRollout(deps, request, sessions)
    } catch (error) {
      // Requests sent to this start (its id was the lease's) are answered: there is no rollout to apply them to.
      for (const r of await store.pendingRequests(rolloutId).catch(() => []))
        await store.settleRequest(fence, r.id, request.owner, `not applied: rollout ${rolloutId} did not start (${errorMessage(error)})`).catch(() => false)
      await store.releaseLease(fence)
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
      gates: request.gates ?? null,
      ...(request.checksDir ? { checksDir: request.checksDir } : {}),
      ...(options.detach ? { detached: true } : {}),
      ...(request.rings?.length ? { rings: request.rings } : {}),
      planRings: resolved.plan.rings,
      ...(request.windows?.length ? { windows: request.windows } : {}),
      ...(request.ignoreWindow ? { ignoreWindow: true } : {}),
      failureBudget: budgetInHosts(request.budget ?? null, resolved.plan.hosts.length),
      held: resolved.plan.held,
    }
    run = new RolloutRun(deps, settings, {
      rolloutId,
      fence,
      owner: request.owner,
      target: resolved.target.sha,
      plan: resolved.plan,
      startedAt,
      sessions,
      storeRetryMs: request.storeRetryMs ?? STORE_RETRY_MS,
    })
    await run.record(resolved.plan.seed, request.ignoredCooldown ?? null, request.ignoredWindow ?? null)
    return await run.run({ yieldAtWait: options.detach === true })
  } finally {
    stopRenewing()
    for (const session of sessions.values()) session.close()
  }
}

/** The failure budget in hosts: a share rounds down (5% of 30 hosts is 1), so "5%" never allows more than 5%. */
export const budgetInHosts = (budget: FailureBudget | null, hosts: number): number | null =>
  budget === null ? null : 'hosts' in budget ? budget.hosts : Math.floor((budget.percent * hosts) / 100)
