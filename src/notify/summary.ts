import { sanitizeLine } from '../text/sanitize.js'
import type { FleetEventLike } from './event-types.js'
import { formatDuration } from '../duration.js'
import { counts, formatValue, list, num, short, stageLabel, text, who } from './fields.js'

const plural = (n: number, one: string): string => `${n} ${one}${n === 1 ? '' : 's'}`
const by = (event: FleetEventLike): string => {
  const actor = who(event)
  return actor ? ` by ${actor}` : ''
}
const because = (event: FleetEventLike): string => {
  const reason = text(event, 'reason')
  return reason ? `: ${reason}` : ''
}
const changed = (event: FleetEventLike): string => {
  const changes = list(event, 'changed').filter((c): c is string => typeof c === 'string')
  return changes.length > 0 ? `; gates now from the config: ${changes.map((c) => sanitizeLine(c).slice(0, 80)).join(', ')}` : ''
}
const duration = (ms: number | null): string => (ms === null ? '' : ` in ${formatDuration(ms)}`)

/** `error_rate=0.002 (max 0.01) pass` for one gate of a `gate-measured` event. */
export function gateLine(gate: unknown): string {
  if (typeof gate !== 'object' || gate === null) return '?'
  const g = gate as FleetEventLike
  const name = text(g, 'name', 60) ?? '?'
  const bounds = [num(g, 'min') === null ? null : `min ${formatValue(g.min)}`, num(g, 'max') === null ? null : `max ${formatValue(g.max)}`]
    .filter(Boolean)
    .join(', ')
  // A check's value is its exit code: the verdict and reason say it better.
  const value = typeof g.value === 'number' && g.kind !== 'check' ? `=${formatValue(g.value)}` : g.valueText === '+Inf' || g.valueText === '-Inf' ? `=${g.valueText}` : ''
  const reason = text(g, 'reason', 80)
  return `${name}${value}${bounds ? ` (${bounds})` : ''} ${text(g, 'verdict', 20) ?? '?'}${reason && g.verdict !== 'pass' ? ` (${reason})` : ''}`
}

/**
 * One line of plain text for any event: what a notification, a log line or the audit trail says
 * about it. Untrusted strings (host names, errors, reasons) are sanitized to one line. Unknown
 * types still get a line (their type, and host if any), so a newer event never renders empty.
 */
