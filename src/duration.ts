import { UsageError } from './errors.js'

/** Node's timers fire at once for anything longer (about 24.8 days), so a duration may not exceed it. */
export const MAX_DURATION_MS = 2_147_483_647

const NUM = String.raw`(\d+(?:\.\d+)?|\.\d+)`
/** `1500ms`, `10s`, `5m`, `1h`, `1.5s`, and compounds in descending order such as `2m05s` or `1h30m`. */
const DURATION = new RegExp(`^(?:${NUM}h)?(?:${NUM}m(?!s))?(?:${NUM}s)?(?:${NUM}ms)?$`)
const BARE = new RegExp(`^${NUM}$`)
const UNIT_MS = [3_600_000, 60_000, 1_000, 1] as const

/**
 * A duration from the config file, the environment or a flag, in milliseconds
 * (rounded to a whole millisecond). A bare non-negative number means seconds.
 */
export function parseDuration(value: string | number, key: string): number {
  let ms: number | undefined
  if (typeof value === 'number') ms = Number.isFinite(value) && value >= 0 ? value * 1000 : undefined
  else if (typeof value === 'string' && BARE.test(value.trim())) ms = Number(value.trim()) * 1000
  else if (typeof value === 'string' && value.trim() !== '') {
    const parts = DURATION.exec(value.trim())
    ms = parts ? UNIT_MS.reduce((sum, unit, i) => sum + Number(parts[i + 1] ?? 0) * unit, 0) : undefined
  }
  const got = `, got ${JSON.stringify(value) ?? String(value)}`
  if (ms === undefined) throw new UsageError(`"${key}" must be a duration like 1500ms, 10s, 5m or 1h (a bare number means seconds)${got}`)
  if (ms > MAX_DURATION_MS) throw new UsageError(`"${key}" must be at most 596h (about 24 days)${got}`)
  return Math.round(ms)
}

const pad = (n: number): string => String(n).padStart(2, '0')

/** Compact and human: `850ms`, `1.5s`, `10s`, `2m05s`, `5m`, `1h30m`, `1h00m05s`. parseDuration() reads it back. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return `${ms}ms`
  if (Math.round(ms) < 1000) return `${Math.round(ms)}ms`
  const tenths = Math.round(ms / 100)
  if (tenths < 600) return `${tenths / 10}s`
  const total = Math.round(ms / 1000)
  const [h, m, s] = [Math.floor(total / 3600), Math.floor(total / 60) % 60, total % 60]
  if (h === 0) return s === 0 ? `${m}m` : `${m}m${pad(s)}s`
  return `${h}h${m === 0 && s === 0 ? '' : `${pad(m)}m`}${s === 0 ? '' : `${pad(s)}s`}`
}
