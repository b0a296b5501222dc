import { createHash } from 'node:crypto'

import type { FleetEventLike } from './event-types.js'
import { summary } from './summary.js'

export type NotifyFormat = 'json' | 'slack'

/** `json`: the event exactly as the `--json` stream has it, plus `rolloutId` and a one-line `summary`. */
export function jsonBody(event: FleetEventLike, rolloutId: string): Record<string, unknown> {
  return { ...event, rolloutId, summary: summary(event) }
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
 * The `Idempotency-Key` header: `<rolloutId>:<event type>:<16 hex of sha256(event JSON)>`. The same
 * event sent again (a retry, or a later run re-sending it) carries the same key, so a receiver that
 * remembers keys sees it once; two distinct events never share one (they differ at least in `at`).
 */
export function idempotencyKey(event: FleetEventLike, rolloutId: string): string {
  const digest = createHash('sha256').update(JSON.stringify(event)).digest('hex').slice(0, 16)
  return `${rolloutId}:${event.type}:${digest}`
}