export function summary(event: FleetEventLike): string {
  const host = text(event, 'host', 120) ?? '?'
  switch (event.type) {
    case 'rollout-started': {
      const stages = list(event, 'stages')
      const sizes = list(event, 'stageSizes')
      const hosts = num(event, 'hosts') ?? 0
      return `rollout started${by(event)}: ${text(event, 'ref', 100) ?? '?'} → ${short(event.sha)} on ${plural(hosts, 'host')}, stages ${stages.map((p, i) => `${formatValue(p)}%${typeof sizes[i] === 'number' ? ` (${sizes[i]})` : ''}`).join(' → ')}`
    }
    case 'stage-started':
      return `${stageLabel(event)} started: ${plural(list(event, 'hosts').length, 'host')}`
    case 'host-started':
      return `${host} updating (${stageLabel(event)})`
    case 'host-step':
      return `${host}: ${event.phase === 'rollback' ? 'rollback ' : ''}${text(event, 'step', 40) ?? '?'}`
    case 'host-finished': {
      const status = text(event, 'status', 40) ?? '?'
      const step = text(event, 'failedStep', 40)
      const error = text(event, 'error')
      const took = duration(num(event, 'durationMs'))
      if (status === 'success') return `${host} updated ${short(event.previousVersion)} → ${short(event.newVersion)}${took}`
      if (status === 'skipped') return `${host} skipped: already on ${short(event.newVersion)}`
      if (status === 'held') return `${host} held, never touched`
      const what = status === 'rollback_failed' ? 'ROLLBACK FAILED (the host may be down)' : status.replace('_', ' ')
      return `${host} ${what}${step ? ` at ${step}` : ''}${error ? `: ${error}` : ''}${took}`
    }
    case 'stage-finished': {
      const rate = num(event, 'failureRate')
      return `${stageLabel(event)} ${event.halted === true ? 'HALTED' : 'done'}: ${counts(event.counts)}${rate === null ? '' : `; failure rate ${Math.round(rate * 100)}%`}`
    }
    case 'stage-delay':
      return `waiting ${formatDuration(num(event, 'delayMs') ?? 0)} before the next stage`
    case 'bake-started': {
      const ends = text(event, 'endsAt', 40)
      return `${stageLabel(event)} bake started: ${formatDuration(num(event, 'bakeMs') ?? 0)}, measured every ${formatDuration(num(event, 'intervalMs') ?? 0)}${ends ? ` until ${ends}` : ''}`
    }
    case 'gate-measured':
      return `${stageLabel(event)} gates ${text(event, 'verdict', 20) ?? '?'}: ${list(event, 'gates').map(gateLine).join(', ') || 'no gates'}`
    case 'gates-passed':
      return `${stageLabel(event)} gates passed${by(event)}${because(event)}`
    case 'gates-failed': {
      const action = text(event, 'onFail', 20) ?? text(event, 'action', 20)
      return `${stageLabel(event)} gates FAILED${because(event)}${action === 'revert' ? '; reverting every updated host' : action === 'halt' ? '; halting' : ''}`
    }
    case 'rollout-paused':
      return `rollout paused${by(event)}${because(event)}`
    case 'rollout-resumed':
      return `rollout resumed${by(event)}${num(event, 'stage') === null ? '' : ` at ${stageLabel(event)}`}${because(event)}${changed(event)}`
    case 'rollout-promoted':
      return `${stageLabel(event)} promoted${by(event)}${event.skipBake === true ? ' (bake skipped)' : ''}${because(event)}`
    case 'request-not-applied':
      return `${text(event, 'kind', 20) ?? 'request'} request${by(event)} not applied: ${text(event, 'why') ?? '?'}${because(event)}`
    case 'rollout-aborting':
      return `abort requested${by(event)}${event.rollback === true ? ' (hosts in flight are rolled back)' : ''}${because(event)}`
    case 'host-rollback-started':
      return `${host} rollback to ${short(event.to)} started${by(event)}${because(event)}`
    case 'host-rollback-step':
      return `${host} rollback ${text(event, 'step', 20) ?? '?'}`
    case 'host-rollback-finished': {
      const error = text(event, 'error')
      return event.already === true
        ? `${host} already on ${short(event.to)}: nothing to do`
        : `${host} rollback to ${short(event.to)}: ${text(event, 'status', 20) ?? '?'}${error ? ` [${text(event, 'failedStep', 20) ?? 'error'}] ${error}` : ''}`
    }
    case 'window-ignored':
      return `deploy window ignored${text(event, 'opensAt', 40) ? ` (next opened ${text(event, 'opensAt', 40)})` : ''}${by(event)}${because(event)}`
    case 'cooldown-ignored':
      return `cooldown${text(event, 'until', 40) ? ` until ${text(event, 'until', 40)}` : ''} ignored${by(event)}${because(event)}`
    case 'rollout-stopping':
      return event.reason === 'abort'
        ? 'killing: commands in flight are killed and their hosts rolled back'
        : `stopping${text(event, 'cause', 60) ? ` (${text(event, 'cause', 60)})` : ''}: no new hosts start; hosts in flight finish`
    case 'store-unavailable':
      return `database unreachable (${text(event, 'error') ?? '?'}): retrying writes until ${text(event, 'retryUntil', 40) ?? '?'}`
    case 'store-recovered':
      return `database back after ${formatDuration(num(event, 'outageMs') ?? 0)}`
    case 'rollout-finished': {
      const error = text(event, 'error')
      const exit = num(event, 'exitCode')
      return `rollout ${text(event, 'state', 20) ?? '?'}${duration(num(event, 'durationMs'))}: ${counts(event.counts)}${error ? `; error: ${error}` : ''}${exit === null ? '' : `; exit ${exit}`}`
    }
    case 'trace-started':
      return `traced: trace id ${text(event, 'traceId', 32) ?? '?'} (${text(event, 'endpoint', 120) ?? '?'})`
    case 'notification-failed':
      return `notification of ${text(event, 'event', 40) ?? '?'} to ${text(event, 'url', 120) ?? '?'} failed${num(event, 'attempts') === null ? '' : ` after ${plural(num(event, 'attempts')!, 'attempt')}`}: ${text(event, 'error') ?? '?'}`
    default:
      return `${sanitizeLine(event.type).slice(0, 60)}${text(event, 'host', 120) ? ` ${host}` : ''}${by(event)}${because(event)}`
  }
}
