import { ExitCode, UsageError } from '../../errors.js'
import { promoteRollout } from '../../rollout/engine.js'
import { keepLease } from '../../rollout/lease.js'
import { makeContext, owner, withStore, type Context, type GlobalFlags } from '../context.js'
import { sendControl, whoRunsIt } from '../control.js'
import { driveHere } from '../drive.js'
import { printJson, say } from '../output.js'

/** user@machine: who did it, for the audit trail. */
const actor = (): string => owner().replace(/ pid \d+$/, '')

/**
 * `fleet rollout pause [--reason]`: no new host starts; hosts in flight
 * finish; the rollout is `paused` (exit 7 for ticks) until resume or promote.
 * A running process is asked and acts within seconds; between cron ticks the
 * rollout is paused at once.
 */
export async function rolloutPause(flags: GlobalFlags & { reason?: string }): Promise<number> {
  const ctx = makeContext(flags)
  const reason = flags.reason ?? null
  const running = await whoRunsIt(ctx.config)
  try {
    if (running.holder) {
      const latest = running.store ? await running.store.getRollout() : null
      await sendControl(ctx.config, running.store, latest?.id ?? null, { kind: 'pause', actor: actor(), reason, at: new Date().toISOString() })
      report(ctx, { requested: 'pause', holder: running.holder }, `pause requested: ${running.holder} starts no new host and pauses once its hosts in flight finish (within seconds)`)
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
    const lease = await store.acquireLease(latest.id, owner(), new Date())
    if (!lease.acquired) throw new UsageError(`rollout ${latest.id} was taken by ${lease.holder} meanwhile; run the pause again`)
    const stopRenewing = keepLease(store, latest.id)
    try {
      await store.updateRollout(latest.id, { state: 'paused' })
      await store.appendEvent({
        rolloutId: latest.id,
        type: 'rollout-paused',
        data: { type: 'rollout-paused', rolloutId: latest.id, stage: latest.currentStage, reason: reason ? `paused by ${actor()}: ${reason}` : `paused by ${actor()}`, actor: actor(), byHand: true, at: new Date().toISOString() },
      })
    } finally {
      stopRenewing()
      await store.releaseLease(latest.id)
    }
    report(ctx, { paused: latest.id }, `rollout ${latest.id} paused at stage ${latest.currentStage + 1}; \`fleet rollout resume\` or \`fleet rollout promote --reason …\` continues it`)
    return ExitCode.ok
  })
}

/**
 * `fleet rollout promote [--skip-bake] --reason`: ends the current bake as
 * passed. Asks a running process, or goes on here like resume.
 */
export async function rolloutPromote(flags: GlobalFlags & { reason?: string; skipBake?: boolean }): Promise<number> {
  if (!flags.reason?.trim()) throw new UsageError('promote needs --reason <text>: it is recorded in the audit trail')
  const ctx = makeContext(flags)
  const reason = flags.reason.trim()
  const running = await whoRunsIt(ctx.config)
  try {
    if (running.holder) {
      const latest = running.store ? await running.store.getRollout() : null
      await sendControl(ctx.config, running.store, latest?.id ?? null, { kind: 'promote', actor: actor(), reason, skipBake: flags.skipBake === true, at: new Date().toISOString() })
      report(ctx, { requested: 'promote', holder: running.holder }, `promote requested: ${running.holder} ends its current bake as passed within seconds`)
      return ExitCode.ok
    }
  } finally {
    await running.close()
  }
  return withStore(ctx.config, (store) => driveHere(ctx, store, (deps) => promoteRollout(deps, owner(), { reason, skipBake: flags.skipBake === true })))
}

function report(ctx: Context, json: Record<string, unknown>, text: string): void {
  if (ctx.out.json) printJson(ctx.out, json)
  else say(ctx.out, text)
}
