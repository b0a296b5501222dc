import { formatDuration } from '../duration.js'
import type { RolloutEvent, StatusCounts } from '../rollout/events.js'
import { describeOutcome } from '../rollout/outcome.js'
import { palette, shortSha, statusColor } from './style.js'
import { summary } from '../notify/summary.js'
import { sanitize, sanitizeLine } from '../text/sanitize.js'

export interface PlainOptions {
  readonly color: boolean
  readonly verbose: boolean
  /** Prefix each line with the event's time (for logs: cron, CI). */
  readonly timestamps: boolean
}

export const formatCounts = (counts: StatusCounts): string =>
  (Object.entries(counts) as [keyof StatusCounts, number][])
    .filter(([, n]) => n > 0)
    .map(([status, n]) => `${status} ${n}`)
    .join(', ') || 'no hosts'

/**
 * One line per meaningful event, nothing redrawn: for pipes, cron and CI.
 * Returns null for events that only a live view cares about.
 */
export function formatPlainEvent(event: RolloutEvent, options: PlainOptions): string | null {
  const c = palette(options.color)
  const line = ((): string | null => {
    switch (event.type) {
      case 'rollout-started':
        return (
          `rollout ${event.rolloutId}: ${event.ref} → ${shortSha(event.sha)} on ${event.hosts} host${event.hosts === 1 ? '' : 's'}, stages ${event.stages.map((p, i) => `${p}% (${event.stageSizes[i]})`).join(' → ')}, concurrency ${event.concurrency}` +
          (event.rings ? `; rings ${event.rings.map((r) => `${sanitizeLine(r.name ?? '(others)')} (${r.stages} stage${r.stages === 1 ? '' : 's'})`).join(' → ')}` : '') +
          (event.failureBudget != null ? `; failure budget ${event.failureBudget} host${event.failureBudget === 1 ? '' : 's'}` : '') +
          (event.held?.length ? `\nheld, never touched: ${event.held.map((h) => `${sanitizeLine(h.name)} (${sanitizeLine(h.reason)})`).join(', ')}` : '')
        )
      case 'stage-started':
        return `stage ${event.stage + 1} (${event.ring ? `ring ${sanitizeLine(event.ring)}, ` : ''}${event.percent}%): ${event.hosts.length} host${event.hosts.length === 1 ? '' : 's'}`
      case 'host-started':
        return options.verbose ? `  ${sanitizeLine(event.host)} (${sanitizeLine(event.address)}) updating` : null
      case 'host-step':
        return options.verbose || event.note
          ? `  ${sanitizeLine(event.host)} ${event.phase === 'rollback' ? 'rollback ' : ''}${event.step}${event.note ? `: ${sanitizeLine(event.note)}` : ''}`
          : null
      case 'host-prepared':
        return options.verbose || !event.ok ? `  ${sanitizeLine(event.host)} (stage ${event.stage + 1}) ${event.ok ? 'prepared ahead' : `could not prepare ahead: ${sanitizeLine(event.error ?? '?')}`}` : null
      case 'host-finished': {
        const status = statusColor(c, event.status)(event.status)
        if (event.status === 'held') return `  ${sanitizeLine(event.host)} ${status}, never touched`
        const versions =
          event.status === 'success'
            ? ` ${shortSha(event.previousVersion)} → ${shortSha(event.newVersion)}`
            : event.status === 'skipped'
              ? ` already on ${shortSha(event.newVersion)}`
              : ''
        const error = event.error ? ` [${event.failedStep ?? 'error'}] ${sanitize(event.error).replace(/\n/g, ' | ')}` : ''
        return `  ${sanitizeLine(event.host)} ${status}${versions}${error} (${formatDuration(event.durationMs)})`
      }
      case 'stage-finished':
        return `stage ${event.stage + 1} (${event.percent}%) ${event.halted ? c.yellow('HALTED') : 'done'}: ${formatCounts(event.counts)}; failure rate ${(event.failureRate * 100).toFixed(0)}%`
      case 'stage-delay':
        return options.verbose ? `waiting ${formatDuration(event.delayMs)} before the next stage` : null
      case 'rollout-stopping':
        return c.yellow(
          event.reason === 'signal'
            ? `stopping${event.cause ? ` (${sanitizeLine(event.cause)})` : ''}: no new hosts will start; hosts in flight finish (Ctrl-C again to abort them and roll them back)`
            : 'killing: commands in flight are killed and their hosts rolled back',
        )
      case 'bake-started':
      case 'gate-measured':
      case 'gates-passed':
      case 'rollout-promoted':
        return summary(event)
      case 'gates-failed':
      case 'rollout-paused':
      case 'rollout-aborting':
      case 'cooldown-ignored':
      case 'window-ignored':
        return c.yellow(summary(event))
      case 'request-not-applied':
        return c.yellow(summary(event))
      case 'rollout-resumed':
      case 'rollout-taken-over':
      case 'host-rollback-started':
      case 'host-rollback-finished':
        return summary(event)
      case 'host-rollback-step':
        return options.verbose || event.note ? `${summary(event)}${event.note ? `: ${sanitizeLine(event.note)}` : ''}` : null
      case 'rollout-lost':
        return c.red(`lost the rollout: ${sanitizeLine(event.reason)}; this process stops without recording more (exit 6)`)
      case 'store-unavailable':
        return c.yellow(`database unreachable (${sanitizeLine(event.error)}): retrying writes until ${event.retryUntil}; no new hosts start meanwhile, hosts in flight finish`)
      case 'store-recovered':
        return `database back after ${formatDuration(event.outageMs)}; going on`
      case 'rollout-finished':
        return `rollout ${event.rolloutId} ${statusColor(c, event.state)(event.state)} in ${formatDuration(event.durationMs)}: ${formatCounts(event.counts)}${event.error ? `; error: ${sanitizeLine(event.error)}` : ''}\nexit ${event.exitCode}: ${describeOutcome(event)}`
    }
  })()
  if (line === null) return null
  return options.timestamps ? line.split('\n').map((l) => `${event.at} ${l}`).join('\n') : line
}
