import { auditJson, auditMarkdown, auditText } from '../../audit/index.js'
import { UsageError } from '../../errors.js'
import { sanitizeLine } from '../../text/sanitize.js'
import { makeContext, type GlobalFlags } from '../context.js'
import { withReadSource } from '../../report/read-source.js'

export interface RolloutEventsFlags extends GlobalFlags {
  readonly markdown?: boolean
  readonly all?: boolean
}

/**
 * `fleet rollout events [<id>]`: the audit trail of the latest (or given) rollout, read-only.
 * Text (one line per decision or manual action; --all adds host progress), --json (NDJSON, every
 * event) or --markdown (a report to paste into an incident document).
 */
export async function rolloutEvents(id: string | undefined, flags: RolloutEventsFlags): Promise<number> {
  if (flags.json && flags.markdown) throw new UsageError('--json and --markdown are two formats: pick one')
  if (id !== undefined && (id.length === 0 || id.length > 100 || sanitizeLine(id) !== id)) throw new UsageError(`not a rollout id: ${JSON.stringify(id)}`)
  const ctx = makeContext(flags)
  const trail = await withReadSource(ctx, (source) => source.events(id))
  if (!trail) {
    if (id) throw new UsageError(`no rollout with id ${id}`)
    // Nothing to list: empty NDJSON, a sentence for people.
    if (!ctx.out.json) ctx.out.stdout.write('no rollouts yet\n')
    return 0
  }
  const { rollout, events } = trail
  if (ctx.out.json) ctx.out.stdout.write(auditJson(events))
  else if (flags.markdown) ctx.out.stdout.write(auditMarkdown(rollout, events))
  else ctx.out.stdout.write(`rollout ${rollout.id} (${sanitizeLine(rollout.state)}): ${sanitizeLine(rollout.ref)}\n${auditText(events, { all: flags.all === true })}`)
  return 0
}
