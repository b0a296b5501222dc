import { createHash } from 'node:crypto'

import type { FleetEventLike } from './event-types.js'
import { sanitizeDeep } from '../text/sanitize.js'
import { summary } from './summary.js'

export type NotifyFormat = 'json' | 'slack'

/** `json`: the event exactly as the `--json` stream has it, plus `rolloutId` and a one-line `summary`. */
export function jsonBody(event: FleetEventLike, rolloutId: string): Record<string, unknown> {
  // Receivers print what they get: every string is cleaned of escape sequences and controls, like every other output.
  return sanitizeDeep({ ...event, rolloutId, summary: summary(event) }) as Record<string, unknown>
}

/** Slack treats `<…>` as links and mentions (`<!channel>`) and `&` as an entity: escaped, a host name can do neither. */
const slackEscape = (line: string): string => line.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** `slack`: an incoming-webhook body, one line of text (Slack, Mattermost and Rocket.Chat read `text`). */
export function slackBody(event: FleetEventLike, rolloutId: string): { text: string } {
  return { text: slackEscape(`fleet rollout ${rolloutId}: ${summary(event)}`) }
}

export const body = (format: NotifyFormat, event: FleetEventLike, rolloutId: string): unknown =>
  format === 'slack' ? slackBody(event, rolloutId) : jsonBody(event, rolloutId)

/**
 * The `Idempotency-Key` header, the same on every attempt of one notification and different whenever
 * the events differ: `<rolloutId>:<type>:<n>` with the event's row id in the store (every notified
 * event is stored first), else `<rolloutId>:<type>:<16 hex of sha256(the event's JSON)>`. A pause's
 * `rollout-finished` (state paused) and the rollout's real end are two events, with two keys.
 */
export function idempotencyKey(event: FleetEventLike, rolloutId: string, eventId?: string | null): string {
  if (eventId) return `${rolloutId}:${event.type.replace(/[^a-z-]/g, '')}:${eventId.replace(/\D/g, '')}`
  const hex = createHash('sha256').update(JSON.stringify(event)).digest('hex').slice(0, 16)
  return `${rolloutId}:${event.type.replace(/[^a-z-]/g, '')}:${hex}`
}
