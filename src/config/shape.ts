/**
 * Parsers of the fleet's shape (design "The fleet's shape"): `rollout.rings`, `rollout.windows`,
 * `rollout.failureBudget`. Each throws through `fail`, naming the exact item (`rollout.windows[0].end`).
 */
import { isObject, itemParsers } from './items.js'

type Fail = (key: string, problem: string, value: unknown) => never
type Parse = (value: unknown, key: string, ctx: { readonly text: boolean; readonly cwd: string | null }) => unknown

export interface RingSpec {
  readonly name: string
  /** Cumulative percentages within the ring; null: `rollout.stages`. */
  readonly stages: readonly number[] | null
}

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const
export type Weekday = (typeof WEEKDAYS)[number]

export interface WindowSpec {
  readonly days: readonly Weekday[]
  /** Minutes after local midnight. */
  readonly start: number
  /** Minutes after local midnight; ≤ start: the window ends the next day. */
  readonly end: number
  /** IANA zone, or "host": each host's own `timezone` (UTC when it has none). */
  readonly timezone: string
}

/** A number of hosts, or a share of the rollout's hosts. */
export type FailureBudget = { readonly hosts: number } | { readonly percent: number }

const RING_NAME = /^[^\p{Cc}\p{Cf}]{1,64}$/u
const CLOCK = /^([01]\d|2[0-3]):([0-5]\d)$/

const zoneKnown = (zone: string): boolean => {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone })
    return true
  } catch {
    return false
  }
}

export function shapeParsers(fail: Fail, stages: Parse) {
  const { json, onlyKeys, list } = itemParsers(fail)

  const rings: Parse = (raw, key, ctx) => {
    const seen = new Set<string>()
    return list(json(raw, key, ctx), key).map((item, i): RingSpec => {
      const at = `${key}[${i}]`
      if (!isObject(item)) return fail(at, 'must be an object like { "name": "internal", "stages": [100] }', item)
      onlyKeys(item, at, ['name', 'stages'])
      const name = typeof item.name === 'string' ? item.name.normalize('NFC') : ''
      if (!RING_NAME.test(name) || name.trim() === '') fail(`${at}.name`, 'must be a ring name of 1 to 64 visible characters', item.name)
      if (seen.has(name)) fail(`${at}.name`, 'names a ring twice', item.name)
      seen.add(name)
      return { name, stages: item.stages === undefined || item.stages === null ? null : (stages(item.stages, `${at}.stages`, { text: false, cwd: null }) as number[]) }
    })
  }

  const clock = (value: unknown, key: string): number => {
    const m = typeof value === 'string' ? CLOCK.exec(value) : null
    return m ? Number(m[1]) * 60 + Number(m[2]) : fail(key, 'must be a time of day "HH:MM" (24-hour)', value)
  }

  const windows: Parse = (raw, key, ctx) =>
    list(json(raw, key, ctx), key).map((item, i): WindowSpec => {
      const at = `${key}[${i}]`
      if (!isObject(item)) return fail(at, 'must be an object like { "days": ["mon"], "start": "02:00", "end": "05:00", "timezone": "Europe/Berlin" }', item)
      onlyKeys(item, at, ['days', 'start', 'end', 'timezone'])
      const days = list(item.days ?? WEEKDAYS, `${at}.days`).map((d, k) =>
        typeof d === 'string' && (WEEKDAYS as readonly string[]).includes(d.toLowerCase()) ? (d.toLowerCase() as Weekday) : fail(`${at}.days[${k}]`, `must be one of ${WEEKDAYS.join(', ')}`, d),
      )
      if (days.length === 0) fail(`${at}.days`, 'must name at least one day', item.days)
      const start = clock(item.start, `${at}.start`)
      const end = clock(item.end, `${at}.end`)
      if ((end - start + 1440) % 1440 < 5) fail(`${at}.end`, 'must be at least 5 minutes after start', item.end)
      const timezone = item.timezone ?? 'UTC'
      if (typeof timezone !== 'string' || (timezone !== 'host' && !zoneKnown(timezone)))
        fail(`${at}.timezone`, 'must be an IANA time zone like "Europe/Berlin", or "host" (each host\'s own timezone column)', timezone)
      return { days: [...new Set(days)], start, end, timezone: timezone as string }
    })

  const failureBudget: Parse = (raw, key, ctx) => {
    if (raw === null) return null
    const value = ctx.text && typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : raw
    if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return { hosts: value }
    const m = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value) : null
    if (m && Number(m[1]) <= 100) return { percent: Number(m[1]) }
    return fail(key, 'must be a number of hosts (like 3) or a share of the rollout\'s hosts (like "5%"), or null', raw)
  }

  return { rings, windows, failureBudget }
}
