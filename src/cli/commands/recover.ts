import { abortRollout, resumeRollout } from '../../rollout/engine.js'
import { formatCounts } from '../../render/plain.js'
import { currentSettings, makeContext, owner, withStore, type GlobalFlags } from '../context.js'
import { driveHere, handBack } from '../drive.js'
import { printJson, say } from '../output.js'

/** `fleet rollout resume [--reason] [--detach]`: continues a paused, interrupted or crashed rollout, with the config's gates as they are now. */
export async function rolloutResume(flags: GlobalFlags & { reason?: string; detach?: boolean }): Promise<number> {
  const ctx = makeContext(flags)
  return withStore(ctx.config, (store) =>
    driveHere(
      ctx,
      store,
      (deps) => resumeRollout(deps, owner(), { ...(flags.reason ? { reason: flags.reason } : {}), current: currentSettings(ctx), ...(flags.detach ? { detach: true } : {}) }),
      undefined,
      handBack(ctx),
    ),
  )
}

/** `fleet rollout abort [--rollback] [--reason]`: ends the rollout; with --rollback, moves every updated host back. */
export async function rolloutAbort(flags: GlobalFlags & { rollback?: boolean; reason?: string }): Promise<number> {
  const ctx = makeContext(flags)
  return withStore(ctx.config, (store) =>
    driveHere(
      ctx,
      store,
      (deps) => abortRollout(deps, owner(), { rollback: flags.rollback === true, ...(flags.reason ? { reason: flags.reason } : {}) }),
      undefined,
      (result) => {
        // The renderer already printed the outcome line from the recorded rollout-finished event.
        if (ctx.out.json) printJson(ctx.out, { aborted: result.rolloutId, state: result.state, counts: result.counts, revertComplete: result.revertComplete, exitCode: result.exitCode })
        else say(ctx.out, `rollout ${result.rolloutId} ${result.state === 'aborted' ? 'aborted' : result.state}: ${formatCounts(result.counts)}`)
      },
    ),
  )
}
