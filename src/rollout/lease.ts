import { hostname } from 'node:os'

import { LockedError, UsageError } from '../errors.js'
import type { RolloutRecord, Store } from '../store/store.js'
import type { Clock } from './clock.js'

/**
 * The lease: one rollout (or one `fleet rollback`) at a time per database,
 * held by one process that renews it. A crashed holder's lease lapses.
 */

/** A lease not renewed for this long belongs to a crashed orchestrator. */
export const LEASE_TTL_MS = 30_000
export const HEARTBEAT_MS = 5_000

/** Lease ids of single-host `fleet rollback` runs; everything else is a rollout id. */
const ROLLBACK_LEASE = /^rollback-(.*)-[0-9a-f]{6}$/

export const rollbackLeaseId = (host: string, suffix: string): string => `rollback-${host}-${suffix}`
export const rollbackLeaseHost = (leaseId: string | null): string | null => leaseId?.match(ROLLBACK_LEASE)?.[1] ?? null

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

/** Renews the lease every HEARTBEAT_MS until the returned function is called. */
export function keepLease(store: Store, leaseId: string): () => void {
  const timer = setInterval(() => void store.heartbeat(leaseId).catch(() => {}), HEARTBEAT_MS)
  return () => clearInterval(timer)
}

/**
 * Takes the lease for a new rollout, or explains who holds it (exit 6). A
 * lease left by a start that died before recording its rollout guards
 * nothing (that start had changed no host), so it is cleared.
 */
export async function takeLeaseForStart(store: Store, clock: Clock, rolloutId: string, owner: string, now: Date): Promise<void> {
  let lease = await store.acquireLease(rolloutId, owner, now)
  if (
    !lease.acquired &&
    lease.rolloutId !== null &&
    rollbackLeaseHost(lease.rolloutId) === null &&
    leaseIsStale(lease.holder, lease.heartbeatAt, clock.now()) &&
    !(await store.getRollout(lease.rolloutId))
  ) {
    await store.releaseLease(lease.rolloutId)
    lease = await store.acquireLease(rolloutId, owner, now)
  }
  if (lease.acquired) {
    // A rollout between two cron ticks, or paused, holds no lease but is still in progress: one at a time.
    const latest = await store.getRollout()
    if (latest && latest.id !== rolloutId && ['running', 'baking', 'paused'].includes(latest.state)) {
      await store.releaseLease(rolloutId)
      throw new LockedError(
        `rollout ${latest.id} is ${latest.state} (driven by \`fleet rollout tick\` or waiting for a person); \`fleet rollout resume\`, \`promote\` or \`abort\` it first`,
      )
    }
    return
  }
  const stale = leaseIsStale(lease.holder, lease.heartbeatAt, clock.now())
  throw new LockedError(
    stale
      ? `rollout ${lease.rolloutId} (${lease.holder}, since ${lease.since.toISOString()}) stopped without finishing (last heartbeat ${lease.heartbeatAt.toISOString()}); run \`fleet rollout resume\` or \`fleet rollout abort\``
      : `rollout ${lease.rolloutId} is running (${lease.holder}, since ${lease.since.toISOString()})`,
  )
}

/** What taking over found: a rollout to carry on, or only a dead run's lease, now cleared. */
export type TakeOver = { readonly rollout: RolloutRecord } | { readonly cleared: string }

/**
 * Finds the rollout a crashed, killed or interrupted orchestrator left
 * behind and takes its lease. Refuses while its holder is still heartbeating.
 */
export async function takeOverRollout(deps: { readonly store: Store; readonly clock: Clock }, owner: string, verb: string): Promise<TakeOver> {
  const { store, clock } = deps
  const lease = await store.leaseState()
  const rollout = lease.rolloutId ? await store.getRollout(lease.rolloutId) : null
  if (lease.rolloutId && !rollout && leaseIsStale(lease.holder, lease.heartbeatAt ?? new Date(0), clock.now())) {
    await store.releaseLease(lease.rolloutId)
    const host = rollbackLeaseHost(lease.rolloutId)
    // A single-host `fleet rollback` died holding the lease: say which host to check.
    if (host !== null)
      return { cleared: `released the lock left by an interrupted \`fleet rollback ${host}\` (${lease.holder}); that host may be half-way: run \`fleet rollback ${host}\` again` }
    return { cleared: `released the lock left by a \`fleet rollout start\` that stopped before changing any host (${lease.holder}); nothing to ${verb}` }
  }
  if (!lease.rolloutId) {
    const latest = await store.getRollout()
    // An interrupted or paused rollout, or one between two cron ticks, released its lease cleanly; it goes on from where it stopped.
    if (latest && ['interrupted', 'paused', 'running', 'baking'].includes(latest.state)) {
      const taken = await store.acquireLease(latest.id, owner, new Date(clock.now()))
      if (!taken.acquired) throw new LockedError(`rollout ${taken.rolloutId} took the lock first (${taken.holder})`)
      if (latest.state === 'interrupted') await store.updateRollout(latest.id, { state: 'running', finishedAt: null, exitCode: null, error: null })
      return { rollout: latest }
    }
    throw new UsageError(
      latest ? `nothing to ${verb}: the latest rollout ${latest.id} is ${latest.state} and no rollout holds the lock` : `nothing to ${verb}: no rollout has run yet`,
    )
  }
  if (!rollout) throw new UsageError(`nothing to ${verb}: the lock names rollout ${lease.rolloutId}, which is not recorded, and its holder (${lease.holder}) is alive`)
  const heartbeatAt = lease.heartbeatAt ?? rollout.heartbeatAt
  const age = clock.now() - heartbeatAt.getTime()
  if (!leaseIsStale(lease.holder, heartbeatAt, clock.now()))
    throw new LockedError(
      `rollout ${rollout.id} is still running (${lease.holder}, last heartbeat ${Math.round(age / 1000)}s ago); stop it with Ctrl-C or SIGTERM where it runs`,
    )
  if (!(await store.takeOverLease(rollout.id, owner, new Date(clock.now()))))
    throw new LockedError(`another fleet process took over rollout ${rollout.id} first`)
  return { rollout }
}
