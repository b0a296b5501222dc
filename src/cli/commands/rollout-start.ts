
import type { RawConfigOverrides } from '../../config/load.js'
import { formatDuration } from '../../duration.js'
import { UsageError } from '../../errors.js'
import { measure } from '../../gates/measure.js'
import { gatesActive } from '../../gates/types.js'
import { gateLine } from '../../notify/summary.js'
import { planRollout, runRollout } from '../../rollout/engine.js'
import { ringOfStage } from '../../rollout/plan.js'
import { loadInventory } from '../../rollout/inventory.js'
import type { Session } from '../../ssh/executor.js'
import { makeContext, makeExecutor, rolloutRequest, configDir, withStore, type GlobalFlags } from '../context.js'
import { checkCooldownFlags, cooldownGate, windowGate } from '../../rollout/cooldown.js'
import { driveHere, handBack } from '../drive.js'
import { printJson, say } from '../output.js'
import { pickRenderer, type RendererFactory } from '../renderer.js'

export interface RolloutStartFlags extends GlobalFlags {
  readonly ref?: string
  readonly stages?: string
  readonly failureThreshold?: string
  readonly concurrency?: string
  readonly stageDelay?: string
  readonly seed?: string
  readonly dryRun?: boolean
  readonly yes?: boolean
  readonly ignoreCooldown?: boolean
  readonly ignoreWindow?: boolean
  readonly reason?: string
  readonly detach?: boolean
}

export const startOverrides = (flags: RolloutStartFlags): RawConfigOverrides => ({
  rollout: {
    ...(flags.stages !== undefined ? { stages: flags.stages } : {}),
    ...(flags.failureThreshold !== undefined ? { failureThreshold: flags.failureThreshold } : {}),
    ...(flags.concurrency !== undefined ? { concurrency: flags.concurrency } : {}),
    ...(flags.stageDelay !== undefined ? { stageDelay: flags.stageDelay } : {}),
  },
})

export async function rolloutStart(flags: RolloutStartFlags, renderer: RendererFactory = pickRenderer): Promise<number> {
  const ctx = makeContext(flags, startOverrides(flags))
  const { config } = ctx
  checkCooldownFlags(flags)
  return withStore(config, async (store) => {
    const inventory = await loadInventory(store, config)
    for (const bad of inventory.rejected) say(ctx.out, `warning: inventory row ${bad.name} left out: ${bad.reason}`)
    if (inventory.hosts.length === 0) throw new UsageError(`the inventory (${inventory.source === 'query' ? 'inventory.query' : 'fleet hosts table'}) has no valid active hosts`)
    // Before any host is touched: exit 6 while a cooldown is in force (a dry run only says so).
    const ignored = await cooldownGate(store, config.rollout.cooldownMs, flags.dryRun ? { ignoreCooldown: true } : flags)
    // … and outside every deploy window (the dry run says so too).
    const window = windowGate(config.rollout.windows, inventory.hosts, (await store.now()).getTime(), flags.dryRun ? { ignoreWindow: true } : flags)
    if (window) say(ctx.out, `outside every deploy window (next opens ${window.opensAt ?? 'never'}): ${flags.dryRun ? 'a real start would exit 6' : `ignored by ${window.actor}: ${window.reason}`}`)
    const request = rolloutRequest(ctx, inventory.hosts, { ref: flags.ref, seed: flags.seed, ignoredCooldown: flags.dryRun ? null : ignored, ignoredWindow: flags.dryRun ? null : window })
    const executor = makeExecutor(config, store)
    if (ignored) say(ctx.out, `cooldown until ${ignored.until.toISOString()} (${ignored.causedBy ?? 'the last rollout'} ${ignored.cause}) ${flags.dryRun ? 'is in force: a real start would exit 6' : `ignored by ${ignored.actor}: ${ignored.reason}`}`)
    if (flags.dryRun) {
      const sessions = new Map<string, Session>()
      try {
        const { plan, target } = await planRollout({ executor }, request, sessions)
        // The gate plan, and every gate measured once now, as the canary stage's bake would (changes nothing).
        const first = plan.byStage.findIndex((s) => s.length > 0)
        const gates = gatesActive(config.gates)
          ? { bake: config.gates.bakeMs, interval: config.gates.intervalMs, onFail: config.gates.onFail, measurement: await measure(config.gates, { sha: target.sha, stage: first, hosts: plan.byStage[first]!.map((h) => h.name) }, { checkTimeoutMs: config.timeouts.commandMs, cwd: configDir(ctx) }) }
          : null
        const dry = {
          dryRun: true,
          target,
          seed: plan.seed,
          stages: plan.byStage.map((hosts, i) => ({ percent: plan.stages[i], ring: ringOfStage(plan.rings)[i] ?? null, hosts: hosts.map((h) => h.name) })),
          held: plan.held,
          gates,
          rejected: inventory.rejected,
        }
        if (ctx.out.json) printJson(ctx.out, dry)
        else {
          say(ctx.out, `dry run: ${target.ref} → ${target.sha} on ${plan.hosts.length} hosts (seed ${plan.seed}); nothing will be changed`)
          dry.stages.forEach((s, i) => say(ctx.out, `stage ${i + 1} (${s.ring ? `ring ${s.ring}, ` : ''}${s.percent}%): ${s.hosts.length ? s.hosts.join(', ') : '(empty)'}`))
          if (plan.held.length) say(ctx.out, `held, never touched: ${plan.held.map((h) => `${h.name} (${h.reason})`).join(', ')}`)
          if (gates) {
            say(ctx.out, `gates: every stage bakes ${formatDuration(gates.bake)}, measured every ${formatDuration(gates.interval)}; on failure: ${gates.onFail}`)
            for (const g of gates.measurement.gates) say(ctx.out, `  would ${g.verdict === 'pass' ? 'pass' : g.verdict === 'fail' ? 'fail' : `be ${g.verdict}`} now: ${gateLine(g)}`)
          }
        }
        return 0
      } finally {
        for (const s of sessions.values()) s.close()
      }
    }

    return driveHere(ctx, store, (deps) => runRollout(deps, request, { detach: flags.detach === true }), renderer, handBack(ctx))
  })
}
