import type { EventWriter, Fence } from '../store/store.js'
import type { RolloutEvent, RolloutListener } from './events.js'
import type { StoredEvent } from './request.js'

const FLUSH_MS = 200

/** Events whose facts are already in a host's row: stored in batches. */
const BATCHED = new Set<RolloutEvent['type']>(['host-step', 'host-started', 'host-finished', 'stage-delay'])

/** Who hears of an event: `told` at once (the live view, `--json`), `stored` once it is in the store (notifications, metrics). */
export interface JournalSinks {
  readonly told: readonly RolloutListener[]
  readonly stored?: (events: readonly StoredEvent[], fence: Fence) => void
}

/** How a write is retried (a run's StoreRetry); a one-shot command writes once. */
export type WriteRetry = <T>(write: () => Promise<T>) => Promise<T>

/**
 * The one road every event takes, from a run or from a command (a pause between ticks, a manual
 * rollback, an ignored cooldown): stored under the writer's fence, then told to the live view and
 * `--json`, then, once stored, handed to notifications and metrics with the row's id (their
 * idempotency key). Host states are written before their events; host progress is written in
 * batches (one INSERT per ~200 ms, and at every other event), which keeps store statements per host
 * low without losing an outcome.
 */
export class Journal {
  private readonly buffer: StoredEvent[] = []
  private writes: Promise<void> = Promise.resolve()
  private timer: NodeJS.Timeout | null = null

  constructor(
    private readonly store: EventWriter,
    private readonly fence: Fence,
    private readonly sinks: JournalSinks,
    private readonly retry: WriteRetry = (write) => write(),
  ) {}

  /** Tells the listeners only (nothing stored): for what happens while the store itself is away, or once the rollout is lost. */
  tell(event: RolloutEvent): void {
    for (const listener of this.sinks.told) listener(event)
  }

  async record(event: RolloutEvent): Promise<void> {
    const host = 'host' in event ? event.host : null
    this.buffer.push({ rolloutId: event.rolloutId, type: event.type, host, data: event, at: new Date(event.at) })
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
      if (batch.length === 0) return
      let ids: string[]
      try {
        ids = await this.retry(() => this.store.appendEvents(this.fence, batch))
      } catch (error) {
        this.buffer.unshift(...batch)
        throw error
      }
      this.sinks.stored?.(
        batch.map((e, i) => ({ ...e, id: ids[i] ?? null })),
        this.fence,
      )
    })
    this.writes = write.catch(() => {})
    return write
  }
}
