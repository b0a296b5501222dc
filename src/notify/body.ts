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

/** Events that happen at most once per rollout, or per stage, or per host and outcome: keyed by what they are about. */
const ONCE_PER_ROLLOUT = new Set(['rollout-started', 'rollout-finished'])
const ONCE_PER_STAGE = new Set(['stage-started', 'stage-finished', 'gates-passed', 'gates-failed'])

/**
 * The `Idempotency-Key` header, the same on every attempt, so a receiver that remembers keys keeps
 * each event once. Events that can happen only once are keyed by what they are about, so even a run
 * that records one again after a crash (with a new time) sends the same key:
 * `<rolloutId>:rollout-finished`, `<rolloutId>:stage-finished:<stage>`,
 * `<rolloutId>:host-finished:<stage>:<status>:<16 hex of sha256(host)>`. Others (pauses, resumes, gate
 * measurements: repeatable) are `<rolloutId>:<type>:<16 hex of sha256(event JSON)>`, distinct per event.
 */
export function idempotencyKey(event: FleetEventLike, rolloutId: string): string {
  const hex = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 16)
  const stage = typeof event.stage === 'number' ? event.stage : null
  if (ONCE_PER_ROLLOUT.has(event.type)) return `${rolloutId}:${event.type}`
  if (ONCE_PER_STAGE.has(event.type) && stage !== null) return `${rolloutId}:${event.type}:${stage}`
  if (event.type === 'host-finished' && stage !== null && typeof event.host === 'string' && typeof event.status === 'string')
    return `${rolloutId}:${event.type}:${stage}:${event.status.replace(/[^a-z_]/g, '')}:${hex(event.host)}`
  return `${rolloutId}:${event.type}:${hex(JSON.stringify(event))}`
}
