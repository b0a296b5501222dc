import { ExitCode, UsageError } from '../../errors.js'
import { promoteRollout } from '../../rollout/engine.js'
import { Journal } from '../../rollout/journal.js'
import { rolloutEffects } from '../../report/effects.js'
import { currentSettings, makeContext, owner, withStore, type Context, type GlobalFlags } from '../context.js'
import { newRequestId, sendRequest, whoRunsIt } from '../../rollout/control.js'
import { driveHere, handBack } from '../drive.js'
import { printJson, say } from '../output.js'

/** user@machine: who did it, for the audit trail. */
const actor = (): string => owner().replace(/ pid \d+$/, '')

/**
 * `fleet rollout pause [--reason]`: no new host starts; hosts in flight
 * finish; the rollout is `paused` (exit 7 for ticks) until resume or promote.
 * The request is recorded first (nothing is ever dropped); a running process
 * consumes it within seconds; between cron ticks it is applied here at once.
 */
export async function rolloutPause(flags: GlobalFlags & { reason?: string }): Promise<number> {
  const ctx = makeContext(flags)
  const request = { id: newRequestId(), kind: 'pause' as const, actor: actor(), reason: flags.reason ?? null, skipBake: false }
  const running = await whoRunsIt(ctx.config)
  try {
    if (running.holder) {
      const latest = running.store ? await running.store.getRollout() : null
      await sendRequest(ctx.config, running.store, latest?.id ?? null, request)
      report(ctx, { requested: 'pause', request: request.id, holder: running.holder }, `pause requested (request ${request.id}): ${running.holder} starts no new host and pauses once its hosts in flight finish (within seconds)`)
      return ExitCode.ok
    }
  } finally {
    await running.close()
  }
  return withStore(ctx.config, async (store) => {
    const latest = await store.getRollout()
    if (!latest || !['running', 'baking', 'paused', 'interrupted'].includes(latest.state))
      throw new UsageError(latest ? `nothing to pause: the latest rollout ${latest.id} is ${latest.state}` : 'nothing to pause: no rollout has run yet')
    if (latest.state === 'paused') {
      report(ctx, { paused: latest.id, already: true }, `rollout ${latest.id} is already paused`)
      return ExitCode.ok
    }
    await store.addRequest({ ...request, rolloutId: latest.id })
    // Nobody drives it (between cron ticks): take the lease and apply the request here.
    const lease = await store.acquireLease(latest.id, owner())
    if (!lease.acquired) {
      report(ctx, { requested: 'pause', request: request.id, holder: lease.held.holder }, `pause recorded (request ${request.id}); ${lease.held.holder ?? 'the process holding rollout ' + latest.id} has stopped renewing its lease, and whoever takes the rollout over (resume, tick) applies it first`)
      return ExitCode.ok
    }
    const fence = lease.fence
    // Through the journal like every event: stored, then notified and published.
    const effects = rolloutEffects(ctx.config, store, (line) => void ctx.out.stderr.write(`fleet: ${line}\n`))
    try {
      if (await store.settleRequest(fence, request.id, owner(), 'applied')) {
        await store.updateRollout(fence, { state: 'paused' })
        const at = (await store.now()).toISOString()
        await new Journal(store, fence, { told: [], stored: effects.onStored }).record({ type: 'rollout-paused', rolloutId: latest.id, stage: latest.currentStage, reason: request.reason ?? 'paused by hand', actor: request.actor, byHand: true, at })
      }
    } finally {
      await store.releaseLease(fence)
      await effects.finish()
    }
    report(ctx, { paused: latest.id, request: request.id }, `rollout ${latest.id} paused at stage ${latest.currentStage + 1}; \`fleet rollout resume\` or \`fleet rollout promote --reason …\` continues it`)
    return ExitCode.ok
  })
}

/**
 * `fleet rollout promote [--skip-bake] --reason`: ends the current bake as
 * passed. Asks a running process, or goes on here like resume.
 */
export async function rolloutPromote(flags: GlobalFlags & { reason?: string; skipBake?: boolean; detach?: boolean }): Promise<number> {
  if (!flags.reason?.trim()) throw new UsageError('promote needs --reason <text>: it is recorded in the audit trail')
  const ctx = makeContext(flags)
  const reason = flags.reason.trim()
  const running = await whoRunsIt(ctx.config)
  try {
    if (running.holder) {
      const latest = running.store ? await running.store.getRollout() : null
      const id = newRequestId()
      await sendRequest(ctx.config, running.store, latest?.id ?? null, { id, kind: 'promote', actor: actor(), reason, skipBake: flags.skipBake === true })
      report(ctx, { requested: 'promote', request: id, holder: running.holder }, `promote requested (request ${id}): ${running.holder} ends its current bake as passed within seconds`)
      return ExitCode.ok
    }
  } finally {
    await running.close()
  }
  return withStore(ctx.config, (store) =>
    driveHere(ctx, store, (deps) => promoteRollout(deps, owner(), { reason, skipBake: flags.skipBake === true, current: currentSettings(ctx), ...(flags.detach ? { detach: true } : {}) }), undefined, handBack(ctx)),
  )
}

function report(ctx: Context, json: Record<string, unknown>, text: string): void {
  if (ctx.out.json) printJson(ctx.out, json)
  else say(ctx.out, text)
}
