import type { EventWriter, Fence } from '../store/store.js'
import type { RolloutEvent, RolloutListener } from './events.js'
import type { StoredEvent } from './request.js'

const FLUSH_MS = 200

/** Progress whose facts are already in a host's row: stored in batches. Never an outcome (see recordWith). */
const BATCHED = new Set<RolloutEvent['type']>(['host-step', 'host-started', 'stage-delay'])

/** Who hears of an event: `told` at once (the live view, `--json`), `stored` once it is in the store (notifications, metrics). */
export interface JournalSinks {
  readonly told: readonly RolloutListener[]
  readonly stored?: (events: readonly StoredEvent[], fence: Fence) => void
}

/** How a write is retried (a run's StoreRetry); a one-shot command writes once. */
export type WriteRetry = <T>(write: () => Promise<T>) => Promise<T>

/** Stores events in order (for an outcome: with the row that records it, in one transaction); their ids. */
export type EventsWrite = (events: readonly StoredEvent[]) => Promise<string[]>

/** An event waiting to be told; an outcome is ready once stored. */
interface Telling {
  readonly event: RolloutEvent
  ready: boolean
}

const stored = (event: RolloutEvent): StoredEvent => ({ rolloutId: event.rolloutId, type: event.type, host: 'host' in event ? event.host : null, data: event, at: new Date(event.at) })

/**
 * The one road every event takes, from a run or from a command (a pause between ticks, a manual
 * rollback, an ignored cooldown): stored under the writer's fence, then told to the live view and
 * `--json`, then, once stored, handed to notifications and metrics with the row's id (their
 * idempotency key). Host progress is written in batches (one INSERT per ~200 ms, and at every other
 * event), which keeps store statements per host low; a host's outcome (`host-finished`) is written
 * in one transaction with the row that records it (recordWith), so it is never lost. Once the run
 * lost its rollout (`rollout-lost`), this journal tells and stores nothing more.
 */
export class Journal {
  /** Events not stored yet, in order; an outcome carries the write that stores it with its row. */
  private readonly buffer: { readonly event: StoredEvent; readonly write?: EventsWrite; readonly telling?: Telling }[] = []
  /**
   * Events not told yet, in the same order: an outcome is told once stored (a line about an outcome
   * is always true of the record), and what came after it waits for it, so the live view and the
   * stored trail have one order.
   */
  private readonly untold: Telling[] = []
  private writes: Promise<void> = Promise.resolve()
  private timer: NodeJS.Timeout | null = null
  private silenced = false

  constructor(
    private readonly store: EventWriter,
    private readonly fence: Fence,
    private readonly sinks: JournalSinks,
    private readonly retry: WriteRetry = (write) => write(),
  ) {}

  /**
   * Tells the listeners only (nothing stored): for what happens while the store itself is away, and
   * the loss of the rollout, the last thing this journal tells.
   */
  tell(event: RolloutEvent): void {
    if (this.silenced) return
    if (event.type === 'rollout-lost') this.silenced = true
    for (const listener of this.sinks.told) listener(event)
  }

  /** Tells what is ready, in order, up to the first outcome not stored yet. */
  private drain(): void {
    while (this.untold[0]?.ready) this.tell(this.untold.shift()!.event)
  }

  async record(event: RolloutEvent): Promise<void> {
    if (this.silenced) return
    this.buffer.push({ event: stored(event) })
    this.untold.push({ event, ready: true })
    this.drain()
    if (BATCHED.has(event.type)) {
      this.timer ??= setTimeout(() => void this.flush().catch(() => {}), FLUSH_MS)
      return
    }
    await this.flush()
  }

  /**
   * An outcome and the row that records it, as one unit: `write` stores the progress buffered
   * before it, then this event, in the transaction that writes the row (Store.recordHostOutcome).
   * Told once stored, in order with everything else.
   */
  async recordWith(event: RolloutEvent, write: EventsWrite): Promise<void> {
    if (this.silenced) return
    const telling: Telling = { event, ready: false }
    this.buffer.push({ event: stored(event), write, telling })
    this.untold.push(telling)
    await this.flush()
  }

  /**
   * Writes buffered events in order; concurrent callers queue up. Each turn takes the buffer up to
   * and including its first outcome (stored by that outcome's own write, with its row), or all of it.
   * If a write fails, what it took goes back to the front of the buffer.
   */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    const done = this.writes.then(async () => {
      const outcome = this.buffer.findIndex((e) => e.write !== undefined)
      const taken = this.buffer.splice(0, outcome === -1 ? this.buffer.length : outcome + 1)
      if (taken.length === 0) return
      const batch = taken.map((e) => e.event)
      const write = taken.at(-1)!.write ?? ((events: readonly StoredEvent[]) => this.store.appendEvents(this.fence, events))
      let ids: string[]
      try {
        ids = await this.retry(() => write(batch))
      } catch (error) {
        this.buffer.unshift(...taken)
        throw error
      }
      for (const e of taken) if (e.telling) e.telling.ready = true
      this.drain()
      this.sinks.stored?.(
        batch.map((e, i) => ({ ...e, id: ids[i] ?? null })),
        this.fence,
      )
    })
    this.writes = done.catch(() => {})
    return done
  }
}
