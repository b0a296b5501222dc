import { ExitCode, LockedError } from '../../errors.js'
import { checkCooldownFlags, cooldownGate } from '../../rollout/cooldown.js'
import { planRollout, runRollout, tickRollout } from '../../rollout/engine.js'
import { loadInventory } from '../../rollout/inventory.js'
import type { Session } from '../../ssh/executor.js'
import { shortSha } from '../../render/style.js'
import { currentSettings, makeContext, makeExecutor, owner, rolloutRequest, withStore, type Context, type GlobalFlags } from '../context.js'
import { startMetrics } from '../../report/metrics.js'
import { closedFor } from '../../rollout/window.js'
import { whoRunsIt } from '../../rollout/control.js'
import { printJson, say } from '../output.js'
import { driveHere } from '../drive.js'

/** Ticks take what is due and leave; a rollout a person stopped or paused waits for a person. */
const WAITS_FOR_A_PERSON = new Set(['paused', 'interrupted'])
const IN_PROGRESS = new Set(['running', 'baking'])

/**
 * `fleet rollout tick [--ref <ref>]`, for cron: one decision's worth of work
 * from the stored state, then exit. 0 when it progressed or waited normally
 * (also when another process runs the rollout), 7 while paused or while gates
 * are in error, 3/4/5 on the tick that reached that outcome. With `--ref` and
 * no rollout in progress it starts one, unless the ref names the commit the
 * last completed rollout shipped.
 */
export async function rolloutTick(flags: GlobalFlags & { ref?: string; ignoreCooldown?: boolean; reason?: string }): Promise<number> {
  checkCooldownFlags(flags)
  const ctx = makeContext(flags)
  const running = await whoRunsIt(ctx.config)
  await running.close()
  const held = (holder: string) => report(ctx, ExitCode.ok, { action: 'none', holder }, `rollout in progress by ${holder}; nothing to do this tick`)
  if (running.holder) return held(running.holder.holder)
  try {
    return await tickWithStore(ctx, flags)
  } catch (error) {
    // Two ticks at once: the one that lost the race to the store or the lease has nothing to do.
    if (error instanceof LockedError) return held(error.message)
    throw error
  }
}

async function tickWithStore(ctx: Context, flags: { ref?: string; ignoreCooldown?: boolean; reason?: string }): Promise<number> {
  return withStore(ctx.config, async (store) => {
    // Idle ticks publish too: the last-run time is how an alert tells a healthy controller from a dead one.
    const idle = async (code: number, json: Record<string, unknown>, text: string): Promise<number> => {
      await startMetrics(store, ctx.config, (line) => void ctx.out.stderr.write(`fleet: ${line}\n`)).finish()
      return report(ctx, code, json, text)
    }
    const latest = await store.getRollout()
    if (latest && WAITS_FOR_A_PERSON.has(latest.state)) {
      const paused = (await store.listEvents(latest.id, ['rollout-paused'])).at(-1)?.data as { reason?: string } | undefined
      const why = latest.state === 'paused' ? (paused?.reason ?? latest.error ?? 'paused') : (latest.error ?? 'interrupted')
      return idle(ExitCode.paused, { action: 'none', rolloutId: latest.id, state: latest.state, reason: why }, `rollout ${latest.id} is ${latest.state} (${why}); \`fleet rollout resume\` or \`fleet rollout promote --reason …\` continues it`)
    }
    if (latest && IN_PROGRESS.has(latest.state)) return driveHere(ctx, store, (deps) => tickRollout(deps, owner(), currentSettings(ctx)))
    if (!flags.ref) return idle(ExitCode.ok, { action: 'none' }, latest ? `no rollout in progress (the latest, ${latest.id}, is ${latest.state}); nothing to do` : 'no rollout yet; nothing to do')

    const ignored = await cooldownGate(store, ctx.config.rollout.cooldownMs, flags)
    const inventory = await loadInventory(store, ctx.config)
    // Outside every deploy window a tick starts nothing; the next one looks again.
    const closed = closedFor(ctx.config.rollout.windows, inventory.hosts, (await store.now()).getTime())
    if (closed) return idle(ExitCode.ok, { action: 'none', window: 'closed', opensAt: closed.opensAt }, `outside every deploy window (the next opens ${closed.opensAt ?? 'never'}); nothing to do`)
    for (const bad of inventory.rejected) say(ctx.out, `warning: inventory row ${bad.name} left out: ${bad.reason}`)
    const request = rolloutRequest(ctx, inventory.hosts, { ref: flags.ref, ignoredCooldown: ignored })
    const executor = makeExecutor(ctx.config, store)
    const done = (await store.listRollouts(20)).find((r) => r.state === 'completed')
    if (done) {
      const sessions = new Map<string, Session>()
      try {
        const { target } = await planRollout({ executor }, request, sessions)
        if (target.sha === done.sha)
          return await idle(ExitCode.ok, { action: 'none', sha: target.sha, rolloutId: done.id }, `${flags.ref} is ${shortSha(target.sha)}, which rollout ${done.id} completed; nothing to do`)
      } finally {
        for (const s of sessions.values()) s.close()
      }
    }
    return driveHere(ctx, store, (deps) => runRollout(deps, request, { detach: true }))
  })
}

function report(ctx: Context, code: number, json: Record<string, unknown>, text: string): number {
  if (ctx.out.json) printJson(ctx.out, { ...json, exitCode: code })
  else say(ctx.out, text)
  return code
}
