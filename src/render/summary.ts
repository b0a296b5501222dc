import Table from 'cli-table3'
import stringWidth from 'string-width'
import wrapAnsi from 'wrap-ansi'

import { formatDuration } from '../duration.js'
import type { RolloutEvent } from '../rollout/events.js'
import { describeOutcome } from '../rollout/outcome.js'
import type { LiveState, OutcomeRow } from './live-state.js'
import { formatCounts } from './plain.js'
import { fit } from './width.js'
import { palette, shortSha, statusColor } from './style.js'
import { sanitizeLine } from '../text/sanitize.js'

export interface SummaryInput {
  readonly finished: Extract<RolloutEvent, { type: 'rollout-finished' }>
  /** Per-host outcomes; successes and skips may be included, only the others become rows. */
  readonly outcomes: readonly OutcomeRow[]
  /** The commit the rollout moved hosts to, so a rolled-back row can say what it tried. */
  readonly target?: string | null
}

/**
 * The version column from what is recorded: where the host is now, and for a
 * host moved back, `target ↩ where it is back on` (`prev → prev` would hide the target).
 */
export function versionCell(o: Pick<OutcomeRow, 'status' | 'previousVersion' | 'newVersion'>, target: string | null | undefined): string {
  switch (o.status) {
    case 'rolled_back':
      return `${shortSha(target ?? null)} ↩ ${shortSha(o.newVersion ?? o.previousVersion)}`
    case 'rollback_failed':
      return o.newVersion ? `stuck on ${shortSha(o.newVersion)}` : 'version unknown'
    default:
      return o.previousVersion ? `unchanged ${shortSha(o.previousVersion)}` : 'unchanged'
  }
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

const clip = (text: string, max: number): string => (stringWidth(text) > max ? fit(text, max) : text)

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
      versionCell(o, input.target),
      sanitizeLine(o.error ?? ''),
    ])
    const head = ['host', 'stage', 'status', 'step', 'version', 'error']
    // The error goes last and gets whatever width the other columns leave (each: content + 2 padding + 1 border).
    const used = head.slice(0, -1).reduce((sum, h, i) => sum + Math.max(h.length, ...body.map((r) => stringWidth(r[i]!))) + 3, 0) + 4
    const errorWidth = Math.min(100, Math.max(10, (options.width ?? 120) - used))
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
    `rollout ${finished.rolloutId} ${state} in ${formatDuration(finished.durationMs)}: ${formatCounts(finished.counts)}${finished.error ? `; error: ${sanitizeLine(finished.error)}` : ''}`,
  )
  const code = finished.exitCode
  const tone = code === 0 ? c.green : code === 5 ? c.red.bold : c.yellow
  // Wrapped, never cut: this line is what the exit code means for these hosts.
  lines.push(tone(wrapAnsi(`exit ${code}: ${describeOutcome(finished)}`, options.width ?? 120, { hard: true })))
  return lines.join('\n')
}

/** The summary of what a LiveState saw, or null while the rollout has not finished. */
export function summaryFromState(state: LiveState, options: SummaryOptions): string | null {
  if (!state.finished) return null
  return renderSummary({ finished: state.finished, outcomes: [...state.critical, ...state.otherFailures], target: state.target?.sha ?? null }, options)
}
