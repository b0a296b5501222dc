import type { WindowSpec, Weekday } from '../config/shape.js'
import { WEEKDAYS } from '../config/shape.js'

/**
 * Deploy windows (`rollout.windows`), pure: whether an instant is inside one, and when the next one
 * opens, in the window's own time zone (or a host's, with `"timezone": "host"`). Local times come
 * from Intl with the tzdata Node ships, so daylight-saving changes are the zone's own: on the night
 * the clocks go forward, 02:00–03:00 does not exist there and a window from 02:00 opens at 03:00.
 */

const formats = new Map<string, Intl.DateTimeFormat>()
const formatFor = (zone: string): Intl.DateTimeFormat => {
  let format = formats.get(zone)
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone: zone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
    formats.set(zone, format)
  }
  return format
}

/** The local weekday and minute of the day of an instant in a zone. */
export function localTime(at: number, zone: string): { day: Weekday; minute: number } {
  let day: Weekday = 'mon'
  let hour = 0
  let minute = 0
  for (const part of formatFor(zone).formatToParts(at)) {
    if (part.type === 'weekday') day = part.value.slice(0, 3).toLowerCase() as Weekday
    else if (part.type === 'hour') hour = Number(part.value)
    else if (part.type === 'minute') minute = Number(part.value)
  }
  return { day, minute: hour * 60 + minute }
}

const previous = (day: Weekday): Weekday => WEEKDAYS[(WEEKDAYS.indexOf(day) + 6) % 7]!

const inside = (w: WindowSpec, at: number, hostZone: string | null | undefined): boolean => {
  const { day, minute } = localTime(at, w.timezone === 'host' ? (hostZone ?? 'UTC') : w.timezone)
  if (w.start < w.end) return w.days.includes(day) && minute >= w.start && minute < w.end
  // Across midnight: the days name the evening the window opens.
  return (w.days.includes(day) && minute >= w.start) || (w.days.includes(previous(day)) && minute < w.end)
}

/** Open at `at` (no windows: always). */
export function isOpen(windows: readonly WindowSpec[], at: number, hostZone?: string | null): boolean {
  return windows.length === 0 || windows.some((w) => inside(w, at, hostZone))
}

const MINUTE = 60_000
/** Windows are at least this long (the config says so), so a coarse step never jumps over one. */
const COARSE = 5 * MINUTE
/** A week and a day: every weekly window opens within it. */
const HORIZON = 8 * 24 * 60 * MINUTE

/**
 * The first instant at or after `at` when `isOpen` becomes `open` (the next opening, or the next
 * closing), at minute precision; null if it never does within 8 days (no window matches any day).
 */
export function nextChange(windows: readonly WindowSpec[], at: number, open: boolean, hostZone?: string | null): number | null {
  if (windows.length === 0) return open ? at : null
  if (isOpen(windows, at, hostZone) === open) return at
  // Coarse steps to find the 5 minutes it changes in, then minutes: ~2,300 look-ups for a week.
  const start = Math.ceil(at / MINUTE) * MINUTE
  for (let t = start; t <= at + HORIZON; t += COARSE) {
    if (isOpen(windows, t, hostZone) !== open) continue
    for (let m = Math.max(start, t - COARSE); m <= t; m += MINUTE) if (isOpen(windows, m, hostZone) === open) return m
  }
  return null
}

/** A start outside every window that a person allowed (`--ignore-window --reason`), for the audit trail. */
export interface IgnoredWindow {
  readonly opensAt: string | null
  readonly actor: string
  readonly reason: string
}

/**
 * `rollout start`/`tick --ref` and the windows: null when some host may start now (the others wait
 * for theirs) or there are no windows; else when the next window opens, as an ISO time (null: none
 * ever does).
 */
export function closedFor(windows: readonly WindowSpec[], hosts: readonly { readonly timezone?: string | null; readonly hold?: string | null }[], now: number): { opensAt: string | null } | null {
  const targets = hosts.filter((h) => !h.hold)
  if (windows.length === 0 || targets.length === 0 || targets.some((h) => isOpen(windows, now, h.timezone))) return null
  const next = targets.map((h) => nextChange(windows, now, true, h.timezone)).filter((t): t is number => t !== null)
  return { opensAt: next.length ? new Date(Math.min(...next)).toISOString() : null }
}
