import Table from 'cli-table3'

import { formatDuration } from '../../duration.js'
import { UsageError } from '../../errors.js'
import { DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT, type HistoryEntry } from '../../rollout/history.js'
import { formatCounts } from '../../render/plain.js'
import { formatTime } from '../../render/status-table.js'
import { palette, shortSha, statusColor } from '../../render/style.js'
import { makeContext, type GlobalFlags } from '../context.js'
import { withReadSource } from '../../report/read-source.js'
import { printJson, say } from '../output.js'

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

/** Rows for a human: a cli-table3 table on a terminal, aligned plain lines for pipes and logs. */
export function renderHistory(entries: readonly HistoryEntry[], options: { color: boolean; table: boolean }): string {
  const c = palette(options.color)
  const head = ['id', 'state', 'target', 'started', 'duration', 'hosts']
  const rows = entries.map((e) => [
    e.id,
    e.state,
    `${e.ref} → ${shortSha(e.sha)}`,
    formatTime(e.startedAt),
    e.durationMs === null ? '-' : formatDuration(e.durationMs),
    formatCounts(e.counts),
  ])
  const state = (cell: string, k: number): string => statusColor(c, entries[k]!.state)(cell)
  if (options.table) {
    const table = new Table({ head: head.map((h) => c.bold(h)), style: { head: [], border: [], compact: true } })
    rows.forEach((row, k) => table.push(row.map((cell, i) => (i === 1 ? state(cell, k) : cell))))
    return table.toString()
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  // Pad first, colour after: escape codes must not count towards the width.
  const line = (cells: string[], k?: number): string =>
    cells
      .map((cell, i) => {
        const padded = i < cells.length - 1 ? cell.padEnd(widths[i]!) : cell
        return k !== undefined && i === 1 ? state(padded, k) : padded
      })
      .join('  ')
  return [line(head), ...rows.map((row, k) => line(row, k))].join('\n')
}

export async function history(flags: HistoryFlags): Promise<number> {
  const ctx = makeContext(flags)
  const limit = parseLimit(flags.limit)
  const entries = await withReadSource(ctx, (source) => source.history(limit))
  if (ctx.out.json) printJson(ctx.out, entries)
  else if (entries.length === 0) say(ctx.out, 'no rollouts yet')
  else say(ctx.out, renderHistory(entries, { color: ctx.out.color, table: ctx.out.stdout.isTTY === true }))
  return 0
}
