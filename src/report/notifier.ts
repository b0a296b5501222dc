import { idempotencyKey, notificationFailed, notify, wantsEvent, type FleetEventLike, type NotifyContext, type NotifyTarget } from '../notify/index.js'
import type { StoredEvent } from '../rollout/request.js'
import type { EventWriter, Fence } from '../store/store.js'
import { sanitizeLine } from '../text/sanitize.js'

export interface Notifier {
  /** For RolloutDeps.onStored: starts the notifications of a stored batch and returns at once. */
  readonly onStored: (events: readonly StoredEvent[], fence: Fence) => void
  /** Waits for the notifications started so far (and the records of failed ones), at most boundMs. */
  done(boundMs?: number): Promise<void>
}

export interface NotifierOptions {
  /** Where a failed notification is said (stderr); it is recorded in the store too. */
  readonly warn?: (line: string) => void
  /** Passed to notify() (timeouts, retries, backoff); tests shorten them. */
  readonly delivery?: Omit<NotifyContext, 'rolloutId' | 'idempotencyKey'>
}

/** Long enough for a target's default timeouts and retries (3 × 5 s + backoff), short enough for cron. */
const DONE_BOUND_MS = 20_000

/** The event as the `--json` stream has it: the stored data, with the row's type and time. */
const asEvent = (stored: StoredEvent): FleetEventLike => {
  const data = typeof stored.data === 'object' && stored.data !== null && !Array.isArray(stored.data) ? (stored.data as Record<string, unknown>) : {}
  return { ...data, type: stored.type, at: typeof data.at === 'string' ? data.at : stored.at.toISOString() }
}

/**
 * The `notify` targets, driven by the engine's stored events: each event a target wants is POSTed to
 * it once, never holding the engine up. A failed notification is recorded as a `notification-failed`
 * event (which changes nothing else); that event goes only to the other targets that ask for it, and
 * a failure to deliver it is recorded but notified no further (two broken targets cannot ping-pong).
 */
export function makeNotifier(store: EventWriter, targets: readonly NotifyTarget[], options: NotifierOptions = {}): Notifier {
  const pending = new Set<Promise<void>>()
  const track = (work: Promise<void>): void => {
    const p = work.catch(() => {}).finally(() => pending.delete(p))
    pending.add(p)
  }

  async function deliver(event: FleetEventLike, rolloutId: string, eventId: string | null, skip: number | null, fence: Fence): Promise<void> {
    const chosen = targets.flatMap((target, index) => (index !== skip && wantsEvent(target.on, event) ? [{ target, index }] : []))
    await Promise.all(
      chosen.map(async ({ target, index }) => {
        // The stored row's id: one key for every attempt of this event, another for any other event.
        const [result] = await notify([target], event, { ...options.delivery, rolloutId, idempotencyKey: idempotencyKey(event, rolloutId, eventId) })
        if (!result || result.ok) return
        const failed = notificationFailed({ ...result, index }, event, rolloutId)
        options.warn?.(`warning: ${sanitizeLine(`notification of ${event.type} to ${result.url} failed after ${result.attempts} attempt(s): ${result.error ?? '?'}`)}`)
        let failedId: string | null
        try {
          ;[failedId = null] = await store.appendEvents(fence, [{ rolloutId, type: failed.type, data: failed, at: new Date(failed.at) }])
        } catch (error) {
          options.warn?.(`warning: could not record the failed notification: ${sanitizeLine(String(error))}`)
          return
        }
        if (event.type !== 'notification-failed') await deliver(failed, rolloutId, failedId, index, fence)
      }),
    )
  }

  return {
    onStored: (events, fence) => {
      if (targets.length === 0) return
      for (const stored of events) {
        const event = asEvent(stored)
        const rolloutId = stored.rolloutId ?? (typeof event.rolloutId === 'string' ? event.rolloutId : null)
        if (rolloutId === null || !targets.some((t) => wantsEvent(t.on, event))) continue
        track(deliver(event, rolloutId, stored.id ?? null, null, fence))
      }
    },
    async done(boundMs = DONE_BOUND_MS) {
      let timer: NodeJS.Timeout | undefined
      const bound = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), boundMs)
      })
      // Loop: a failure record can start a notification of its own while we wait.
      while (pending.size > 0) {
        const outcome = await Promise.race([Promise.all([...pending]).then(() => 'ok' as const), bound])
        if (outcome === 'late') {
          options.warn?.(`warning: ${pending.size} notification(s) still in flight after ${Math.round(boundMs / 1000)} s; not waiting for them`)
          break
        }
      }
      clearTimeout(timer)
    },
  }
}
