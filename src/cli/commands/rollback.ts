import { UsageError } from '../../errors.js'
import { systemClock } from '../../rollout/clock.js'
import { EXIT_CODE_MEANING } from '../../rollout/exit-code.js'
import { loadInventory } from '../../rollout/inventory.js'
import { rollbackOneHost } from '../../rollout/rollback.js'
import { shortSha } from '../../render/style.js'
import { hostSettings, makeContext, makeExecutor, owner, withStore, type GlobalFlags } from '../context.js'
import { printJson, say } from '../output.js'

export async function rollbackHostCommand(name: string, flags: GlobalFlags & { to?: string }): Promise<number> {
  const ctx = makeContext(flags)
  return withStore(ctx.config, async (store) => {
    const inventory = await loadInventory(store, ctx.config)
    const host = inventory.hosts.find((h) => h.name === name)
    if (!host) {
      const rejected = inventory.rejected.find((r) => r.name === name)
      throw new UsageError(rejected ? `host ${name} is in the inventory but invalid: ${rejected.reason}` : `no active host named ${name} in the inventory`)
    }
    const result = await rollbackOneHost(
      { store, executor: makeExecutor(ctx.config, store), clock: systemClock },
      {
        host,
        ...(flags.to ? { to: flags.to } : {}),
        settings: hostSettings(ctx.config),
        connectTimeoutMs: ctx.config.ssh.connectTimeoutMs,
        owner: owner(),
      },
    )
    if (ctx.out.json) printJson(ctx.out, { host: result.host, to: result.to, ...result.outcome, exitCode: result.exitCode })
    else {
      const o = result.outcome
      say(
        ctx.out,
        o.status === 'success'
          ? `${name}: moved ${shortSha(o.previousVersion)} → ${shortSha(result.to)}, verified`
          : `${name}: ${o.status} at ${o.failedStep ?? '?'}: ${o.error ?? ''}`,
      )
      say(ctx.out, `exit ${result.exitCode}: ${result.exitCode === 4 ? 'the host could not be moved; it was restored to what it ran' : (EXIT_CODE_MEANING[result.exitCode] ?? '')}`)
    }
    return result.exitCode
  })
}
