import Table from 'cli-table3'

import { formatDuration } from '../config/duration.js'
import type { RolloutEvent } from '../rollout/events.js'
import { EXIT_CODE_MEANING } from '../rollout/exit-code.js'
import type { LiveState, OutcomeRow } from './live.js'
import { formatCounts } from './plain.js'
import { palette, shortSha, statusColor } from './style.js'

export interface SummaryInput {
  readonly finished: Extract<RolloutEvent, { type: 'rollout-finished' }>
  /** Per-host outcomes; successes and skips may be included, only the others become rows. */
  readonly outcomes: readonly OutcomeRow[]
}

export interface SummaryOptions {
  readonly color: boolean
  /** Terminal width: the error column gets what the other columns leave. */
  readonly width?: number
  readonly maxRows?: number
}

export const DEFAULT_SUMMARY_ROWS = 50

// The hosts that need a person come first, then the ones that were put back, then the untouched.
const URGENCY: Record<string, number> = { rollback_failed: 0, rolled_back: 1, failed: 2 }

const clip = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text)

/**
 * The end of a rollout: a table of the hosts that did not succeed (bounded, whatever the fleet
 * size), the counts, and one line saying what the exit code means to a script.
 */
export function renderSummary(input: SummaryInput, options: SummaryOptions): string {
  const { finished } = input
  const c = palette(options.color)
  const maxRows = options.maxRows ?? DEFAULT_SUMMARY_ROWS
  const failing = finished.counts.failed + finished.counts.rolled_back + finished.counts.rollback_failed
  const rows = input.outcomes
    .filter((o) => o.status in URGENCY)
    .sort((a, b) => URGENCY[a.status]! - URGENCY[b.status]! || a.stage - b.stage)
    .slice(0, maxRows)
  const lines: string[] = []

  if (rows.length > 0) {
    const body = rows.map((o) => [
      o.host,
      String(o.stage + 1),
      o.status === 'rollback_failed' ? 'ROLLBACK FAILED' : o.status.replace(/_/g, ' '),
      o.failedStep ?? '-',
      `${shortSha(o.previousVersion)} → ${shortSha(o.newVersion)}`,
      o.error ?? '',
    ])
    const head = ['host', 'stage', 'status', 'step', 'version', 'error']
    // The error goes last and gets whatever width the other columns leave (each: content + 2 padding + 1 border).
    const used = head.slice(0, -1).reduce((sum, h, i) => sum + Math.max(h.length, ...body.map((r) => r[i]!.length)) + 3, 0) + 4
    const errorWidth = Math.min(100, Math.max(20, (options.width ?? 120) - used))
    const table = new Table({
      head: head.map((h) => c.bold(h)),
      // cli-table3 colours head and borders itself unless told not to; our palette decides.
      style: { head: [], border: [], compact: true },
    })
    rows.forEach((o, k) => {
      const cells = body[k]!
      table.push([...cells.slice(0, 2), statusColor(c, o.status)(cells[2]!), ...cells.slice(3, 5), clip(cells[5]!, errorWidth)])
    })
    // Counted from the engine's tally, not from the list: LiveState may have kept only part of it.
    const more = failing - rows.length
    if (more > 0) table.push([{ colSpan: 6, content: c.gray(`+${more} more (fleet rollout status)`) }])
    lines.push(table.toString())
  }

  const state = statusColor(c, finished.state)(finished.state)
  lines.push(
    `rollout ${finished.rolloutId} ${state} in ${formatDuration(finished.durationMs)}: ${formatCounts(finished.counts)}${finished.error ? `; error: ${finished.error}` : ''}`,
  )
  const code = finished.exitCode
  const tone = code === 0 ? c.green : code === 5 ? c.red.bold : c.yellow
  lines.push(tone(`exit ${code}: ${EXIT_CODE_MEANING[code] ?? 'unknown exit code'}`))
  return lines.join('\n')
}

/** The summary of what a LiveState saw, or null while the rollout has not finished. */
export function summaryFromState(state: LiveState, options: SummaryOptions): string | null {
  if (!state.finished) return null
  return renderSummary({ finished: state.finished, outcomes: [...state.critical, ...state.otherFailures] }, options)
}
