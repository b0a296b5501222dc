import { gitCheckout, gitFetch, gitHead, operatorStep, type TemplateValues } from '../remote/commands.js'
import { inPlaceState } from '../remote/releases.js'
import { render } from '../remote/shell.js'
import { sanitizeLine } from '../text/sanitize.js'
import type { Session } from '../ssh/executor.js'
import { FencedError } from '../ssh/fenced-session.js'
import type { Clock } from './clock.js'
import type { Host, HostStatus, Sha, StepName } from '../types.js'
import type { HostSettings, HostUpdateHooks } from './host-steps.js'
import { activateRelease, prepareRelease, pruneReleases, switchBack } from './host-release.js'
import { lastLines, messageOf, StepError, StepRunner, stepOf, valuesFor, verify } from './host-steps.js'

export { describeFailure, StepError } from './host-steps.js'
export type { HostSettings, HostUpdateHooks, Phase } from './host-steps.js'

export interface HostOutcome {
  readonly status: Exclude<HostStatus, 'pending' | 'updating'>
  readonly previousVersion: string | null
  readonly newVersion: string | null
  readonly failedStep: StepName | null
  readonly error: string | null
}


export interface HostUpdateInput {
  readonly session: Session
  readonly host: Host
  readonly target: Sha
  readonly settings: HostSettings
  readonly clock: Clock
  readonly hooks: HostUpdateHooks
  /** Kills in-flight commands (second Ctrl-C); the rollback that follows cannot be killed. */
  readonly kill?: AbortSignal
  /**
   * Run every step even when HEAD is already the target (`fleet rollback`: a
   * checkout alone does not mean the service runs that commit).
   */
  readonly reapply?: boolean
  /** Opens a fresh connection when the first one died mid-update, for the rollback. */
  readonly reconnect: () => Promise<Session>
  /** Releases retention must keep besides the live and the previous one (those an unfinished rollout may switch this host to). */
  readonly protect?: readonly string[]
}

/** Why an in-place update refuses an app dir that is a release symlink (`target`: host text). */
const movedToReleases = (appDir: string, target: string): string =>
  `${appDir} is a symlink to a release directory (${sanitizeLine(target).slice(0, 200)}): this host was moved to app.layout "releases", ` +
  'and an in-place update would check out inside the live release. Nothing was changed. Set app.layout to "releases", or move the host ' +
  'back to a plain checkout first (docs/config.md, "Moving a host back to in-place")'

/**
 * The per-host update of the design: version check → fetch → checkout →
 * install → restart → verify → confirm, compensated by a rollback to the
 * previous commit when anything fails after the host started to change.
 */
export async function updateHost(input: HostUpdateInput): Promise<HostOutcome> {
  const { host, target, settings, hooks } = input
  const runner = new StepRunner(input.session, settings.commandTimeoutMs, hooks, input.kill)

  let previous: string
  try {
    previous = (await runner.run('version', 'update', render(gitHead(host.appDir)))).stdout.trim()
    if (!/^[0-9a-f]{40,64}$/.test(previous)) throw new StepError('version', `unexpected output from git rev-parse: ${previous.slice(0, 80)}`)
    if (previous === target && !input.reapply) return { status: 'skipped', previousVersion: previous, newVersion: previous, failedStep: null, error: null }
  } catch (error) {
    if (error instanceof FencedError) throw error
    return { status: 'failed', previousVersion: null, newVersion: null, failedStep: stepOf(error), error: messageOf(error) }
  }
  let refused = false
  try {
    if (settings.releases) {
      // The new release is prepared beside the live one, which keeps serving: a failure here changed nothing live.
      await hooks.previousVersion(previous)
      await prepareRelease(runner, host, settings, target, 'update', { expectKept: input.reapply === true })
    } else {
      const dirty = (await runner.run('version', 'update', inPlaceState(host.appDir))).stdout.trim()
      if (dirty.startsWith('release-symlink ')) {
        refused = true
        throw new StepError('version', movedToReleases(host.appDir, dirty.slice('release-symlink '.length)))
      }
      if (dirty)
        throw new StepError('version', `worktree has local modifications, refusing to touch it: ${lastLines(dirty, 3).replace(/\n/g, ', ')}`)
      await hooks.previousVersion(previous)
      // Fetching only updates remote-tracking refs: the running app is untouched, so a failure here is a plain `failed`.
      await runner.run('fetch', 'update', gitFetch(host.appDir, settings.remote, target))
    }
  } catch (error) {
    if (error instanceof FencedError) throw error
    const live = settings.releases || refused ? previous : null
    return { status: 'failed', previousVersion: live, newVersion: live, failedStep: stepOf(error), error: messageOf(error) }
  }

  return applyTarget({ ...input, runner, previous })
}

/**
 * Checkout → install → restart → verify → confirm, compensated by a rollback
 * to `previous` on any failure. Used by the update and by resume for a host
 * found already checked out but not yet proven.
 */
