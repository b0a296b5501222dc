import { UsageError } from '../errors.js'
import type { RolloutHostRecord, RolloutRecord } from '../store/store.js'
import { anchorOf } from './clock.js'
import type { RolloutEvent } from './events.js'
import { keepLease, takeOverRollout } from './lease.js'
import type { Plan, PlannedHost } from './plan.js'
import type { RolloutDeps, RolloutResult, RolloutSettings } from './request.js'
import { stageProgress, STAGE_EVENT_TYPES, type StageProgress } from './restore.js'
import { RolloutRun } from './run.js'
import { actorOf } from './who.js'
import { gateChanges, parseSettings, storableSettings } from './settings.js'
import type { GatesConfig } from '../gates/types.js'
import { gatesActive } from '../gates/types.js'
import { STORE_RETRY_MS } from './store-retry.js'
import type { Sha } from '../types.js'

/** Rebuilds the plan of a stored rollout: its hosts in their recorded order and stages. */
export function storedPlan(rollout: RolloutRecord, hosts: readonly RolloutHostRecord[]): Plan {
  const planned: PlannedHost[] = [...hosts]
    .sort((a, b) => a.position - b.position)
    .map((h) => ({ name: h.name, address: h.address, port: h.port, user: h.user, appDir: h.appDir, position: h.position, stage: h.stage }))
  const byStage: PlannedHost[][] = rollout.stages.map(() => [])
  for (const host of planned) byStage[host.stage]?.push(host)
  const settings = rollout.settings as { planRings?: Plan['rings']; held?: Plan['held'] }
  return { seed: rollout.seed, stages: rollout.stages, byStage, hosts: planned, rings: settings.planRings ?? [{ name: null, stages: rollout.stages.length }], held: settings.held ?? [] }
}

/** Only a dead run's lease was found and cleared; the message says whose. */
export interface Cleared {
  readonly cleared: string
}

type Verb = 'resume' | 'abort' | 'promote' | 'tick' | 'pause'

/** What the command's config says now: gates and where checks run replace the recorded ones (a fixed gate query applies). */
export interface CurrentSettings {
  readonly gates: GatesConfig | null
  readonly checksDir: string
}


/**
 * Takes over a rollout left by a crash, a signal, a pause or the last cron
 * tick, rebuilds its run from the store (hosts, and where the current stage
 * and its bake were), records why, settles every host left `updating`, then
 * hands the run to `then`, all under a renewed lease.
 */
async function takeOverAndSettle<T>(
  deps: RolloutDeps,
  owner: string,
  verb: Verb,
  event: ((rollout: RolloutRecord, changes: readonly string[]) => RolloutEvent) | null,
  then: (run: RolloutRun, rollout: RolloutRecord, settings: RolloutSettings) => Promise<T>,
  adjust: (progress: StageProgress, rollout: RolloutRecord) => StageProgress = (p) => p,
  current: CurrentSettings | null = null,
): Promise<T | Cleared> {
  const { store, clock } = deps
  const taken = await takeOverRollout(store, owner, verb)
  if ('cleared' in taken) return taken
  const { rollout, fence } = taken
  let run: RolloutRun | null = null
  const stopRenewing = keepLease(store, fence, { onLost: (error) => run?.loseLease(error), clock: anchorOf(clock) })
  try {
    const rows = await store.listRolloutHosts(rollout.id)
    const progress = adjust(stageProgress(await store.listEvents(rollout.id, STAGE_EVENT_TYPES), rollout.currentStage), rollout)
    const recorded = parseSettings(rollout.id, rollout.settings)
    const changes = current ? gateChanges(recorded.gates, current.gates) : []
    const settings = current ? { ...recorded, gates: current.gates, checksDir: current.checksDir } : recorded
    if (current && (changes.length > 0 || recorded.checksDir !== current.checksDir)) await store.updateRollout(fence, { settings: storableSettings(settings) as unknown as Record<string, unknown> })
    // Going on from a pause: the record says so at once (a re-bake is `baking`), not at the next decision.
    if (rollout.state === 'paused' && verb !== 'abort') {
      const baking = progress.stageFinishedAt !== null && gatesActive(settings.gates) && !progress.bake.passed && !progress.bake.promoted
      await store.updateRollout(fence, { state: baking ? 'baking' : 'running', finishedAt: null, exitCode: null, error: null })
    }
    run = new RolloutRun(deps, settings, {
      rolloutId: rollout.id,
      fence,
      owner,
      target: rollout.sha as Sha,
      plan: storedPlan(rollout, rows),
      startedAt: rollout.startedAt,
      sessions: new Map(),
      storeRetryMs: STORE_RETRY_MS,
      statuses: new Map(rows.map((r) => [r.name, r.status])),
      stage: rollout.currentStage,
      progress,
    })
    const at = new Date(clock.now()).toISOString()
    // A takeover from a live-looking holder is worth a line of its own in the trail: who drives it now.
    if (taken.from !== null) await run.journal({ type: 'rollout-taken-over', rolloutId: rollout.id, owner, epoch: fence.epoch, from: taken.from, by: verb, at })
    const said = event?.(rollout, changes) ?? null // a refusal (nothing to promote) comes before anything is settled
    // A person's resume, promote or abort answers the pause and promote requests sent before it.
    if (verb === 'resume' || verb === 'promote' || verb === 'abort') await run.supersedeRequests(`\`fleet rollout ${verb}\` by ${actorOf(owner)} came after it`, new Date(at))
    if (said) await run.journal(said)
    await run.settle(rows)
    return await then(run, rollout, settings)
  } catch (error) {
    // Refused before anything ran (e.g. nothing to promote): the rollout stays as it was, the lease is freed.
    if (error instanceof UsageError) await store.releaseLease(fence)
    throw error
  } finally {
    stopRenewing()
  }
}

