import { MANUAL_TYPES, PROGRESS_TYPES } from '../events.js'
import type { FleetEventLike } from '../notify/event-types.js'
import { gateLine, summary } from '../notify/summary.js'
import { list, stageLabel, text, who } from '../notify/fields.js'

/** An event as Store.listEvents returns it. */
export interface StoredEvent {
  readonly at: Date | string
  readonly type: string
  readonly host?: string | null
  readonly data: unknown
}

/** What the audit trail says about one event: when, who, what, why. */
export interface AuditEntry {
  /** ISO time. */
  readonly at: string
  readonly type: string
  /** A person (`actor`, user@machine) or the fleet process that decided (`owner`); null: not recorded. */
  readonly who: string | null
  /** Done by a person with a command (pause, resume, promote, abort, ignoring a cooldown). */
  readonly manual: boolean
  /** What happened, without the who and the why. */
  readonly what: string
  /** The reason given, the gate values, or the error; null when there is none. */
  readonly why: string | null
  /** The whole one-line summary (who and why included). */
  readonly summary: string
  /** The event as the `--json` stream has it (type and at included). */
  readonly event: FleetEventLike
}

export { MANUAL_TYPES }

/** Host progress that only a live view needs: left out of the text and Markdown trail (kept in JSON). */
const NOISE = new Set<string>(PROGRESS_TYPES)

export const isNoise = (type: string): boolean => NOISE.has(type)

const toEvent = (stored: StoredEvent): FleetEventLike => {
  const data = typeof stored.data === 'object' && stored.data !== null && !Array.isArray(stored.data) ? (stored.data as Record<string, unknown>) : {}
  const at = stored.at instanceof Date ? stored.at.toISOString() : String(stored.at)
  // The row's type and time win: they are what the store indexed and ordered.
  return { ...data, type: stored.type, at: typeof data.at === 'string' ? data.at : at }
}

function split(event: FleetEventLike): { what: string; why: string | null } {
  if (event.type === 'gate-measured') {
    const gates = list(event, 'gates').map(gateLine)
    return { what: `${stageLabel(event)} gates measured: ${text(event, 'verdict', 20) ?? '?'}`, why: gates.length ? gates.join('; ') : null }
  }
  const reason = text(event, 'reason')
  const error = event.type === 'host-finished' || event.type === 'rollout-finished' || event.type === 'notification-failed' ? text(event, 'error') : null
  // The summary of the event without who, reason and error: those go to their own columns.
  const bare: FleetEventLike = { ...event, actor: undefined, owner: undefined, reason: undefined, ...(error !== null ? { error: undefined } : {}) }
  return { what: summary(bare), why: reason ?? error }
}

/** One entry per event, in stored order. Events of other rollouts' kinds (no type) are kept with their type as text. */
export function auditEntries(events: readonly StoredEvent[]): AuditEntry[] {
  return events.map((stored) => {
    const event = toEvent(stored)
    const { what, why } = split(event)
    return {
      at: event.at ?? '',
      type: event.type,
      who: who(event),
      // A pause without an actor is the gates' doing; the other commands are always a person's.
      manual: typeof event.actor === 'string' || ((MANUAL_TYPES as readonly string[]).includes(event.type) && event.type !== 'rollout-paused'),
      what,
      why,
      summary: summary(event),
      event,
    }
  })
}
