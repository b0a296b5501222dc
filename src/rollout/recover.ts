import type { RolloutHostRecord, RolloutRecord } from '../store/store.js'
import { keepLease, takeOverRollout } from './lease.js'
import type { Plan, PlannedHost } from './plan.js'
import type { RolloutDeps, RolloutResult, RolloutSettings } from './request.js'
import { RolloutRun } from './run.js'
import { STORE_RETRY_MS } from './store-retry.js'
import type { Sha } from './types.js'

/** Rebuilds the plan of a stored rollout: its hosts in their recorded order and stages. */
export function storedPlan(rollout: RolloutRecord, hosts: readonly RolloutHostRecord[]): Plan {
  const planned: PlannedHost[] = [...hosts]
    .sort((a, b) => a.position - b.position)
    .map((h) => ({ name: h.name, address: h.address, port: h.port, user: h.user, appDir: h.appDir, position: h.position, stage: h.stage }))
  const byStage: PlannedHost[][] = rollout.stages.map(() => [])
  for (const host of planned) byStage[host.stage]?.push(host)
  return { seed: rollout.seed, stages: rollout.stages, byStage, hosts: planned }
}

/** Only a dead run's lease was found and cleared; the message says whose. */
export interface Cleared {
  readonly cleared: string
}

/**
 * Takes over a crashed or interrupted rollout, rebuilds its run from the
 * store, records why (`rollout-resumed` / `rollout-aborting`), settles every
 * host left `updating`, then hands the run to `then`, all under a renewed lease.
 */
async function takeOverAndSettle<T>(
  deps: RolloutDeps,
  owner: string,
  verb: 'resume' | 'abort',
  event: (rollout: RolloutRecord) => { type: string; data: Record<string, unknown> },
  then: (run: RolloutRun, rollout: RolloutRecord) => Promise<T>,
): Promise<T | Cleared> {
  const { store, clock } = deps
  const taken = await takeOverRollout(deps, owner, verb)
  if ('cleared' in taken) return taken
  const { rollout } = taken
  const stopRenewing = keepLease(store, rollout.id)
  try {
    const rows = await store.listRolloutHosts(rollout.id)
    const run = new RolloutRun(deps, rollout.settings as unknown as RolloutSettings, {
      rolloutId: rollout.id,
      target: rollout.sha as Sha,
      plan: storedPlan(rollout, rows),
      startedAt: rollout.startedAt,
      sessions: new Map(),
      storeRetryMs: STORE_RETRY_MS,
      statuses: new Map(rows.map((r) => [r.name, r.status])),
      stage: rollout.currentStage,
    })
    const { type, data } = event(rollout)
    await store.appendEvent({ rolloutId: rollout.id, type, data: { owner, ...data, at: new Date(clock.now()).toISOString() } })
    await run.settle(rows)
    return await then(run, rollout)
  } finally {
    stopRenewing()
  }
}

/**
 * `fleet rollout abort [--rollback]`: ends a rollout a crash or a signal left
 * behind (hosts left `updating` are settled first), optionally moving every
 * host it updated back to its previous version.
 */
export function abortRollout(deps: RolloutDeps, owner: string, options: { rollback: boolean }): Promise<(RolloutResult & { revertComplete: boolean }) | Cleared> {
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
export function resumeRollout(deps: RolloutDeps, owner: string): Promise<RolloutResult | Cleared> {
  return takeOverAndSettle(deps, owner, 'resume', (rollout) => ({ type: 'rollout-resumed', data: { stage: rollout.currentStage } }), (run) => run.run())
}
