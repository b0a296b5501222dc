import type { StoredEvent } from '../rollout/request.js'
import type { Fence, Store } from '../store/store.js'
import type { FleetConfig } from '../config/types.js'
import { startMetrics } from './metrics.js'
import { makeNotifier } from './notifier.js'
import { startTracing, traceIdOf } from './trace.js'

/** What a command that runs a rollout (start, resume, abort, tick, promote) adds to the engine. */
export interface RolloutEffects {
  /** For RolloutDeps.onStored. */
  readonly onStored: (events: readonly StoredEvent[], fence: Fence) => void
  /** In the command's finally, before the store closes: waits (bounded) for notifications, publishes metrics once more. */
  finish(): Promise<void>
}

/** With traces on, every notified event carries its rollout's trace id. */
const withTraceId = (events: readonly StoredEvent[]): StoredEvent[] =>
  events.map((e) => (e.rolloutId && typeof e.data === 'object' && e.data !== null ? { ...e, data: { ...e.data, traceId: traceIdOf(e.rolloutId) } } : e))

/**
 * What the journal feeds once an event is stored: notifications (`notify`), metrics now and every
 * 30 s (`metrics.*`), and the rollout's trace (`otel.endpoint`). None can fail the command:
 * problems are warnings on stderr (and `notification-failed` events).
 */
export function rolloutEffects(config: FleetConfig, store: Store, warn: (line: string) => void): RolloutEffects {
  const notifier = makeNotifier(store, config.notify, { warn })
  const metrics = startMetrics(store, config, warn)
  const tracing = startTracing(config, store, warn)
  return {
    onStored: tracing
      ? (events, fence) => {
          tracing.onStored(events, fence)
          notifier.onStored(withTraceId(events), fence)
        }
      : notifier.onStored,
    finish: async () => {
      await Promise.all([notifier.done(), tracing?.finish()])
      await metrics.finish()
    },
  }
}
