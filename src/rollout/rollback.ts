import { randomBytes } from 'node:crypto'

import { ExitCode, FleetError, LockedError, UsageError, errorMessage } from '../errors.js'
import { gitHead, gitObjectsNamed } from '../remote/commands.js'
import { render } from '../remote/shell.js'
import type { Executor } from '../ssh/executor.js'
import type { Fence, Store } from '../store/store.js'
import type { Clock } from './clock.js'
import type { RolloutListener } from './events.js'
import { Journal } from './journal.js'
import type { StoredEvent } from './request.js'
import { fencedSession } from '../ssh/fenced-session.js'
import { actorOf } from './who.js'
import { anchorOf } from './clock.js'
import { ACTIVE, keepLease, leaseIsStale, refuseIfInActiveRollout, rollbackLeaseHost, rollbackLeaseId } from './lease.js'
import { updateHost, type HostOutcome, type HostSettings } from './host-update.js'
import { commitNamed, isCommitName } from './target.js'
import type { Host, Sha } from '../types.js'

export interface SingleRollbackRequest {
  readonly host: Host
  /** A commit (7-64 hex digits) to move to; default: the host's recorded previous version. */
  readonly to?: string
  readonly settings: HostSettings
  readonly connectTimeoutMs: number
  readonly owner: string
  /** Why, for the audit trail. */
  readonly reason?: string | null
}

export interface SingleRollbackResult {
  readonly host: string
  readonly from: string | null
  readonly to: string
  /** `moved`: the host was updated (see outcome); `already`: it ran the recorded previous version, nothing was done. */
  readonly action: 'moved' | 'already'
  readonly outcome: HostOutcome
  readonly exitCode: ExitCode
}

/** The version a host ran before its last change, from the inventory table or the latest rollout that touched it. */
export async function recordedPreviousVersion(store: Store, name: string): Promise<string | null> {
  const row = (await store.listHosts()).find((h) => h.name === name)
  if (row?.previousVersion) return row.previousVersion
  return store.latestPreviousVersion(name)
}

/**
 * What an unfinished rollout may still switch this host to (a stopped one resumed, or aborted with
 * --rollback): the versions its row records. Retention keeps those releases.
 */
async function unfinishedVersionsOf(store: Store, name: string): Promise<string[]> {
  const latest = await store.getRollout()
  if (!latest || ![...ACTIVE, 'interrupted'].includes(latest.state)) return []
  const row = (await store.listRolloutHosts(latest.id)).find((h) => h.name === name)
  return [row?.previousVersion, row?.newVersion].filter((v): v is string => typeof v === 'string' && v !== '')
}

/**
 * `fleet rollback <host>`: one host back to its previous version (or --to),
 * with the same steps, verification and automatic restore as a rollout, under
 * the same lease, recorded as events.
 */
