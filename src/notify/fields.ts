import { sanitizeLine } from '../text/sanitize.js'
import type { FleetEventLike } from './event-types.js'

/**
 * Defensive readers for event fields: stored events come back from JSON, possibly written by another
 * fleet version, and their strings may come from hosts (errors, names) or people (reasons): every
 * string read here is one sanitized line, cut to `max` characters.
 */
export const text = (event: FleetEventLike, key: string, max = 200): string | null => {
  const value = event[key]
  if (typeof value !== 'string') return null
  const line = sanitizeLine(value).trim()
  return line.length > max ? `${line.slice(0, max - 1)}…` : line
}

export const num = (event: FleetEventLike, key: string): number | null => {
  const value = event[key]
  return typeof value === 'number' && Number.isFinite(value) ? value : null
}

export const list = (event: FleetEventLike, key: string): readonly unknown[] => {
  const value = event[key]
  return Array.isArray(value) ? value : []
}

/** `abc1234` from a full SHA; anything not hex is sanitized, not trusted. */
export const short = (sha: unknown): string => (typeof sha === 'string' ? sanitizeLine(sha).slice(0, 7) || '?' : '?')

/** 1-based stage for people: stored stages are 0-based. */
export const stageLabel = (event: FleetEventLike): string => {
  const stage = num(event, 'stage')
  const percent = num(event, 'percent')
  return stage === null ? 'stage ?' : `stage ${stage + 1}${percent === null ? '' : ` (${percent}%)`}`
}

/** Who did it: a person's `actor` (user@machine) or the process `owner` (`user@machine pid N`, pid dropped). */
export const who = (event: FleetEventLike): string | null => {
  const actor = text(event, 'actor', 120) ?? text(event, 'owner', 120)
  return actor === null ? null : actor.replace(/ pid \d+$/, '')
}

const COUNT_ORDER = ['success', 'skipped', 'held', 'failed', 'rolled_back', 'rollback_failed', 'updating', 'pending']

/** `success 3, rolled_back 1` from a counts object, zeros left out. */
export const counts = (value: unknown): string => {
  if (typeof value !== 'object' || value === null) return 'no hosts'
  const entries = Object.entries(value as Record<string, unknown>).filter(
    (e): e is [string, number] => typeof e[1] === 'number' && e[1] > 0,
  )
  entries.sort(([a], [b]) => COUNT_ORDER.indexOf(a) - COUNT_ORDER.indexOf(b))
  return entries.map(([k, n]) => `${sanitizeLine(k)} ${n}`).join(', ') || 'no hosts'
}

/** A number for a line of text: short but exact enough for a threshold comparison. */
export const formatValue = (value: unknown): string =>
  typeof value === 'number' ? (Number.isFinite(value) ? String(Number(value.toPrecision(4))) : String(value)) : value === null || value === undefined ? 'no data' : sanitizeLine(String(value))
