import { hostname } from 'node:os'

import { LockedError, UsageError } from '../errors.js'
import { LEASE_TTL_MS, LostLeaseError, type Fence, type LeaseState } from '../store/lease.js'
import type { RolloutRecord, Store } from '../store/store.js'

/**
 * The lease: one rollout (or one `fleet rollback`) at a time per database,
 * held by one process that renews it, fenced by an epoch (store/lease.ts).
 * Staleness is judged on the database's clock, never on this machine's.
 */

export { LEASE_TTL_MS }
export const HEARTBEAT_MS = 5_000

/** Lease ids of single-host `fleet rollback` runs; everything else is a rollout id. */
const ROLLBACK_LEASE = /^rollback-(.*)-[0-9a-f]{6}$/

export const rollbackLeaseId = (host: string, suffix: string): string => `rollback-${host}-${suffix}`
export const rollbackLeaseHost = (leaseId: string | null): string | null => leaseId?.match(ROLLBACK_LEASE)?.[1] ?? null

/** The holder ran on this machine and its process is gone (SIGKILL, OOM, reboot): no need to wait for the TTL. */
export function holderDeadHere(holder: string | null): boolean {
  const match = holder?.match(/^[^@]*@(.+) pid (\d+)$/)
  if (!match || match[1] !== hostname()) return false
  try {
    process.kill(Number(match[2]), 0)
    return false
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

/**
 * A lease is stale when its heartbeat lapsed by `dbNow` (the database's
 * clock, read with the row), or at once when its holder ran on this machine
 * and that process is gone.
 */
export function leaseIsStale(holder: string | null, heartbeatAt: Date, dbNow: number): boolean {
  return dbNow - heartbeatAt.getTime() > LEASE_TTL_MS || holderDeadHere(holder)
}

const stateIsStale = (lease: LeaseState): boolean => leaseIsStale(lease.holder, lease.heartbeatAt ?? new Date(0), lease.now.getTime())

/** Something that wants the database's clock, refreshed with every heartbeat. */
export interface ClockAnchor {
  anchor(dbNow: Date, sentAt: number, receivedAt: number): void
}

/**
 * Renews the lease every HEARTBEAT_MS until the returned function is called.
 * When a renewal finds the lease at another epoch, `onLost` is called once
 * with who holds it now: the holder must stop at once.
 */
export function keepLease(store: Store, fence: Fence, options: { onLost?: (error: LostLeaseError) => void; clock?: ClockAnchor } = {}): () => void {
  let lost = false
  const timer = setInterval(() => {
    if (lost) return
    const sentAt = Date.now()
    void store
      .heartbeat(fence)
      .then(async ({ held, now }) => {
        options.clock?.anchor(now, sentAt, Date.now())
        if (held || lost) return
        lost = true
        options.onLost?.(await store.lostLease(fence))
      })
      .catch(() => {}) // the store is away: writes find out (and retry) on their own
  }, HEARTBEAT_MS)
  timer.unref()
  return () => clearInterval(timer)
}

/** Who holds a lease, in words, for exit 6. */
function heldBy(lease: LeaseState): string {
  const age = Math.max(0, Math.round((lease.now.getTime() - (lease.heartbeatAt?.getTime() ?? 0)) / 1000))
  return `${lease.holder ?? 'unknown'}, since ${lease.since?.toISOString() ?? '?'}, last heartbeat ${age}s ago by the database's clock`
}

/**
 * Takes the lease for a new rollout, or explains who holds it (exit 6). A
 * lease left by a start that died before recording its rollout guards
 * nothing (that start had changed no host), so it is cleared.
 */
export async function takeLeaseForStart(store: Store, rolloutId: string, owner: string): Promise<Fence> {
  let lease = await store.acquireLease(rolloutId, owner)
  if (
    !lease.acquired &&
    lease.held.rolloutId !== null &&
    rollbackLeaseHost(lease.held.rolloutId) === null &&
    stateIsStale(lease.held) &&
    !(await store.getRollout(lease.held.rolloutId))
  ) {
    await store.releaseLease({ leaseId: lease.held.rolloutId, epoch: lease.held.epoch })
    lease = await store.acquireLease(rolloutId, owner)
  }
  if (lease.acquired) {
    // A rollout between two cron ticks, paused or interrupted holds no lease but is still in progress: one at a time.
    const latest = await store.getRollout()
    if (latest && latest.id !== rolloutId && ACTIVE.includes(latest.state)) {
      await store.releaseLease(lease.fence)
      throw new LockedError(
        `rollout ${latest.id} is ${latest.state} (driven by \`fleet rollout tick\` or waiting for a person); \`fleet rollout resume\`, \`promote\` or \`abort\` it first`,
      )
    }
    return lease.fence
  }
  const held = lease.held
  throw new LockedError(
    stateIsStale(held)
      ? `rollout ${held.rolloutId} (${heldBy(held)}) stopped without finishing; run \`fleet rollout resume\` or \`fleet rollout abort\``
      : `${rollbackLeaseHost(held.rolloutId) !== null ? `\`fleet rollback ${rollbackLeaseHost(held.rolloutId)}\`` : `rollout ${held.rolloutId}`} is running (${heldBy(held)})`,
  )
}

/**
 * A rollout in progress, whether a process drives it now or it waits between cron ticks or for a
 * person: no other rollout starts, and no manual action touches its hosts.
 */
export const ACTIVE: readonly string[] = ['running', 'baking', 'paused']
/** What resume, promote, abort and tick can take over: an active rollout, or one a stop interrupted. */
const RESUMABLE: readonly string[] = [...ACTIVE, 'interrupted']

/** What taking over found: a rollout to carry on under a new fence, or only a dead run's lease, now cleared. */
export type TakeOver = { readonly rollout: RolloutRecord; readonly fence: Fence; readonly from: string | null } | { readonly cleared: string }

/**
 * Finds the rollout a crashed, frozen, killed or interrupted orchestrator
 * (or the last cron tick) left behind and takes its lease at a new epoch:
 * from then on the old holder's writes fail. Refuses while its holder is
 * still heartbeating by the database's clock.
 */
export async function takeOverRollout(store: Store, owner: string, verb: string): Promise<TakeOver> {
  const lease = await store.leaseState()
  const rollout = lease.rolloutId ? await store.getRollout(lease.rolloutId) : null
  if (lease.rolloutId && !rollout && stateIsStale(lease)) {
    await store.releaseLease({ leaseId: lease.rolloutId, epoch: lease.epoch })
    const host = rollbackLeaseHost(lease.rolloutId)
    // A single-host `fleet rollback` died holding the lease: say which host to check.
    if (host !== null)
      return { cleared: `released the lock left by an interrupted \`fleet rollback ${host}\` (${lease.holder}); that host may be half-way: run \`fleet rollback ${host}\` again` }
    return { cleared: `released the lock left by a \`fleet rollout start\` that stopped before changing any host (${lease.holder}); nothing to ${verb}` }
  }
  if (!lease.rolloutId) {
    const latest = await store.getRollout()
    // An interrupted or paused rollout, or one between two cron ticks, released its lease cleanly; it goes on from where it stopped.
    if (latest && RESUMABLE.includes(latest.state)) {
      const taken = await store.acquireLease(latest.id, owner)
      if (!taken.acquired) throw new LockedError(`rollout ${taken.held.rolloutId} took the lock first (${taken.held.holder})`)
      if (latest.state === 'interrupted') await store.updateRollout(taken.fence, { state: 'running', finishedAt: null, exitCode: null, error: null })
      return { rollout: (await store.getRollout(latest.id))!, fence: taken.fence, from: null }
    }
    throw new UsageError(
      latest ? `nothing to ${verb}: the latest rollout ${latest.id} is ${latest.state} and no rollout holds the lock` : `nothing to ${verb}: no rollout has run yet`,
    )
  }
  if (!rollout && rollbackLeaseHost(lease.rolloutId) !== null)
    throw new LockedError(`\`fleet rollback ${rollbackLeaseHost(lease.rolloutId)}\` holds the lock (${heldBy(lease)}); try again when it has finished`)
  if (!rollout) throw new LockedError(`rollout ${lease.rolloutId} is starting (${heldBy(lease)}); try again in a moment`)
  if (!stateIsStale(lease)) throw new LockedError(`rollout ${rollout.id} is still running (${heldBy(lease)}); stop it with Ctrl-C or SIGTERM where it runs`)
  const fence = await store.takeOverLease({ leaseId: rollout.id, epoch: lease.epoch }, owner, holderDeadHere(lease.holder))
  if (!fence) throw new LockedError(`rollout ${rollout.id}: its holder renewed the lease or another fleet process took it over first (${(await store.leaseState()).holder})`)
  return { rollout: (await store.getRollout(rollout.id))!, fence, from: lease.holder }
}

