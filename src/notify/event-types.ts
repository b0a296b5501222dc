import { DEFAULT_NOTIFY_ON, EVENT_TYPES, type EventType } from '../events.js'

export { DEFAULT_NOTIFY_ON, EVENT_TYPES, type EventType }

/**
 * Any event as stored or streamed: a type, a time, and the type's own fields. The notifier, the
 * summaries and the audit trail read fields defensively, so an event written by an older or newer
 * fleet still renders.
 */
export interface FleetEventLike {
  readonly type: string
  readonly at?: string
  readonly rolloutId?: string | null
  readonly [field: string]: unknown
}

/** Whether a target with this `on` list (null/undefined: the default set) wants the event. */
export function wantsEvent(on: readonly string[] | null | undefined, event: FleetEventLike): boolean {
  if (on) return on.includes(event.type)
  if (event.type === 'host-finished') return event.status === 'rollback_failed'
  return (DEFAULT_NOTIFY_ON as readonly string[]).includes(event.type)
}
