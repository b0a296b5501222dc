import { UsageError } from '../../errors.js'
import { DatabaseClock } from '../../rollout/clock.js'
import { loadInventory } from '../../rollout/inventory.js'
import { rollbackOneHost, type SingleRollbackResult } from '../../rollout/rollback.js'
import { shortSha } from '../../render/style.js'
import { sanitizeLine } from '../../text/sanitize.js'
import { hostSettings, makeContext, makeExecutor, owner, withStore, type GlobalFlags } from '../context.js'
import { printJson, say } from '../output.js'
import { rolloutEffects } from '../../report/effects.js'

export async function rollbackHostCommand(name: string, flags: GlobalFlags & { to?: string; reason?: string }): Promise<number> {
  const ctx = makeContext(flags)
  return withStore(ctx.config, async (store) => {
    const inventory = await loadInventory(store, ctx.config)
    const host = inventory.hosts.find((h) => h.name === name)
    if (!host) {
      const rejected = inventory.rejected.find((r) => r.name === name)
      throw new UsageError(rejected ? `host ${name} is in the inventory but invalid: ${rejected.reason}` : `no active host named ${name} in the inventory`)
    }
    // Its events go through the journal like a rollout's: stored, then notified and published.
    const effects = rolloutEffects(ctx.config, store, (line) => void ctx.out.stderr.write(`fleet: ${line}\n`))
    let result: SingleRollbackResult
    try {
      result = await rollbackOneHost(
        { store, executor: makeExecutor(ctx.config, store), clock: await DatabaseClock.of(store), onStored: effects.onStored },
        { host, ...(flags.to ? { to: flags.to } : {}), settings: hostSettings(ctx.config), connectTimeoutMs: ctx.config.ssh.connectTimeoutMs, owner: owner(), reason: flags.reason ?? null },
      )
    } finally {
      await effects.finish()
    }
    if (ctx.out.json) printJson(ctx.out, { host: result.host, to: result.to, action: result.action, ...result.outcome, exitCode: result.exitCode })
    else for (const line of describeRollback(name, result)) say(ctx.out, line)
    return result.exitCode
  })
}

/** What happened to the host, from the recorded outcome only. */
export function describeRollback(name: string, result: SingleRollbackResult): string[] {
  const o = result.outcome
  const error = sanitizeLine(o.error ?? '')
  if (result.action === 'already')
    return [`${name}: already on ${shortSha(result.to)}, the version it ran before the rollout that last moved it; nothing to do (use --to <sha> to move it elsewhere)`, 'exit 0: nothing was changed']
  switch (o.status) {
    case 'success':
      return [`${name}: moved ${shortSha(o.previousVersion)} → ${shortSha(result.to)}, verified`, `exit 0: ${name} runs ${shortSha(result.to)}`]
    case 'failed':
      return [`${name}: failed at ${o.failedStep ?? '?'}: ${error}`, `exit ${result.exitCode}: nothing was changed on ${name}`]
    case 'rolled_back':
      return [
        `${name}: could not be moved to ${shortSha(result.to)} (${o.failedStep ?? '?'}): ${error}`,
        `exit ${result.exitCode}: ${name} was restored to ${shortSha(o.newVersion)}, what it ran before this command`,
      ]
    default:
      return [
        `${name}: ROLLBACK FAILED at ${o.failedStep ?? '?'}: ${error}`,
        `exit ${result.exitCode}: ${name} may be down (${o.newVersion ? `HEAD ${shortSha(o.newVersion)}` : 'version unknown'}) and needs a person`,
      ]
  }
}
