import { ExitCode } from '../../errors.js'
import { DatabaseClock } from '../../rollout/clock.js'
import { abortRollout, resumeRollout } from '../../rollout/engine.js'
import { makeContext, makeExecutor, owner, withStore, type GlobalFlags } from '../context.js'
import { driveHere } from '../drive.js'
import { printJson, say } from '../output.js'
import { pickRenderer } from '../renderer.js'
import { listenForStopSignals } from '../signals.js'
import { rolloutEffects } from '../rollout-effects.js'
import { formatCounts } from '../../render/plain.js'

/** `fleet rollout resume [--reason]`: continues a paused, interrupted or crashed rollout here. */
export async function rolloutResume(flags: GlobalFlags & { reason?: string }): Promise<number> {
  const ctx = makeContext(flags)
  return withStore(ctx.config, (store) => driveHere(ctx, store, (deps) => resumeRollout(deps, owner(), flags.reason ? { reason: flags.reason } : {})))
}

export async function rolloutAbort(flags: GlobalFlags & { rollback?: boolean }): Promise<number> {
  const ctx = makeContext(flags)
  return withStore(ctx.config, async (store) => {
    const signals = listenForStopSignals()
    const { listener, done } = pickRenderer(ctx)
    const effects = rolloutEffects(ctx, store)
    try {
      const result = await abortRollout(
        { store, executor: makeExecutor(ctx.config, store), clock: await DatabaseClock.of(store), listeners: [listener], stop: signals.stop, kill: signals.kill, onStored: effects.onStored },
        owner(),
        { rollback: flags.rollback === true },
      )
      if ('cleared' in result) return cleared(result.cleared)
      if (result.lost) process.stderr.write(`fleet: ${result.lost}\n`)
      // The renderer already printed the outcome line from the recorded rollout-finished event.
      if (ctx.out.json) printJson(ctx.out, { aborted: result.rolloutId, counts: result.counts, revertComplete: result.revertComplete, exitCode: result.exitCode })
      else say(ctx.out, `rollout ${result.rolloutId} aborted: ${formatCounts(result.counts)}`)
      return result.exitCode
    } finally {
      signals.dispose()
      done()
      await effects.finish()
    }
  })
}

/** Only a dead run's lease was found: it is cleared, and that is a success worth a notice. */
function cleared(message: string): number {
  process.stderr.write(`fleet: ${message}\n`)
  return ExitCode.ok
}
