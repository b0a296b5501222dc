import { ExitCode, UsageError } from '../../errors.js'
import { pauseRollout, promoteRollout } from '../../rollout/engine.js'
import { currentSettings, makeContext, owner, withStore, type Context, type GlobalFlags } from '../context.js'
import { newRequestId, sendRequest, whoRunsIt } from '../../rollout/control.js'
import { actor } from '../../rollout/who.js'
import { driveHere, handBack } from '../drive.js'
import { printJson, say } from '../output.js'

/** user@machine: who did it, for the audit trail. */

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
    // Nobody drives it (between cron ticks): take it over here; the decision core applies the request like any run's.
    const quiet = () => ({ listener: () => {}, done: () => {} })
    const code = await driveHere(ctx, store, (deps) => pauseRollout(deps, owner(), currentSettings(ctx)), quiet)
    if (code !== ExitCode.paused) return code
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
