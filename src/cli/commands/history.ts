import { UsageError } from '../../errors.js'
import { DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT, type HistoryEntry } from '../../rollout/history.js'
import { renderHistory } from '../../render/history.js'
import { makeContext, type GlobalFlags } from '../context.js'
import { withReadSource } from '../../report/read-source.js'
import { printJson, say, sayStyled } from '../output.js'

export interface HistoryFlags extends GlobalFlags {
  readonly limit?: string
}

export type { HistoryEntry }
export { DEFAULT_HISTORY_LIMIT }

export const parseLimit = (value: string | undefined): number => {
  if (value === undefined) return DEFAULT_HISTORY_LIMIT
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN
  if (!(n >= 1 && n <= MAX_HISTORY_LIMIT)) throw new UsageError(`--limit must be an integer from 1 to ${MAX_HISTORY_LIMIT}, got ${JSON.stringify(value)}`)
  return n
}

export async function history(flags: HistoryFlags): Promise<number> {
  const ctx = makeContext(flags)
  const limit = parseLimit(flags.limit)
  const entries = await withReadSource(ctx, (source) => source.history(limit))
  if (ctx.out.json) printJson(ctx.out, entries)
  else if (entries.length === 0) say(ctx.out, 'no rollouts yet')
  else sayStyled(ctx.out, renderHistory(entries, { color: ctx.out.color, table: ctx.out.stdout.isTTY === true }))
  return 0
}
