import type { FleetConfig } from '../config/types.js'
import { UsageError } from '../errors.js'
import type { HoldRow, Store } from '../store/store.js'
import { actor } from './who.js'
import { loadInventory } from './inventory.js'

/**
 * `fleet hosts hold` and `unhold`: fleet's own record that a host stays out of every rollout, by
 * name, whatever the inventory source (the inventory reads the holds in force: inventory.ts). The
 * row is the record: who (user@machine), why, since and until when.
 */

export interface HoldRequest {
  readonly name: string
  readonly reason?: string | undefined
  /** An ISO 8601 time, or a duration from now: 90m, 12h, 2d, 1w, 1d12h. */
  readonly until?: string | undefined
}

const UNITS_MS = { w: 604_800_000, d: 86_400_000, h: 3_600_000, m: 60_000 } as const
const SPAN = /^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$/
/** An ISO date, or date and time (seconds and fraction optional), with an optional offset. */
const ISO = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i
/** Ten years: anything later is a typo (a forgotten hold is what `until` is for). */
const MAX_HOLD_MS = 10 * 365 * 86_400_000

/** Date.parse rolls 2031-02-30 over to March: the calendar date and the clock must exist as written. */
function realDate(text: string): boolean {
  const [y, m, d, hh = 0, mm = 0] = (text.match(/\d+/g) ?? []).map(Number)
  const day = new Date(Date.UTC(y!, m! - 1, d!))
  return day.getUTCMonth() === m! - 1 && day.getUTCDate() === d && hh <= 23 && mm <= 59
}

/** `--until` as a time after `now`; bad input is a usage error (exit 2). */
export function parseUntil(value: string, now: Date): Date {
  const text = value.trim()
  const span = SPAN.exec(text)
  let at: number
  if (span && text !== '') {
    at = now.getTime() + [UNITS_MS.w, UNITS_MS.d, UNITS_MS.h, UNITS_MS.m].reduce((sum, unit, i) => sum + Number(span[i + 1] ?? 0) * unit, 0)
  } else if (ISO.test(text) && realDate(text)) {
    at = Date.parse(text.replace(' ', 'T'))
  } else at = NaN
  if (!Number.isFinite(at))
    throw new UsageError(`--until must be an ISO time (2030-06-01T06:00Z) or a duration from now (90m, 12h, 2d, 1w), got ${JSON.stringify(value)} (nothing changed)`)
  if (at <= now.getTime()) throw new UsageError(`--until ${JSON.stringify(value)} is not in the future (now: ${now.toISOString()}; nothing changed)`)
  if (at - now.getTime() > MAX_HOLD_MS) throw new UsageError(`--until ${JSON.stringify(value)} is more than 10 years away (nothing changed)`)
  return new Date(at)
}

/** The holds in force at `now`, by host name (rollouts decide on the database's clock: inventory.ts). */
export const holdsInForce = (holds: readonly HoldRow[], now: Date): Map<string, HoldRow> =>
  new Map(holds.filter((h) => h.until === null || h.until.getTime() > now.getTime()).map((h) => [h.name, h]))

/** A known host name (the inventory, disabled hosts too): a typo must not hold nothing and say it held. */
async function knownHost(store: Store, config: FleetConfig, name: string): Promise<void> {
  const inventory = await loadInventory(store, config, { includeDisabled: true })
  if (inventory.hosts.some((h) => h.name === name)) return
  const rejected = inventory.rejected.some((r) => r.name === name)
  throw new UsageError(
    `no host named ${JSON.stringify(name)} in the inventory (${config.inventory.query ? 'inventory.query' : 'the hosts table'})${rejected ? ': its row is invalid' : ''}; nothing changed`,
  )
}

/** Holds a host (a new hold replaces the old: reason, until, who, since). */
export async function holdHost(store: Store, config: FleetConfig, request: HoldRequest): Promise<HoldRow> {
  const reason = request.reason?.trim()
  if (!reason) throw new UsageError('--reason must say why the host is held (it is shown wherever the host is; nothing changed)')
  const name = request.name.normalize('NFC')
  const until = request.until === undefined ? null : parseUntil(request.until, await store.now())
  await knownHost(store, config, name)
  await store.hold({ name, reason, actor: actor(), until })
  const row = (await store.listHolds()).find((h) => h.name === name)
  if (!row) throw new Error(`the hold of ${name} was not recorded`)
  return row
}

/** Lifts a hold; the hold that was lifted, or null when the host was not held. */
export async function unholdHost(store: Store, name: string): Promise<HoldRow | null> {
  const key = name.normalize('NFC')
  const before = (await store.listHolds()).find((h) => h.name === key) ?? null
  if (!before) return null
  return (await store.unhold(key)) ? before : null
}