export async function rollbackOneHost(
  deps: {
    readonly store: Store
    readonly executor: Executor
    readonly clock: Clock
    readonly listeners?: readonly RolloutListener[]
    readonly onStored?: (events: readonly StoredEvent[], fence: Fence) => void
  },
  request: SingleRollbackRequest,
): Promise<SingleRollbackResult> {
  const { store, clock } = deps
  const { host } = request
  if (request.to !== undefined && !isCommitName(request.to))
    throw new UsageError(`--to must be a commit SHA (7 to 64 hexadecimal digits), got ${JSON.stringify(request.to)}`)
  const wanted = request.to ?? (await recordedPreviousVersion(store, host.name))
  if (!wanted) throw new UsageError(`no previous version is recorded for ${host.name}; name one with --to <sha>`)

  const leaseId = rollbackLeaseId(host.name, randomBytes(3).toString('hex'))
  let lease = await store.acquireLease(leaseId, request.owner)
  if (!lease.acquired && rollbackLeaseHost(lease.held.rolloutId) !== null && leaseIsStale(lease.held.holder, lease.held.heartbeatAt ?? new Date(0), lease.held.now.getTime())) {
    // A `fleet rollback` that died (SIGKILL) holds nothing a person must resume: take its place.
    await store.releaseLease({ leaseId: lease.held.rolloutId!, epoch: lease.held.epoch })
    lease = await store.acquireLease(leaseId, request.owner)
  }
  if (!lease.acquired) {
    const held = lease.held
    throw new LockedError(
      `${rollbackLeaseHost(held.rolloutId) !== null ? `another \`fleet rollback\` (${held.rolloutId})` : `rollout ${held.rolloutId}`} holds the lock (${held.holder}, since ${held.since?.toISOString()}); try again when it has finished`,
    )
  }
  const fence = lease.fence
  try {
    await refuseIfInActiveRollout(store, [host.name], `\`fleet rollback ${host.name}\``)
  } catch (error) {
    await store.releaseLease(fence)
    throw error
  }
  const stopRenewing = keepLease(store, fence, { clock: anchorOf(clock) })
  try {
    // The audit trail of the latest rollout that included the host is where a person looks for it.
    const rolloutId = await store.latestRolloutOf(host.name)
    const journal = new Journal(store, fence, { told: deps.listeners ?? [], ...(deps.onStored ? { stored: deps.onStored } : {}) })
    const actor = actorOf(request.owner)
    const at = () => new Date(clock.now()).toISOString()
    // A host of an interrupted rollout (the one state in which a rollout's hosts may be moved by
    // hand) is recorded on its row, so a resume or `abort --rollback` goes on from the truth.
    const intoStoppedRollout = async (version: string | null, status: 'rolled_back' | 'rollback_failed' = 'rolled_back') => {
      const latest = await store.getRollout()
      if (latest?.state !== 'interrupted') return
      const why = `moved back by hand (\`fleet rollback\` by ${actor}${request.reason ? `: ${request.reason}` : ''})`
      await store.recordHandRollback(fence, latest.id, host.name, { status, newVersion: version, error: status === 'rolled_back' ? why : `${why}, and could not be restored: its version is unknown` })
    }
    const finished = (outcome: HostOutcome, to: string, already = false) =>
      journal.record({ type: 'host-rollback-finished', rolloutId, host: host.name, to, already, ...outcome, actor, at: at() })
    let session
    try {
      session = fencedSession(await deps.executor.connect(host, { timeoutMs: request.connectTimeoutMs }), {
        appDir: host.appDir,
        token: { storeId: fence.storeId, epoch: fence.epoch },
        label: `${leaseId} ${request.owner}`,
      })
    } catch (error) {
      const outcome: HostOutcome = { status: 'failed', previousVersion: null, newVersion: null, failedStep: 'connect', error: errorMessage(error) }
      await finished(outcome, wanted)
      return { host: host.name, from: null, to: wanted, action: 'moved', outcome, exitCode: ExitCode.rolledBack }
    }
    const sessions = [session]
    try {
      // A short SHA becomes the full one on the host itself (as an object name, never a ref); unknown or ambiguous is bad input.
      const named = await session.run(gitObjectsNamed(host.appDir, wanted), { timeoutMs: request.settings.commandTimeoutMs })
      const target = commitNamed(named.stdout, wanted, host.name)
      if (!target) throw new UsageError(`commit ${wanted} is not known on ${host.name} (no commit has that name)`)
      // "Previous" is what the host ran before the rollout that last moved it. Once it runs that
      // again, a second call has nothing to do: going back and forth is what --to is for.
      if (request.to === undefined) {
        const head = await session.run(render(gitHead(host.appDir)), { timeoutMs: request.settings.commandTimeoutMs })
        if (head.code === 0 && head.stdout.trim() === target) {
          const outcome: HostOutcome = { status: 'skipped', previousVersion: target, newVersion: target, failedStep: null, error: null }
          await finished(outcome, target, true)
          await intoStoppedRollout(target)
          return { host: host.name, from: target, to: target, action: 'already', outcome, exitCode: ExitCode.ok }
        }
      }
      await journal.record({ type: 'host-rollback-started', rolloutId, host: host.name, to: target, actor, reason: request.reason ?? null, at: at() })
      const outcome = await updateHost({
        session,
        host,
        target: target as Sha,
        reapply: true,
        protect: await unfinishedVersionsOf(store, host.name),
        settings: request.settings,
        clock,
        reconnect: async () => {
          const fresh = fencedSession(await deps.executor.connect(host, { timeoutMs: request.connectTimeoutMs }), {
            appDir: host.appDir,
            token: { storeId: fence.storeId, epoch: fence.epoch },
            label: `${leaseId} ${request.owner}`,
          })
          sessions.push(fresh)
          return fresh
        },
        hooks: {
          step: (step, phase, note) => journal.record({ type: 'host-rollback-step', rolloutId, host: host.name, step, phase, ...(note ? { note } : {}), at: at() }),
          previousVersion: () => {},
        },
      })
      await finished(outcome, target)
      // The previous version stays as recorded: it is history, not "the version before this command".
      if (outcome.status === 'success') await store.recordHostState(fence, host.name, { status: 'rolled_back', currentVersion: target })
      else if (outcome.newVersion) await store.recordHostState(fence, host.name, { status: outcome.status, currentVersion: outcome.newVersion })
      if (outcome.status === 'success') await intoStoppedRollout(target)
      else if (outcome.status === 'rollback_failed') await intoStoppedRollout(null, 'rollback_failed')
      const exitCode =
        outcome.status === 'success'
          ? ExitCode.ok
          : outcome.status === 'rollback_failed'
            ? ExitCode.rollbackFailed
            : ExitCode.rolledBack
      return { host: host.name, from: outcome.previousVersion, to: target, action: 'moved', outcome, exitCode }
    } finally {
      for (const s of sessions) s.close()
    }
  } catch (error) {
    if (error instanceof FleetError) throw error
    throw new FleetError(`rollback of ${host.name} failed: ${errorMessage(error)}`, ExitCode.internal)
  } finally {
    stopRenewing()
    await store.releaseLease(fence)
  }
}
