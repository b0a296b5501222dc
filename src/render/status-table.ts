import Table from 'cli-table3'

import { formatDuration } from '../duration.js'
import { gateLine } from '../notify/summary.js'
import { LEASE_TTL_MS } from '../rollout/engine.js'
import { describeOutcome } from '../rollout/outcome.js'
import type { RolloutStatus } from '../rollout/status.js'
import { sanitizeLine } from '../text/sanitize.js'
import type { HostStatus, RolloutState } from '../types.js'
import { formatEndpoint } from './endpoint.js'
import { formatCounts } from './plain.js'
import { palette, shortSha, statusColor } from './style.js'

export interface StatusViewOptions {
  readonly color: boolean
  /** Terminal width: the error column gets what the other columns leave. */
  readonly width?: number
  /** Every host, whatever the fleet size. */
  readonly all?: boolean
  /** "Now" in ms since the epoch, for the running time and the heartbeat's age (default: the clock). */
  readonly now?: number
}

/** Up to this many hosts every host is listed; above it only the ones worth a look (at most this many rows). */
export const STATUS_TABLE_MAX_ROWS = 50

const QUIET: ReadonlySet<string> = new Set(['success', 'skipped', 'pending'])
// The hosts that need a person first, then those in flight, then the ones put back.
const URGENCY: Record<string, number> = { rollback_failed: 0, updating: 1, rolled_back: 2, failed: 3 }

const clip = (text: string, max: number): string => (text.length > max ? `${text.slice(0, Math.max(1, max - 1))}…` : text)

/** `2025-05-01 12:00:05Z`: seconds are enough for a human, UTC is the same on every machine. */
export const formatTime = (iso: string): string => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')

/**
 * The human view of `fleet rollout status`: a header, the counts, and a per-host table that stays
 * bounded on big fleets (only the hosts that are not success/skipped/pending, worst first) unless `all`.
 */
