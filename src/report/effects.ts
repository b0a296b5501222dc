import type { StoredEvent } from '../rollout/request.js'
import type { Fence, Store } from '../store/store.js'
import type { FleetConfig } from '../config/types.js'
import { startMetrics } from './metrics.js'
import { makeNotifier } from './notifier.js'

/** What a command that runs a rollout (start, resume, abort, tick, promote) adds to the engine. */
export interface RolloutEffects {
  /** For RolloutDeps.onStored. */
  readonly onStored: (events: readonly StoredEvent[], fence: Fence) => void
  /** In the command's finally, before the store closes: waits (bounded) for notifications, publishes metrics once more. */
  finish(): Promise<void>
}

/**
 * What the journal feeds once an event is stored: notifications (`notify`), and metrics now and every
 * 30 s (`metrics.*`). Neither can fail the command: problems are warnings on stderr (and
 * `notification-failed` events).
 */
export function rolloutEffects(config: FleetConfig, store: Store, warn: (line: string) => void): RolloutEffects {
  const notifier = makeNotifier(store, config.notify, { warn })
  const metrics = startMetrics(store, config, warn)
  return {
    onStored: notifier.onStored,
    finish: async () => {
      await notifier.done()
      await metrics.finish()
    },
  }
}
