import type { Fence, Store } from '../store/store.js'
import type { RolloutEvent, RolloutListener } from './events.js'
import type { StoredEvent } from './request.js'
import type { StoreRetry } from './store-retry.js'

const FLUSH_MS = 200

/** Events whose facts are already in a host's row: logged in batches. */
const BATCHED = new Set<RolloutEvent['type']>(['host-step', 'host-started', 'host-finished', 'stage-delay'])

/**
 * The rollout's event log and its listeners. Host states are written before
 * their events are emitted; the log itself is written in batches (one INSERT
 * per ~200 ms, and at every stage and rollout boundary), which keeps store
 * statements per host low without losing an outcome.
 */
export class EventLog {
  private readonly buffer: StoredEvent[] = []
  private writes: Promise<void> = Promise.resolve()
  private timer: NodeJS.Timeout | null = null

  constructor(
    private readonly rolloutId: string,
    private readonly fence: Fence,
    private readonly store: Store,
    private readonly retry: StoreRetry,
    private readonly listeners: readonly RolloutListener[],
    private readonly onStored?: (events: readonly StoredEvent[], fence: Fence) => void,
  ) {}

  /** Tells the listeners only (nothing stored): for what happens while the store itself is away. */
  tell(event: RolloutEvent): void {
    for (const listener of this.listeners) listener(event)
  }

  async emit(event: RolloutEvent): Promise<void> {
    const host = 'host' in event ? event.host : null
    this.buffer.push({ rolloutId: this.rolloutId, type: event.type, host, data: event, at: new Date(event.at) })
    this.tell(event)
    if (BATCHED.has(event.type)) {
      this.timer ??= setTimeout(() => void this.flush().catch(() => {}), FLUSH_MS)
      return
    }
    await this.flush()
  }

  /** Writes buffered events in order, one statement per batch; concurrent callers queue up. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    const write = this.writes.then(async () => {
      const batch = this.buffer.splice(0)
      try {
        if (batch.length) await this.retry.write(() => this.store.appendEvents(this.fence, batch))
        if (batch.length) this.onStored?.(batch, this.fence)
      } catch (error) {
        this.buffer.unshift(...batch)
        throw error
      }
    })
    this.writes = write.catch(() => {})
    return write
  }
}
