/** What every per-host step shares: the runner (timeouts, kill, lost connections), verify with its retries, the step error. */
import { operatorStep, type TemplateValues } from '../remote/commands.js'
import { ConnectionLostError, type CommandResult, type Session } from '../ssh/executor.js'
import type { Clock } from './clock.js'
import type { Host, StepName } from '../types.js'

/** What a host update needs from the configuration. */
export interface HostSettings {
  readonly remote: string
  readonly branch: string
  readonly service: string
  readonly steps: { readonly install: string; readonly build?: string | null; readonly restart: string; readonly verify: string; readonly health: string | null; readonly diagnose?: string | null }
  readonly verify: { readonly delayMs: number; readonly retries: number; readonly intervalMs: number }
  readonly commandTimeoutMs: number
  /** `app.layout: "releases"`: a directory per release beside the app dir; absent or null: in place. */
  readonly releases?: { readonly keep: number; readonly shared: readonly string[] } | null
}

export type Phase = 'update' | 'rollback'

export interface HostUpdateHooks {
  /** `note`: something the operator should read about this step (a kept release prepared again). */
  step(step: StepName, phase: Phase, note?: string): Promise<void> | void
  /** Called once HEAD is known and before anything changes, so the store has it if we crash. */
  previousVersion(sha: string): Promise<void> | void
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

export const lastLines = (text: string, n = 5): string => text.trim().split('\n').slice(-n).join('\n')

export const describeFailure = (step: StepName, result: CommandResult, timeoutMs: number): string => {
  if (result.timedOut) return `${step} timed out after ${Math.round(timeoutMs / 1000)}s`
  const output = lastLines(result.stderr) || lastLines(result.stdout)
  const how = result.code === null ? `killed${result.signal ? ` by ${result.signal}` : ''}` : `exit ${result.code}`
  return `${step} failed (${how})${output ? `: ${output}` : ''}`
}

export async function verify(runner: StepRunner, settings: HostSettings, values: TemplateValues, clock: Clock, phase: Phase): Promise<void> {
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

export class StepRunner {
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

  /** Runs a clean-up (never killed, bounded in time); true when it exited 0. Never throws. */
  async quietly(command: string): Promise<boolean> {
    if (this.lost) return false
    try {
      return (await this.session.run(command, { timeoutMs: this.timeoutMs })).code === 0
    } catch {
      return false
    }
  }

  async run(step: StepName, phase: Phase, command: string, options: { quietStep?: boolean; note?: string } = {}): Promise<CommandResult> {
    if (this.kill?.aborted) throw new StepError(step, `${step} not started: killed by the operator`)
    if (!options.quietStep) await (options.note ? this.hooks.step(step, phase, options.note) : this.hooks.step(step, phase))
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

export const stepOf = (error: unknown): StepName | null => (error instanceof StepError ? error.step : null)
export const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

export const valuesFor = (host: Host, settings: HostSettings, sha: string): TemplateValues => ({
  service: settings.service,
  appDir: host.appDir,
  sha,
  remote: settings.remote,
  branch: settings.branch,
})
