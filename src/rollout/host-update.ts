import { gitCheckout, gitDirtyFiles, gitFetch, gitHead, operatorStep, type TemplateValues } from '../remote/commands.js'
import { render } from '../remote/shell.js'
import { ConnectionLostError, type CommandResult, type Session } from '../ssh/executor.js'
import { FencedError } from '../ssh/fenced-session.js'
import type { Clock } from './clock.js'
import type { Host, HostStatus, Sha, StepName } from '../types.js'

/** What a host update needs from the configuration. */
export interface HostSettings {
  readonly remote: string
  readonly branch: string
  readonly service: string
  readonly steps: { readonly install: string; readonly restart: string; readonly verify: string; readonly health: string | null; readonly diagnose?: string | null }
  readonly verify: { readonly delayMs: number; readonly retries: number; readonly intervalMs: number }
  readonly commandTimeoutMs: number
}

export type Phase = 'update' | 'rollback'

export interface HostUpdateHooks {
  step(step: StepName, phase: Phase): Promise<void> | void
  /** Called once HEAD is known and before anything changes, so the store has it if we crash. */
  previousVersion(sha: string): Promise<void> | void
}

export interface HostOutcome {
  readonly status: Exclude<HostStatus, 'pending' | 'updating'>
  readonly previousVersion: string | null
  readonly newVersion: string | null
  readonly failedStep: StepName | null
  readonly error: string | null
}

/** A step that did not succeed, with what the operator needs to see. */
export class StepError extends Error {
  override readonly name = 'StepError'
  constructor(
    readonly step: StepName,
    message: string,
  ) {
    super(message)
  }
}

const lastLines = (text: string, n = 5): string => text.trim().split('\n').slice(-n).join('\n')

export const describeFailure = (step: StepName, result: CommandResult, timeoutMs: number): string => {
  if (result.timedOut) return `${step} timed out after ${Math.round(timeoutMs / 1000)}s`
  const output = lastLines(result.stderr) || lastLines(result.stdout)
  const how = result.code === null ? `killed${result.signal ? ` by ${result.signal}` : ''}` : `exit ${result.code}`
  return `${step} failed (${how})${output ? `: ${output}` : ''}`
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
}

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
    const dirty = (await runner.run('version', 'update', render(gitDirtyFiles(host.appDir)))).stdout.trim()
    if (dirty)
      throw new StepError('version', `worktree has local modifications, refusing to touch it: ${lastLines(dirty, 3).replace(/\n/g, ', ')}`)
    await hooks.previousVersion(previous)
    // Fetching only updates remote-tracking refs: the running app is untouched, so a failure here is a plain `failed`.
    await runner.run('fetch', 'update', gitFetch(host.appDir, settings.remote, target))
  } catch (error) {
    if (error instanceof FencedError) throw error
    return { status: 'failed', previousVersion: null, newVersion: null, failedStep: stepOf(error), error: messageOf(error) }
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
    await runner.run('checkout', 'update', render(gitCheckout(host.appDir, target)))
    await runner.run('install', 'update', operatorStep(settings.steps.install, values(target)))
    await runner.run('restart', 'update', operatorStep(settings.steps.restart, values(target)))
    await verify(runner, settings, values(target), input.clock, 'update')
    const now = (await runner.run('confirm', 'update', render(gitHead(host.appDir)))).stdout.trim()
    if (now !== target) throw new StepError('confirm', `HEAD is ${now.slice(0, 12)} after the update, expected ${target.slice(0, 12)}`)
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
    await runner.run('rollback', 'rollback', render(gitCheckout(host.appDir, input.previous as Sha)))
    await runner.run('install', 'rollback', operatorStep(settings.steps.install, input.values))
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

async function verify(runner: StepRunner, settings: HostSettings, values: TemplateValues, clock: Clock, phase: Phase): Promise<void> {
  await runner.hooks.step('verify', phase)
  await clock.sleep(settings.verify.delayMs, runner.kill)
  let lastError: StepError | null = null
  for (let attempt = 0; attempt <= settings.verify.retries; attempt++) {
    if (attempt > 0) await clock.sleep(settings.verify.intervalMs, runner.kill)
    try {
      await runner.run('verify', phase, operatorStep(settings.steps.verify, values), { quietStep: true })
      if (settings.steps.health) await runner.run('health', phase, operatorStep(settings.steps.health, values), { quietStep: true })
      return
    } catch (error) {
      if (!(error instanceof StepError) || runner.lost || runner.kill?.aborted) throw error
      lastError = error
    }
  }
  const attempts = settings.verify.retries + 1
  // `systemctl is-active --quiet` says nothing: the diagnose step (the service's status) says why.
  const why = settings.steps.diagnose && !runner.kill?.aborted ? await runner.diagnose(operatorStep(settings.steps.diagnose, values)) : null
  throw new StepError(lastError?.step ?? 'verify', `${lastError?.message ?? 'verify failed'} (after ${attempts} attempt${attempts === 1 ? '' : 's'})${why ? `\n${why}` : ''}`)
}

/** At most this much of what the diagnose step printed: its last lines, where the cause usually is. */
const DIAGNOSE_LINES = 6
const DIAGNOSE_CHARS = 600

class StepRunner {
  lost = false

  constructor(
    private readonly session: Session,
    private readonly timeoutMs: number,
    readonly hooks: HostUpdateHooks,
    public kill: AbortSignal | undefined,
  ) {}

  /** The diagnose step's output tail (host text: sanitised where it is shown), or null; never throws, bounded in time. */
  async diagnose(command: string): Promise<string | null> {
    try {
      const result = await this.session.run(command, { timeoutMs: Math.min(this.timeoutMs, 10_000) })
      const lines = `${result.stdout}\n${result.stderr}`.split(/\r?\n/).filter((l) => l.trim() !== '')
      const tail = lines.slice(-DIAGNOSE_LINES).join('\n').slice(-DIAGNOSE_CHARS)
      return tail ? `diagnose: ${tail}` : null
    } catch {
      return null
    }
  }

  async run(step: StepName, phase: Phase, command: string, options: { quietStep?: boolean } = {}): Promise<CommandResult> {
    if (this.kill?.aborted) throw new StepError(step, `${step} not started: killed by the operator`)
    if (!options.quietStep) await this.hooks.step(step, phase)
    let result: CommandResult
    try {
      result = await this.session.run(command, { timeoutMs: this.timeoutMs, ...(this.kill ? { signal: this.kill } : {}) })
    } catch (error) {
      if (error instanceof ConnectionLostError) {
        this.lost = true
        throw new StepError(step, `${step}: ${error.message}`)
      }
      if (this.kill?.aborted) throw new StepError(step, `${step} aborted by the operator`)
      throw error
    }
    if (result.code !== 0) throw new StepError(step, describeFailure(step, result, this.timeoutMs))
    return result
  }
}

const stepOf = (error: unknown): StepName | null => (error instanceof StepError ? error.step : null)
const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

const valuesFor = (host: Host, settings: HostSettings, sha: string): TemplateValues => ({
  service: settings.service,
  appDir: host.appDir,
  sha,
  remote: settings.remote,
  branch: settings.branch,
})

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
  const untouched = input.step === null || input.step === 'connect' || input.step === 'version' || input.step === 'fetch' || input.step === 'checkout'
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
