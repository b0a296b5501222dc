import { FleetError, ExitCode } from '../../errors.js'
import { buildStatus } from '../../rollout/status.js'
import { formatCounts } from '../../render/plain.js'
import { palette, shortSha, statusColor } from '../../render/style.js'
import { makeContext, withStore, type GlobalFlags } from '../context.js'
import { printJson, say } from '../output.js'

export async function rolloutStatus(id: string | undefined, flags: GlobalFlags): Promise<number> {
  const ctx = makeContext(flags)
  return withStore(ctx.config, async (store) => {
    const rollout = await store.getRollout(id)
    if (!rollout) throw new FleetError(id ? `no rollout with id ${id}` : 'no rollout has run yet', ExitCode.usage)
    const status = buildStatus(rollout, await store.listRolloutHosts(rollout.id))
    if (ctx.out.json) {
      printJson(ctx.out, status)
      return 0
    }
    const c = palette(ctx.out.color)
    say(ctx.out, `rollout ${status.id}: ${statusColor(c, rollout.state)(status.state)}, ${status.target.ref} → ${shortSha(status.target.sha)}`)
    say(ctx.out, `started ${status.startedAt}${status.finishedAt ? `, finished ${status.finishedAt}` : ''}; stage ${status.currentStage + 1} of ${status.stages.length} (${status.stages.join('/')}%)`)
    say(ctx.out, formatCounts(status.counts))
    for (const h of status.hosts)
      say(ctx.out, `  ${h.name.padEnd(20)} ${statusColor(c, h.status as never)(h.status.padEnd(15))} ${shortSha(h.previousVersion)} → ${shortSha(h.newVersion)}${h.error ? `  ${h.error.split('\n')[0]}` : ''}`)
    return 0
  })
}