export function renderStatus(status: RolloutStatus, options: StatusViewOptions): string {
  const c = palette(options.color)
  const now = options.now ?? (status.readAt ? Date.parse(status.readAt) : Date.now())
  const started = Date.parse(status.startedAt)
  const lines: string[] = []

  lines.push(`rollout ${status.id}: ${statusColor(c, status.state as RolloutState)(status.state)} · ${status.target.ref} → ${shortSha(status.target.sha)}`)
  if (status.finishedAt)
    lines.push(`started ${formatTime(status.startedAt)}, finished ${formatTime(status.finishedAt)} (took ${formatDuration(Date.parse(status.finishedAt) - started)}) · owner ${status.owner}`)
  else {
    const silent = now - Date.parse(status.heartbeatAt)
    // Judged from the lease on the database's clock when read (older snapshots: from the heartbeat's age).
    const stale = status.orchestrator ? status.orchestrator === 'gone' : status.state === 'running' && silent > LEASE_TTL_MS
    const heartbeat =
      status.orchestrator === 'none'
        ? 'no process drives it now (between cron ticks, or waiting for a person)'
        : `last heartbeat ${formatDuration(Math.max(0, silent))} ago${stale ? ': the orchestrator has stopped (resume or abort it)' : ''}`
    lines.push(`started ${formatTime(status.startedAt)} (running for ${formatDuration(Math.max(0, now - started))}; ${stale ? c.yellow(heartbeat) : heartbeat}) · owner ${status.owner}`)
  }
  const stage = Math.min(Math.max(status.currentStage, 0), Math.max(status.stages.length - 1, 0))
  const ring = status.stageRings?.[stage]
  lines.push(`stage ${stage + 1}/${status.stages.length} (${ring ? `ring ${sanitizeLine(ring)}, ` : ''}${status.stages[stage] ?? 0}%) · stages ${status.stages.join('/')}%`)
  if (status.held?.length) lines.push(`held, never touched: ${status.held.map((h) => `${sanitizeLine(h.name)} (${sanitizeLine(h.reason)})`).join(', ')}`)
  if (status.failureBudget != null) lines.push(`failure budget: ${status.failureBudget} host${status.failureBudget === 1 ? '' : 's'}`)
  lines.push(`${status.hosts.length} host${status.hosts.length === 1 ? '' : 's'}: ${formatCounts(status.counts)}`)
  if (status.error) lines.push(c.yellow(`error: ${sanitizeLine(status.error)}`))
  if (status.gates) {
    const g = status.gates
    const what = g.phase === 'measured' ? `baking, last measurement ${g.verdict ?? '?'}` : `gates ${g.phase}${g.reason ? `: ${sanitizeLine(g.reason)}` : ''}`
    lines.push(`gates: stage ${g.stage + 1} ${what} (${g.at})${g.gates.length ? ` · ${g.gates.map(gateLine).join(', ')}` : ''}`)
  }
  // Requests still waiting, and those taken in without effect: a person sees what became of theirs.
  for (const r of status.requests ?? [])
    if (r.outcome === null) lines.push(c.yellow(`${r.kind} requested by ${sanitizeLine(r.actor)} at ${formatTime(r.requestedAt)}${r.reason ? ` (${sanitizeLine(r.reason)})` : ''}: pending, the rollout's next driver applies it`))
    else if (r.outcome !== 'applied') lines.push(`${r.kind} requested by ${sanitizeLine(r.actor)} at ${formatTime(r.requestedAt)}: ${sanitizeLine(r.outcome)}`)
  if (status.exitCode !== null) lines.push(`exit ${status.exitCode}: ${describeOutcome({ state: status.state as RolloutState, exitCode: status.exitCode, counts: status.counts, error: status.error })}`)

  const full = options.all === true || status.hosts.length <= STATUS_TABLE_MAX_ROWS
  const notable = full
    ? status.hosts
    : status.hosts
        .map((h, position) => ({ h, position }))
        .filter(({ h }) => !QUIET.has(h.status))
        .sort((a, b) => (URGENCY[a.h.status] ?? 9) - (URGENCY[b.h.status] ?? 9) || a.position - b.position)
        .map(({ h }) => h)
  const rows = full ? notable : notable.slice(0, STATUS_TABLE_MAX_ROWS)

  if (rows.length > 0) {
    const head = ['host', 'address', 'status', 'version', 'error']
    const body = rows.map((h) => [
      clip(h.name, 40),
      clip(formatEndpoint(h.address, h.port), 48),
      h.step ? `${h.status} (${h.step})` : h.status,
      `${shortSha(h.previousVersion)} → ${shortSha(h.newVersion)}`,
      sanitizeLine(h.error?.split('\n')[0]?.trim() ?? ''),
    ])
    const widths = head.map((title, i) => Math.max(title.length, ...body.map((r) => r[i]!.length)))
    const paint = (cells: string[], k: number): string[] => cells.map((cell, i) => (i === 2 ? statusColor(c, rows[k]!.status as HostStatus)(cell) : cell))
    // A boxed table while it is short; cli-table3 takes seconds for thousands of rows, so `--all` on a big fleet gets aligned columns.
    const boxed = rows.length <= STATUS_TABLE_MAX_ROWS
    // The error goes last and gets what the other columns leave (boxed: content + 2 padding + 1 border each).
    const used = widths.slice(0, -1).reduce((sum, w) => sum + w + (boxed ? 3 : 2), boxed ? 4 : 0)
    const errorWidth = Math.max(20, (options.width ?? 120) - used)
    for (const row of body) row[4] = clip(row[4]!, errorWidth)
    if (boxed) {
      const table = new Table({ head: head.map((h) => c.bold(h)), style: { head: [], border: [], compact: true } })
      body.forEach((cells, k) => table.push(paint(cells, k)))
      lines.push(table.toString())
    } else {
      const pad = (cells: string[]): string[] => cells.map((cell, i) => (i < cells.length - 1 ? cell.padEnd(widths[i]!) : cell))
      lines.push(c.bold(pad(head).join('  ').trimEnd()), ...body.map((cells, k) => paint(pad(cells), k).join('  ').trimEnd()))
    }
  }
  if (!full) {
    const hidden = status.hosts.length - notable.length
    const more = notable.length - rows.length
    lines.push(
      c.gray(
        `showing ${rows.length} of ${status.hosts.length} hosts` +
          (more > 0 ? `; +${more} more not success/skipped/pending` : '') +
          `; ${hidden} success/skipped/pending hidden (--all shows every host)`,
      ),
    )
  }
  return lines.join('\n')
}