/** A paused rollout bakes its stage again from zero when it goes on (design: gates are measured again). */
const freshBakeIfPaused =
  (now: number) =>
  (progress: StageProgress, rollout: RolloutRecord): StageProgress =>
    rollout.state === 'paused' ? { ...progress, bake: { since: now, measurements: [], passed: false, promoted: progress.bake.promoted } } : progress

/**
 * `fleet rollout abort [--rollback]`: ends a rollout a crash or a signal left
 * behind (hosts left `updating` are settled first), optionally moving every
 * host it updated back to its previous version.
 */
export function abortRollout(
  deps: RolloutDeps,
  owner: string,
  options: { rollback: boolean; reason?: string },
): Promise<(RolloutResult & { revertComplete: boolean }) | Cleared> {
  const at = () => new Date(deps.clock.now()).toISOString()
  return takeOverAndSettle(deps, owner, 'abort', (rollout) => ({ type: 'rollout-aborting', rolloutId: rollout.id, rollback: options.rollback, actor: actorOf(owner), reason: options.reason ?? null, at: at() }), async (run, rollout) => {
    const reverted = options.rollback ? await run.revert(await deps.store.listRolloutHosts(rollout.id)) : ({ kind: 'complete' } as const)
    // A stop before every host was moved back: recorded interrupted (abort --rollback again goes on), exit 130.
    if (reverted.kind === 'interrupted') {
      const result = await run.finish('interrupted', `abort --rollback interrupted: ${reverted.left} host(s) still on the target; run \`fleet rollout abort --rollback\` again`)
      return { ...result, revertComplete: false }
    }
    const halted = reverted.kind === 'halted'
    const result = await run.finish('aborted', halted ? 'abort --rollback halted: too many hosts could not be moved back' : null, { revertHalted: halted })
    return { ...result, revertComplete: !halted }
  })
}

/**
 * `fleet rollout resume`: settles every host a crash left `updating` (from
 * its real HEAD, service and last step over SSH), then continues from where
 * the rollout was; a paused one bakes its stage again.
 */
export function resumeRollout(deps: RolloutDeps, owner: string, options: { reason?: string; current?: CurrentSettings; detach?: boolean } = {}): Promise<RolloutResult | Cleared> {
  return takeOverAndSettle(
    deps,
    owner,
    'resume',
    (rollout, changes) => ({
      type: 'rollout-resumed',
      rolloutId: rollout.id,
      stage: rollout.currentStage,
      from: rollout.state,
      actor: actorOf(owner),
      reason: options.reason ?? null,
      ...(changes.length > 0 ? { changed: [...changes] } : {}),
      at: new Date(deps.clock.now()).toISOString(),
    }),
    // A rollout cron drives (started --detach or by a tick) goes back to cron once only waiting is left.
    (run, _rollout, settings) => run.run({ yieldAtWait: options.detach === true || settings.detached === true }),
    freshBakeIfPaused(deps.clock.now()),
    options.current ?? null,
  )
}

/**
 * `fleet rollout promote --reason`: ends the current stage's bake as passed
 * (a paused rollout goes on past its inconclusive or unreachable gates), then
 * continues like resume. A bake still running is only cut short with
 * `--skip-bake`.
 */
export function promoteRollout(deps: RolloutDeps, owner: string, options: { reason: string; skipBake: boolean; current?: CurrentSettings; detach?: boolean }): Promise<RolloutResult | Cleared> {
  return takeOverAndSettle(
    deps,
    owner,
    'promote',
    (rollout) => {
      if (rollout.state !== 'paused' && rollout.state !== 'baking') throw new UsageError(`nothing to promote: rollout ${rollout.id} is ${rollout.state}, not baking or paused`)
      return { type: 'rollout-promoted', rolloutId: rollout.id, stage: rollout.currentStage, actor: actorOf(owner), reason: options.reason, skipBake: options.skipBake, at: new Date(deps.clock.now()).toISOString() }
    },
    (run, _rollout, settings) => run.run({ yieldAtWait: options.detach === true || settings.detached === true }),
    (progress) => ({ ...progress, bake: { ...progress.bake, promoted: true } }),
    options.current ?? null,
  )
}

/**
 * One cron tick on the rollout in progress: go on from the store, do what is
 * due, and return as soon as only waiting is left (the next tick goes on).
 */
export function tickRollout(deps: RolloutDeps, owner: string, current: CurrentSettings | null = null): Promise<RolloutResult | Cleared> {
  return takeOverAndSettle(deps, owner, 'tick', null, (run) => run.run({ yieldAtWait: true }), undefined, current)
}

/**
 * `fleet rollout pause` between cron ticks: the request is already stored; taking the rollout over
 * lets the decision core apply it the way a running process does (hosts left updating settled first).
 */
export function pauseRollout(deps: RolloutDeps, owner: string, current: CurrentSettings): Promise<RolloutResult | Cleared> {
  // At most what a tick would do: the pending request is the first fact the run sees.
  return takeOverAndSettle(deps, owner, 'pause', null, (run) => run.run({ yieldAtWait: true }), undefined, current)
}
