import { formatDuration } from '../duration.js'
import { counts, num, short, text } from '../notify/fields.js'
import { sanitizeLine } from '../text/sanitize.js'
import { auditEntries, isNoise, type AuditEntry, type StoredEvent } from './entries.js'

/** What the store knows of the rollout itself (a subset of RolloutRecord); events fill in what is missing. */
export interface AuditRollout {
  readonly id: string
  readonly ref?: string
  readonly sha?: string
  readonly state?: string
  readonly owner?: string
  readonly startedAt?: Date | null
  readonly finishedAt?: Date | null
  readonly exitCode?: number | null
  readonly error?: string | null
}

/**
 * Markdown text is pasted into incident documents and rendered: every ASCII punctuation character
 * that means something there is backslash-escaped (CommonMark), so a host name or a reason can
 * neither break the table (`|`) nor become a link, an image, HTML or emphasis.
 */
export const md = (value: string): string => sanitizeLine(value).replace(/[\\`*_[\]<>|~&]/g, (c) => `\\${c}`)

const time = (iso: string): string => iso.replace('T', ' ').replace(/\.\d{3}Z$/, 'Z')

const row = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`

/**
 * A report a person can paste into an incident document: title with the rollout id, target, who
 * started it and when, the outcome, the hosts that need attention, and the timeline (time | who |
 * what | why / values), manual actions in bold.
 */
export function auditMarkdown(rollout: AuditRollout, events: readonly StoredEvent[]): string {
  const entries = auditEntries(events)
  const started = entries.find((e) => e.type === 'rollout-started')
  const finished = [...entries].reverse().find((e) => e.type === 'rollout-finished')
  const ref = rollout.ref ?? (started && text(started.event, 'ref', 100)) ?? '?'
  const sha = rollout.sha ?? (typeof started?.event.sha === 'string' ? started.event.sha : null)
  const startedAt = rollout.startedAt?.toISOString() ?? started?.at ?? null
  const finishedAt = rollout.finishedAt?.toISOString() ?? finished?.at ?? null
  const startedBy = started?.who ?? (rollout.owner ? sanitizeLine(rollout.owner).replace(/ pid \d+$/, '') : null)
  const state = rollout.state ?? (finished && text(finished.event, 'state', 20)) ?? 'unknown'
  const exitCode = rollout.exitCode ?? (finished ? num(finished.event, 'exitCode') : null)
  const error = rollout.error ?? (finished ? text(finished.event, 'error') : null)

  const lines = [`# Rollout ${md(rollout.id)}: ${md(ref)} → ${md(short(sha))}`, '']
  lines.push(row(['', '']), row(['---', '---']))
  lines.push(row(['Target', `${md(ref)} at \`${sha ? sanitizeLine(sha).replace(/`/g, '') : '?'}\``]))
  lines.push(row(['Started', `${startedAt ? time(startedAt) : '?'}${startedBy ? ` by ${md(startedBy)}` : ''}`]))
  const took = startedAt && finishedAt ? ` (${formatDuration(Date.parse(finishedAt) - Date.parse(startedAt))})` : ''
  lines.push(row(['Finished', finishedAt ? `${time(finishedAt)}${took}` : 'not finished']))
  const hostCounts = finished ? `; hosts: ${md(counts(finished.event.counts))}` : ''
  lines.push(row(['Outcome', `**${md(state)}**${exitCode === null ? '' : ` (exit ${exitCode})`}${hostCounts}${error ? `; error: ${md(error)}` : ''}`]))
  const manual = entries.filter((e) => e.manual)
  if (manual.length) lines.push(row(['Manual actions', md(`${manual.length}`) + ` (${manual.map((e) => md(e.type.replace(/^rollout-/, ''))).join(', ')})`]))
  lines.push('')

  const attention = latestHostOutcomes(entries).filter((e) => e.status === 'rollback_failed' || e.status === 'rolled_back' || e.status === 'failed')
  if (attention.length) {
    lines.push('## Hosts that did not succeed', '')
    for (const e of attention) lines.push(`- **${md(e.host)}**: ${md(e.status)}${e.entry.why ? `: ${md(e.entry.why)}` : ''}`)
    lines.push('')
  }

  lines.push('## Timeline', '', row(['Time (UTC)', 'Who', 'What', 'Why / values']), row(['---', '---', '---', '---']))
  for (const e of entries.filter((entry) => !isNoise(entry.type))) {
    const what = e.manual ? `**${md(e.what)}**` : md(e.what)
    lines.push(row([time(e.at), md(e.who ?? 'fleet'), what, e.why ? md(e.why) : '']))
  }
  return `${lines.join('\n')}\n`
}

/** Each host's last `host-finished` (a revert or a resumed run may finish a host twice). */
function latestHostOutcomes(entries: readonly AuditEntry[]): { host: string; status: string; entry: AuditEntry }[] {
  const byHost = new Map<string, { host: string; status: string; entry: AuditEntry }>()
  for (const entry of entries) {
    if (entry.type !== 'host-finished') continue
    const host = text(entry.event, 'host', 253)
    if (host !== null) byHost.set(host, { host, status: text(entry.event, 'status', 40) ?? '?', entry })
  }
  return [...byHost.values()]
}