async function applyTarget(input: HostUpdateInput & { runner: StepRunner; previous: string }): Promise<HostOutcome> {
  const { host, target, settings, runner, previous } = input
  const values = (sha: string) => valuesFor(host, settings, sha)
  try {
    if (settings.releases) await activateRelease(runner, host, target, 'update')
    else {
      await runner.run('checkout', 'update', render(gitCheckout(host.appDir, target)))
      await runner.run('install', 'update', operatorStep(settings.steps.install, values(target)))
      if (settings.steps.build) await runner.run('build', 'update', operatorStep(settings.steps.build, values(target)))
    }
    await runner.run('restart', 'update', operatorStep(settings.steps.restart, values(target)))
    await verify(runner, settings, values(target), input.clock, 'update')
    const now = (await runner.run('confirm', 'update', render(gitHead(host.appDir)))).stdout.trim()
    if (now !== target) throw new StepError('confirm', `HEAD is ${now.slice(0, 12)} after the update, expected ${target.slice(0, 12)}`)
    await pruneReleases(runner, host, settings, [target, previous, ...(input.protect ?? [])])
    return { status: 'success', previousVersion: previous, newVersion: target, failedStep: null, error: null }
  } catch (error) {
    // Another holder took the host over: it is theirs now, nothing more is done or recorded here.
    if (error instanceof FencedError) throw error
    const failure = { step: stepOf(error), message: messageOf(error) }
    const rollback = await restorePrevious({ ...input, runner, previous, values: values(previous) })
    return {
      status: rollback.ok ? 'rolled_back' : 'rollback_failed',
      previousVersion: previous,
      newVersion: rollback.head,
      failedStep: failure.step,
      error: rollback.ok ? failure.message : `${failure.message}; ROLLBACK FAILED: ${rollback.error}`,
    }
  }
}

/** The automatic compensation (not `fleet rollback`): the host back on `previous`, proven to run it. Never throws. */
async function restorePrevious(input: Omit<HostUpdateInput, 'target'> & { runner: StepRunner; previous: string; values: TemplateValues }): Promise<{ ok: boolean; head: string | null; error: string | null }> {
  const { host, settings } = input
  let runner = input.runner
  try {
    if (runner.lost) {
      runner = new StepRunner(await input.reconnect(), settings.commandTimeoutMs, input.hooks, undefined)
    } else {
      runner.kill = undefined
    }
    if (settings.releases) await switchBack(runner, host, settings, input.previous as Sha)
    else {
      await runner.run('rollback', 'rollback', render(gitCheckout(host.appDir, input.previous as Sha)))
      await runner.run('install', 'rollback', operatorStep(settings.steps.install, input.values))
      if (settings.steps.build) await runner.run('build', 'rollback', operatorStep(settings.steps.build, input.values))
    }
    await runner.run('restart', 'rollback', operatorStep(settings.steps.restart, input.values))
    await verify(runner, settings, input.values, input.clock, 'rollback')
    const head = (await runner.run('confirm', 'rollback', render(gitHead(host.appDir)))).stdout.trim()
    if (head !== input.previous) return { ok: false, head, error: `HEAD is ${head.slice(0, 12)} after the rollback` }
    return { ok: true, head, error: null }
  } catch (error) {
    if (error instanceof FencedError) throw error
    // Record what is really on the host if we can still ask it.
    let head: string | null = null
    try {
      if (!runner.lost) head = (await runner.run('confirm', 'rollback', render(gitHead(host.appDir)))).stdout.trim() || null
    } catch {
      /* unreachable: head stays unknown */
    }
    return { ok: false, head, error: messageOf(error) }
  }
}




export type ReconcileResult = { readonly kind: 'pending' } | { readonly kind: 'finished'; readonly outcome: HostOutcome }

/**
 * After a crash, decides what a host left `updating` really is, from its HEAD
 * and its service: finished (success), untouched (pending: run it again), or
 * half-way (rolled back now to the recorded previous version).
 */
export async function reconcileHost(
  input: Omit<HostUpdateInput, 'kill'> & { readonly previous: string | null; readonly step: string | null },
): Promise<ReconcileResult> {
  const { host, settings, previous, target } = input
  const runner = new StepRunner(input.session, settings.commandTimeoutMs, input.hooks, undefined)
  const head = (await runner.run('version', 'update', render(gitHead(host.appDir)))).stdout.trim()
  const healthy = async (sha: string): Promise<boolean> => {
    try {
      await verify(runner, { ...settings, verify: { ...settings.verify, delayMs: 0 } }, valuesFor(host, settings, sha), input.clock, 'update')
      return true
    } catch (error) {
      if (runner.lost || error instanceof FencedError) throw error
      return false
    }
  }
  if (previous === null) {
    // The crash came before anything was recorded, so before anything changed.
    if (head === target && (await healthy(target)))
      return { kind: 'finished', outcome: { status: 'skipped', previousVersion: head, newVersion: head, failedStep: null, error: null } }
    return { kind: 'pending' }
  }
  const why = `found half-updated after the orchestrator stopped (HEAD ${head.slice(0, 12)}, last step ${input.step ?? 'none'})`
  const restarted = input.step === 'verify' || input.step === 'health' || input.step === 'confirm'
  if (head === target) {
    // Checked out and restarted: proven by verify. Checked out but maybe still running the old
    // release: finish the update (install, restart, verify), which rolls back if it fails.
    if (restarted && (await healthy(target)))
      return { kind: 'finished', outcome: { status: 'success', previousVersion: previous, newVersion: target, failedStep: null, error: null } }
    return { kind: 'finished', outcome: await applyTarget({ ...input, runner, previous }) }
  }
  // HEAD still on the old commit before the checkout step: nothing changed, run the update again.
  // With releases nothing live changes before the switch: a preparation is untouched too.
  const before = ['connect', 'version', 'fetch', 'checkout', ...(settings.releases ? ['prepare', 'install', 'build'] : [])]
  const untouched = input.step === null || before.includes(input.step)
  if (head === previous && untouched && (await healthy(previous))) return { kind: 'pending' }
  // Anything else is a rollback the crash interrupted (or a HEAD nobody expects): finish the rollback.
  const rollback = await restorePrevious({ ...input, runner, previous, values: valuesFor(host, settings, previous) })
  return {
    kind: 'finished',
    outcome: {
      status: rollback.ok ? 'rolled_back' : 'rollback_failed',
      previousVersion: previous,
      newVersion: rollback.head,
      failedStep: 'rollback',
      error: rollback.ok ? why : `${why}; ROLLBACK FAILED: ${rollback.error}`,
    },
  }
}
