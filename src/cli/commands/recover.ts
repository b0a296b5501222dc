import { ExitCode } from '../../errors.js'
import { systemClock } from '../../rollout/clock.js'
import { abortRollout, resumeRollout } from '../../rollout/engine.js'
import { makeContext, makeExecutor, owner, withStore, type Context, type GlobalFlags } from '../context.js'
import type { Store } from '../../store/store.js'
import { printJson, say } from '../output.js'
import { pickRenderer } from '../renderer.js'
import { listenForStopSignals } from '../signals.js'
import { snapshotListener } from '../snapshot-listener.js'
import { startMetrics } from '../metrics-publisher.js'
import { makeNotifier } from '../notifier.js'
import { formatCounts } from '../../render/plain.js'

export async function rolloutResume(flags: GlobalFlags): Promise<number> {
  const ctx = makeContext(flags)
  return withStore(ctx.config, async (store) => {
    const signals = listenForStopSignals()
    const { listener, done } = pickRenderer(ctx)
    const snapshot = snapshotListener(store, ctx.config.database.dir)
    const { notifier, metrics } = sideEffects(ctx, store)
    try {
      const result = await resumeRollout(
        { store, executor: makeExecutor(ctx.config, store), clock: systemClock, listeners: [listener, snapshot.listener], stop: signals.stop, kill: signals.kill, onStored: notifier.onStored },
        owner(),
      )
      if ('cleared' in result) return cleared(result.cleared)
      return result.exitCode
    } finally {
      signals.dispose()
      done()
      await notifier.done()
      await metrics.finish()
      await snapshot.done()
    }
  })
}

export async function rolloutAbort(flags: GlobalFlags & { rollback?: boolean }): Promise<number> {
  const ctx = makeContext(flags)
  return withStore(ctx.config, async (store) => {
    const signals = listenForStopSignals()
    const { listener, done } = pickRenderer(ctx)
    const { notifier, metrics } = sideEffects(ctx, store)
    try {
      const result = await abortRollout(
        { store, executor: makeExecutor(ctx.config, store), clock: systemClock, listeners: [listener], stop: signals.stop, kill: signals.kill, onStored: notifier.onStored },
        owner(),
        { rollback: flags.rollback === true },
      )
      if ('cleared' in result) return cleared(result.cleared)
      // The renderer already printed the outcome line from the recorded rollout-finished event.
      if (ctx.out.json) printJson(ctx.out, { aborted: result.rolloutId, counts: result.counts, revertComplete: result.revertComplete, exitCode: result.exitCode })
      else say(ctx.out, `rollout ${result.rolloutId} aborted: ${formatCounts(result.counts)}`)
      return result.exitCode
    } finally {
      signals.dispose()
      done()
      await notifier.done()
      await metrics.finish()
    }
  })
}

/** Notifications of stored events and published metrics: the same for resume and abort as for start. */
function sideEffects(ctx: Context, store: Store) {
  const warn = (line: string): void => void ctx.out.stderr.write(`fleet: ${line}\n`)
  return { notifier: makeNotifier(store, ctx.config.notify, { warn }), metrics: startMetrics(store, ctx.config, warn) }
}

/** Only a dead run's lease was found: it is cleared, and that is a success worth a notice. */
function cleared(message: string): number {
  process.stderr.write(`fleet: ${message}\n`)
  return ExitCode.ok
}
