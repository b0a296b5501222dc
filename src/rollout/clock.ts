/** Time enters the engine through here so tests can pass a clock that never really waits. */
export interface Clock {
  now(): number
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (ms <= 0 || signal?.aborted) return resolve()
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      signal?.addEventListener('abort', done, { once: true })
    }),
}

/**
 * This machine's clock set to the database's: the one clock every process that
 * drives a rollout agrees on, whatever its own clock says (event times, bakes,
 * cooldowns). The offset is measured when the store opens and again with every
 * lease renewal (keepLease), half a round trip counted.
 */
export class DatabaseClock implements Clock {
  private offset = 0

  constructor(private readonly base: Clock = systemClock) {}

  static async of(store: { now(): Promise<Date> }, base: Clock = systemClock): Promise<DatabaseClock> {
    const clock = new DatabaseClock(base)
    const sentAt = Date.now()
    const now = await store.now()
    clock.anchor(now, sentAt, Date.now())
    return clock
  }

  /** `dbNow` was read between `sentAt` and `receivedAt` (this machine's Date.now()). */
  anchor(dbNow: Date, sentAt: number, receivedAt: number): void {
    this.offset = dbNow.getTime() - (sentAt + receivedAt) / 2
  }

  now(): number {
    return this.base.now() + this.offset
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return this.base.sleep(ms, signal)
  }
}

/** The clock's anchor, when it is the database's (a test's fake clock has none). */
export const anchorOf = (clock: Clock): DatabaseClock | undefined => (clock instanceof DatabaseClock ? clock : undefined)