/**
 * The rule for manual actions (`fleet rollback <host>`, `hosts disable`, `hosts update`, `hosts
 * import`): a host that belongs to a rollout in progress (driven now, between cron ticks, or paused)
 * is that rollout's. They are refused (exit 6, naming the rollout) until it ends or is aborted, so
 * what the rollout records of every host stays true. While a start holds the lease but has not
 * recorded its plan yet, any host may be in it: refused too. The inventory commands also refuse the
 * hosts of an interrupted rollout (a resume would update a host disabled meanwhile); `fleet rollback`
 * may move one back, and is recorded on that rollout's row (rollback.ts).
 */
export async function refuseIfInActiveRollout(store: Store, names: readonly string[], what: string, options: { readonly interrupted?: boolean } = {}): Promise<void> {
  const lease = await store.leaseState()
  if (lease.rolloutId !== null && rollbackLeaseHost(lease.rolloutId) === null && !stateIsStale(lease) && !(await store.getRollout(lease.rolloutId)))
    throw new LockedError(`rollout ${lease.rolloutId} is starting (${heldBy(lease)}) and has not recorded its hosts yet: ${what} could change one behind its back; try again in a moment`)
  const latest = await store.getRollout()
  if (!latest || !(options.interrupted ? RESUMABLE : ACTIVE).includes(latest.state)) return
  const inIt = new Set((await store.listRolloutHostStates(latest.id)).map((h) => h.name))
  const touched = names.filter((n) => inIt.has(n))
  if (touched.length === 0) return
  throw new LockedError(
    `${touched.slice(0, 3).join(', ')}${touched.length > 3 ? ` and ${touched.length - 3} more` : ''} ${touched.length === 1 ? 'is' : 'are'} part of rollout ${latest.id}, which is ${latest.state}: ` +
      `${what} would change ${touched.length === 1 ? 'a host' : 'hosts'} behind its back. ${latest.state === 'interrupted' ? 'Resume it' : 'Let it finish'}, or end it with \`fleet rollout abort [--rollback]\`, then try again`,
  )
}
