import { ExitCode } from '../errors.js'
import { DatabaseClock } from '../rollout/clock.js'
import type { Cleared, RolloutResult } from '../rollout/engine.js'
import type { RolloutDeps } from '../rollout/request.js'
import type { Store } from '../store/store.js'
import { rolloutEffects } from '../report/effects.js'
import { snapshotListener } from '../report/snapshot-listener.js'
import { makeExecutor, type Context } from './context.js'
import { pickRenderer, type RendererFactory } from './renderer.js'
import { listenForStopSignals } from './signals.js'
import { say } from './output.js'

/**
 * Runs one engine call (start, resume, promote, abort, a tick) in this process: the renderer, the
 * stop signals, and the journal's sinks (notifications, metrics, the embedded store's snapshot).
 * The result's exit code is the command's.
 */
export async function driveHere<R extends RolloutResult>(
  ctx: Context,
  store: Store,
  go: (deps: RolloutDeps) => Promise<R | Cleared>,
  renderer: RendererFactory = pickRenderer,
  after?: (result: R) => void,
): Promise<number> {
  const signals = listenForStopSignals()
  const { listener, done } = renderer(ctx)
  const snapshot = snapshotListener(store, ctx.config.database.dir)
  const effects = rolloutEffects(ctx.config, store, (line) => void ctx.out.stderr.write(`fleet: ${line}\n`))
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
    else after?.(result)
    return result.exitCode
  } finally {
    signals.dispose()
    done()
    await effects.finish()
    await snapshot.done()
  }
}

/** After a run that left the rest to cron (`--detach`, or a rollout cron drives): say who goes on. */
export const handBack =
  (ctx: Context) =>
  (result: RolloutResult): void => {
    if (result.state === 'running' || result.state === 'baking')
      say(ctx.out, `rollout ${result.rolloutId} is ${result.state}; \`fleet rollout tick\` (from cron) goes on, \`fleet rollout status --watch\` follows it`)
  }
