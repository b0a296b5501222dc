import { ExitCode } from '../errors.js'
import { DatabaseClock } from '../rollout/clock.js'
import type { Cleared, RolloutResult } from '../rollout/engine.js'
import type { RolloutDeps } from '../rollout/request.js'
import type { Store } from '../store/store.js'
import { makeExecutor, type Context } from './context.js'
import { pickRenderer, type RendererFactory } from './renderer.js'
import { listenForStopSignals } from './signals.js'
import { snapshotListener } from './snapshot-listener.js'
import type { IgnoredCooldown } from './cooldown-gate.js'
import { rolloutEffects } from './rollout-effects.js'

/**
 * Runs `go` (resume, promote) in this process with the live view, signals and
 * the control channel, like `rollout start`.
 */
export async function driveHere(
  ctx: Context,
  store: Store,
  go: (deps: RolloutDeps) => Promise<RolloutResult | Cleared>,
  ignored: IgnoredCooldown | null = null,
  renderer: RendererFactory = pickRenderer,
): Promise<number> {
  const signals = listenForStopSignals()
  const { listener, done } = renderer(ctx)
  const snapshot = snapshotListener(store, ctx.config.database.dir)
  // Notifications and metrics, like every command that runs a rollout.
  const effects = rolloutEffects(ctx, store, ignored)
  try {
    const result = await go({
      store,
      executor: makeExecutor(ctx.config, store),
      clock: await DatabaseClock.of(store),
      listeners: [listener, snapshot.listener],
      stop: signals.stop,
      kill: signals.kill,
      onStored: effects.onStored,
    })
    if ('cleared' in result) {
      process.stderr.write(`fleet: ${result.cleared}\n`)
      return ExitCode.ok
    }
    if (result.lost) process.stderr.write(`fleet: ${result.lost}\n`)
    return result.exitCode
  } finally {
    signals.dispose()
    done()
    await effects.finish()
    await snapshot.done()
  }
}

