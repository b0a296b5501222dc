import { errorMessage } from '../errors.js'
import { maskSecrets } from '../redact.js'

/**
 * Why the store is away, for the engine's store-unavailable event (rollout/store-retry.ts): the
 * driver's code in words when it has one, else the first line of its message, secrets masked.
 */
export function outageReason(error: unknown): string {
  const code = (error as { code?: unknown }).code
  if (code === 'ECONNREFUSED') return 'connection refused'
  if (code === 'ECONNRESET') return 'connection reset'
  if (code === '57P01' || code === '57P02' || code === '57P03') return 'the server is shutting down or starting up'
  return maskSecrets(errorMessage(error)).split('\n')[0]!.slice(0, 200)
}
