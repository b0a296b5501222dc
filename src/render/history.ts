import Table from 'cli-table3'

import { formatDuration } from '../duration.js'
import type { HistoryEntry } from '../rollout/history.js'
import { sanitizeLine } from '../text/sanitize.js'
import { formatCounts } from './plain.js'
import { formatTime } from './status-table.js'
import { palette, shortSha, statusColor } from './style.js'

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
  ].map(sanitizeLine)) // recorded text is shown coloured, so it is cleaned here (sayStyled)
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

