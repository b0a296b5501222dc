import { body, idempotencyKey, type NotifyFormat } from './body.js'
import { wantsEvent, type FleetEventLike } from './event-types.js'
import { postOnce } from './post.js'
import { displayUrl } from './url.js'

/** One entry of the `notify` config list. */
export interface NotifyTarget {
  readonly url: string
  readonly format: NotifyFormat
  /** Event types to send; null/omitted: the rollout-level ones plus failed rollbacks. */
  readonly on?: readonly string[] | null
}

export interface NotifyContext {
  readonly rolloutId: string
  /** Per attempt, connect to end of response. Default 5000. */
  readonly timeoutMs?: number
  /** Attempts after the first, on network errors, timeouts, 5xx, 408 and 429. Default 2. */
  readonly retries?: number
  /** Wait before retry n: backoffMs · 2^(n-1). Default 500. */
  readonly backoffMs?: number
  /** Overrides the derived `Idempotency-Key` (e.g. the stored event's id). */
  readonly idempotencyKey?: string
}

export interface NotifyResult {
  /** The target's position in `notify` (0-based), to tell targets on one host apart. */
  readonly index: number
  /** Safe to print: scheme, host and port only. */
  readonly url: string
  readonly format: NotifyFormat
  readonly ok: boolean
  /** The last HTTP status, null when no response came. */
  readonly status: number | null
  readonly attempts: number
  readonly error: string | null
  readonly idempotencyKey: string
}

const retryable = (status: number): boolean => status >= 500 || status === 408 || status === 429
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function deliver(index: number, target: NotifyTarget, event: FleetEventLike, context: NotifyContext): Promise<NotifyResult> {
  const key = context.idempotencyKey ?? idempotencyKey(event, context.rolloutId)
  const retries = context.retries ?? 2
  const base = { index, url: displayUrl(target.url), format: target.format, idempotencyKey: key }
  let payload: string
  try {
    payload = JSON.stringify(body(target.format, event, context.rolloutId))
  } catch (error) {
    return { ...base, ok: false, status: null, attempts: 0, error: `cannot encode the event: ${String(error)}` }
  }
  let last: NotifyResult = { ...base, ok: false, status: null, attempts: 0, error: 'not sent' }
  for (let attempt = 1; attempt <= retries + 1; attempt++) {
    if (attempt > 1) await sleep((context.backoffMs ?? 500) * 2 ** (attempt - 2))
    const outcome = await postOnce(target.url, payload, { timeoutMs: context.timeoutMs ?? 5000, headers: { 'idempotency-key': key } })
    if (outcome.kind === 'network') {
      last = { ...base, ok: false, status: null, attempts: attempt, error: outcome.error }
      continue
    }
    if (outcome.status >= 200 && outcome.status < 300) return { ...base, ok: true, status: outcome.status, attempts: attempt, error: null }
    last = { ...base, ok: false, status: outcome.status, attempts: attempt, error: `HTTP ${outcome.status}${outcome.body ? `: ${outcome.body}` : ''}` }
    if (!retryable(outcome.status)) break
  }
  return last
}

/**
 * POSTs `event` to every target whose `on` wants it, all targets at once, and returns one result per
 * target that wanted it (none: an empty list). Never throws and never changes anything else: the
 * caller records each failed result as a `notification-failed` event (notificationFailed()).
 */
export async function notify(targets: readonly NotifyTarget[], event: FleetEventLike, context: NotifyContext): Promise<NotifyResult[]> {
  const chosen = targets.map((target, index) => ({ target, index })).filter(({ target }) => wantsEvent(target.on, event))
  return Promise.all(chosen.map(({ target, index }) => deliver(index, target, event, context)))
}

/** The event to record for a failed notification (fields as its summary expects). Never notified itself unless a target names it in `on`. */
export function notificationFailed(result: NotifyResult, event: FleetEventLike, rolloutId: string, at: Date = new Date()) {
  return {
    type: 'notification-failed' as const,
    rolloutId,
    event: event.type,
    target: result.index,
    url: result.url,
    format: result.format,
    status: result.status,
    attempts: result.attempts,
    error: result.error,
    idempotencyKey: result.idempotencyKey,
    at: at.toISOString(),
  }
}
