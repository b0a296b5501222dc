import { ExitCode, FleetError, errorMessage } from '../errors.js'
import { outageReason } from '../store/outage.js'
import { sanitizeLine } from '../text/sanitize.js'
import type { Clock } from './clock.js'
import type { RolloutEvent } from './events.js'

/** How long store writes are retried (e.g. Postgres restarting) before the run gives up, resumable. */
export const STORE_RETRY_MS = 60_000

export class StoreUnavailableError extends FleetError {
  constructor(rolloutId: string, cause: string) {
    super(
      `the database stayed unreachable (${cause}); no new hosts were started and hosts in flight finished. ` +
        `Rollout ${rolloutId} is recoverable: run \`fleet rollout resume\` once the database is back`,
      ExitCode.internal,
    )
  }
}

/** Connection-level database failures worth waiting out; anything else is a bug or bad data. */
export function isTransientStoreError(error: unknown): boolean {
  if (error instanceof FleetError) return false
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code.startsWith('E')))
    return true
  return /terminat|ECONNREFUSED|ECONNRESET|connect|timeout|closed/i.test(errorMessage(error))
}

/**
 * Every store write of a run goes through one StoreRetry: retried with
 * backoff while the database is away (a Postgres restart), giving up after
 * `retryMs` for good (the run then starts no host and is left resumable).
 * The operator hears at once that writes are being retried and until when:
 * two events that go to the listeners only, since the store is what is down.
 */
export class StoreRetry {
  gaveUp = false
  private outageSince: number | null = null

  constructor(
    private readonly rolloutId: string,
    private readonly clock: Clock,
    private readonly retryMs: number,
    private readonly tell: (event: RolloutEvent) => void,
  ) {}

  async write<T>(write: () => Promise<T>): Promise<T> {
    const deadline = this.clock.now() + this.retryMs
    let delay = 250
    for (;;) {
      try {
        const result = await write()
        if (this.outageSince !== null) this.back()
        return result
      } catch (error) {
        if (!isTransientStoreError(error)) throw error
        if (this.gaveUp || this.clock.now() + delay > deadline) {
          this.gaveUp = true
          throw new StoreUnavailableError(this.rolloutId, errorMessage(error))
        }
        if (this.outageSince === null) this.away(error, deadline)
        await this.clock.sleep(delay)
        delay = Math.min(delay * 2, 5_000)
      }
    }
  }

  private away(error: unknown, deadline: number): void {
    this.outageSince = this.clock.now()
    const at = new Date(this.outageSince).toISOString()
    this.tell({ type: 'store-unavailable', rolloutId: this.rolloutId, error: sanitizeLine(outageReason(error)), retryUntil: new Date(deadline).toISOString(), at })
  }

  private back(): void {
    const now = this.clock.now()
    this.tell({ type: 'store-recovered', rolloutId: this.rolloutId, outageMs: now - this.outageSince!, at: new Date(now).toISOString() })
    this.outageSince = null
  }
}
