import { formatDuration } from '../config/duration.js'
import { errorMessage } from '../errors.js'
import { redactSecrets } from './database-errors.js'

/**
 * What an operator sees while the store is away during a rollout (a Postgres restart): one line
 * when writes start failing, saying they are retried and until when, and one when they go
 * through again. The retry loop itself is the engine's; it calls these.
 */
export interface StoreOutageNotice {
  /** A write failed with a transient error; the engine gives up at `retryUntil` (ms since the epoch). */
  retrying(error: unknown, retryUntil: number): void
  /** A write went through again (a no-op when there was no outage). */
  recovered(): void
}

/** Short reason for a connection-level failure: the driver's code when it has one, else its message. */
export function outageReason(error: unknown): string {
  const code = (error as { code?: unknown }).code
  if (code === 'ECONNREFUSED') return 'connection refused'
  if (code === 'ECONNRESET') return 'connection reset'
  if (code === '57P01' || code === '57P02' || code === '57P03') return 'the server is shutting down or starting up'
  return redactSecrets(errorMessage(error)).split('\n')[0]!.slice(0, 200)
}

/**
 * `where` names the store (storeLabel in database-errors.ts); `write` prints one line (e.g. to
 * stderr, or as an event for the renderers).
 */
export function storeOutageNotice(where: string, write: (line: string) => void, now: () => number = Date.now): StoreOutageNotice {
  let since: number | null = null
  let failures = 0
  return {
    retrying(error, retryUntil) {
      failures++
      if (since !== null) return
      since = now()
      const left = Math.max(0, retryUntil - since)
      write(
        `${where} is unreachable (${outageReason(error)}); store writes are being retried for up to ${formatDuration(left)} ` +
          `(until ${new Date(retryUntil).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')}); no new host is started meanwhile`,
      )
    },
    recovered() {
      if (since === null) return
      write(`${where} is back after ${formatDuration(Math.max(0, now() - since))} (${failures} failed write attempt${failures === 1 ? '' : 's'} retried); the rollout goes on`)
      since = null
      failures = 0
    },
  }
}
