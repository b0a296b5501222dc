import pLimit from 'p-limit'

import type { RolloutHostRecord } from '../store/store.js'
import { stageSizes, type PlannedHost } from './plan.js'
import type { RolloutSettings } from './request.js'
import type { Ending } from './run-state.js'

/** How moving hosts back ended: `halted` when a stage of it failed too often, `interrupted` when a stop came first. */
export type RevertOutcome = { readonly kind: 'complete' | 'halted' } | { readonly kind: 'interrupted'; readonly left: number }

/**
 * A revert (abort --rollback, a gate revert): every host the rollout updated (`success`) goes back
 * to its previous version, staged, under the same threshold; others (`held`, `skipped`, …) were never
 * moved and stay as they are. Once `stopped`, no further host is moved;
 * the ones left are counted, so the outcome never claims a revert it did not do.
 */
export async function revertHosts(
  rows: readonly RolloutHostRecord[],
  byName: ReadonlyMap<string, PlannedHost>,
  settings: Pick<RolloutSettings, 'stages' | 'concurrency' | 'failureThreshold'>,
  stopped: () => boolean,
  moveBack: (host: PlannedHost, previous: string) => Promise<boolean>,
): Promise<RevertOutcome> {
  const updated = rows.filter((r) => r.status === 'success' && r.previousVersion).map((r) => ({ host: byName.get(r.name)!, previous: r.previousVersion! }))
  let left = 0
  const complete = await moveBackStaged(updated, settings, (host, previous) => {
    if (!stopped()) return moveBack(host, previous)
    left++
    return Promise.resolve(true)
  })
  return left > 0 ? { kind: 'interrupted', left } : complete ? { kind: 'complete' } : { kind: 'halted' }
}

/** How a rollout whose gates failed ends after its revert: halted, and the outcome says what the revert did. */
export const gateRevertEnding = (why: string, reverted: RevertOutcome): Ending =>
  reverted.kind === 'interrupted'
    ? { state: 'halted', why: `${why}; the revert was interrupted with ${reverted.left} host(s) still on the target: \`fleet rollback <host>\` each`, revertInterrupted: true }
    : { state: 'halted', why: reverted.kind === 'halted' ? `${why}; the revert halted: too many hosts could not be moved back` : `${why}; every updated host was moved back` }

/**
 * Moves hosts back in the rollout's own stages (cut over the hosts being
 * moved), `concurrency` at a time; stops after a stage in which more than
 * `failureThreshold` could not be moved. True when every stage went through.
 */
export async function moveBackStaged(
  hosts: readonly { host: PlannedHost; previous: string }[],
  settings: Pick<RolloutSettings, 'stages' | 'concurrency' | 'failureThreshold'>,
  moveBack: (host: PlannedHost, previous: string) => Promise<boolean>,
): Promise<boolean> {
  let offset = 0
  for (const size of stageSizes(hosts.length, settings.stages)) {
    const stageHosts = hosts.slice(offset, offset + size)
    offset += size
    if (stageHosts.length === 0) continue
    const limit = pLimit(settings.concurrency)
    const moved = await Promise.allSettled(stageHosts.map(({ host, previous }) => limit(() => moveBack(host, previous))))
    const failures = moved.filter((r) => r.status === 'rejected' || !r.value).length
    if (failures / stageHosts.length > settings.failureThreshold) return false
  }
  return true
}
