import type { StoredEvent } from '../rollout/request.js'
import type { Fence, Store } from '../store/store.js'
import type { Context } from './context.js'
import { recordIgnoredCooldown, type IgnoredCooldown } from './cooldown-gate.js'
import { startMetrics } from './metrics-publisher.js'
import { makeNotifier } from './notifier.js'

/** What a command that runs a rollout (start, resume, abort, tick, promote) adds to the engine. */
export interface RolloutEffects {
  /** For RolloutDeps.onStored. */
  readonly onStored: (events: readonly StoredEvent[], fence: Fence) => void
  /** In the command's finally, before the store closes: waits (bounded) for notifications, publishes metrics once more. */
  finish(): Promise<void>
}

/**
 * Notifications of stored events (`notify`), metrics now and every 30 s (`metrics.*`), and the record
 * of an ignored cooldown on the new rollout. None of them can fail the command: problems are warnings
 * on stderr (and `notification-failed` events).
 */
export function rolloutEffects(ctx: Context, store: Store, ignored: IgnoredCooldown | null = null): RolloutEffects {
  const warn = (line: string): void => void ctx.out.stderr.write(`fleet: ${line}\n`)
  const notifier = makeNotifier(store, ctx.config.notify, { warn })
  const cooldown = recordIgnoredCooldown(store, ignored, notifier.onStored, warn)
  const metrics = startMetrics(store, ctx.config, warn)
  return {
    onStored: cooldown.onStored,
    finish: async () => {
      await cooldown.done()
      await notifier.done()
      await metrics.finish()
    },
  }
}
