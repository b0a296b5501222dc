import { auditEntries, isNoise, type AuditEntry, type StoredEvent } from './entries.js'

export interface AuditTextOptions {
  /** Include host progress (host-started, host-step, stage-delay). */
  readonly all?: boolean
}

/**
 * `fleet rollout events` as text: one line per event, `<time>  <who>  [* ]<what>[ — <why>]`, in the
 * order recorded; `*` marks a person's command (pause, resume, promote, abort, ignored cooldown).
 * Who is `fleet` when the event names nobody. Every field is one sanitized line.
 */
export function auditText(events: readonly StoredEvent[], options: AuditTextOptions = {}): string {
  const entries = auditEntries(events).filter((e) => options.all || !isNoise(e.type))
  if (entries.length === 0) return 'no events recorded\n'
  const whoWidth = Math.min(32, Math.max(...entries.map((e) => (e.who ?? 'fleet').length)))
  return entries.map((e) => `${e.at}  ${(e.who ?? 'fleet').padEnd(whoWidth)}  ${e.manual ? '* ' : ''}${e.what}${e.why ? ` — ${e.why}` : ''}`).join('\n') + '\n'
}

/**
 * `--json`: NDJSON, one line per stored event (all of them, host progress included), in order:
 * the event as the `--json` stream has it (`type`, `at` and the type's fields) plus `who`, `manual`
 * and `summary`. One object per line so a long trail streams and `jq -c` / `grep` work per event.
 */
export function auditJson(events: readonly StoredEvent[]): string {
  return auditEntries(events)
    .map((e: AuditEntry) => `${JSON.stringify({ ...e.event, who: e.who, manual: e.manual, summary: e.summary })}\n`)
    .join('')
}
