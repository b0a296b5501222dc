import { ExitCode, LockedError, UsageError } from '../../errors.js'
import { pauseRollout, promoteRollout } from '../../rollout/engine.js'
import { currentSettings, makeContext, owner, withStore, type Context, type GlobalFlags } from '../context.js'
import { askDriver, describeAnswer, newRequestId, waitForAnswer, whoRunsIt, type Holder, type Said } from '../../rollout/control.js'
import type { NewRequest, Store } from '../../store/store.js'
import { actor } from '../../rollout/who.js'
import { driveHere, handBack } from '../drive.js'
import { printJson, say } from '../output.js'
import { sanitize } from '../../text/sanitize.js'

/**
 * `fleet rollout pause [--reason]`: no new host starts; hosts in flight
 * finish; the rollout is `paused` (exit 7 for ticks) until resume or promote.
 * The request is recorded first (nothing is ever dropped) for the rollout the
 * live process drives, which answers it within seconds; between cron ticks it
 * is applied here at once. What the answer was is what this command says.
 */
export async function rolloutPause(flags: GlobalFlags & { reason?: string }): Promise<number> {
  const ctx = makeContext(flags)
  const request = { id: newRequestId(), kind: 'pause' as const, actor: actor(), reason: flags.reason ?? null, skipBake: false }
  const running = await whoRunsIt(ctx.config)
  try {
    const asked = running.holder && !running.holder.rollback ? await ask(ctx, running.holder, running.store, request) : null
    if (asked !== null) return asked
  } finally {
    await running.close()
  }
  return withStore(ctx.config, async (store) => {
    const latest = await store.getRollout()
    if (!latest || !['running', 'baking', 'paused', 'interrupted'].includes(latest.state))
      throw new UsageError(latest ? `nothing to pause: the latest rollout ${latest.id} is ${latest.state}` : 'nothing to pause: no rollout has run yet')
    if (latest.state === 'paused') {
      report(ctx, { requested: 'pause', rolloutId: latest.id, outcome: 'already paused' }, `rollout ${latest.id} is already paused`)
      return ExitCode.ok
    }
    await store.addRequest({ ...request, rolloutId: latest.id })
    if (running.holder?.rollback) {
      // A `fleet rollback` of another host holds the lock for a moment: the rollout's next driver applies it.
      report(ctx, { requested: 'pause', request: request.id, rolloutId: latest.id, outcome: 'pending' }, `pause requested (request ${request.id}) for rollout ${latest.id}, which is ${latest.state}: ${running.holder.holder} holds the lock for \`fleet rollback\`, so the next \`fleet rollout tick\` or \`resume\` applies it (\`fleet rollout status\` shows it pending)`)
      return ExitCode.ok
    }
    // Nobody drives it (between cron ticks): take it over here; the decision core applies the request like any run's.
    const quiet = () => ({ listener: () => {}, done: () => {} })
    let code: number
    try {
      code = await driveHere(ctx, store, (deps) => pauseRollout(deps, owner(), currentSettings(ctx)), quiet)
    } catch (error) {
      // A tick (or a `fleet rollback`) took the lock first: the request is stored; say what its next driver answers.
      if (!(error instanceof LockedError)) throw error
      return tell(ctx, describeAnswer(request, { holder: error.message, rolloutId: latest.id, rollback: false }, await waitForAnswer(store, request.id)))
    }
    if (code !== ExitCode.paused) return code
    report(ctx, { requested: 'pause', request: request.id, holder: owner(), rolloutId: latest.id, outcome: 'applied' }, `rollout ${latest.id} paused at stage ${latest.currentStage + 1}; \`fleet rollout resume\` or \`fleet rollout promote --reason …\` continues it`)
    return ExitCode.ok
  })
}

/**
 * `fleet rollout promote [--skip-bake] --reason`: ends the current bake as
 * passed. Asks a running process, or goes on here like resume.
 */
export async function rolloutPromote(flags: GlobalFlags & { reason?: string; skipBake?: boolean; detach?: boolean }): Promise<number> {
  if (!flags.reason?.trim()) throw new UsageError('promote needs --reason <text>: it is recorded in the audit trail')
  const ctx = makeContext(flags)
  const reason = flags.reason.trim()
  const running = await whoRunsIt(ctx.config)
  try {
    const request = { id: newRequestId(), kind: 'promote' as const, actor: actor(), reason, skipBake: flags.skipBake === true }
    const asked = running.holder && !running.holder.rollback ? await ask(ctx, running.holder, running.store, request) : null
    if (asked !== null) return asked
  } finally {
    await running.close()
  }
  return withStore(ctx.config, (store) =>
    driveHere(ctx, store, (deps) => promoteRollout(deps, owner(), { reason, skipBake: flags.skipBake === true, current: currentSettings(ctx), ...(flags.detach ? { detach: true } : {}) }), undefined, handBack(ctx)),
  )
}

/** A live process drives (or starts) the rollout: the request goes to that rollout, and its answer is said. */
async function ask(ctx: Context, holder: Holder, store: Store | null, request: Omit<NewRequest, 'rolloutId'>): Promise<number | null> {
  const said = await askDriver(ctx.config, holder, store, request)
  return said === null ? null : tell(ctx, said) // null: the embedded store's holder let go first, go on as between ticks
}

/** The answer as said: on stdout (`--json`: the object, exit 2 included), or a refusal's line on stderr. */
function tell(ctx: Context, said: Said): number {
  if (said.exitCode === ExitCode.ok || ctx.out.json) report(ctx, said.json, said.text)
  else ctx.out.stderr.write(`fleet: ${sanitize(said.text)}\n`)
  return said.exitCode
}

function report(ctx: Context, json: Record<string, unknown>, text: string): void {
  if (ctx.out.json) printJson(ctx.out, json)
  else say(ctx.out, text)
}
