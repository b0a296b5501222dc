/**
 * A local check: an operator's command run where fleet runs (`/bin/sh -c`), in its own process
 * group so a timeout kills everything it started. Exit 0 pass, 1 fail, anything else, a signal,
 * a timeout or a failure to start: error.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { quote } from '../remote/shell.js'
import { sanitize, sanitizeLine } from '../text/sanitize.js'
import type { GateContext, Verdict } from './types.js'

export const CHECK_PLACEHOLDERS = ['sha', 'stage', 'hosts'] as const
/** How much of the output is kept (the end: where errors usually are). */
export const OUTPUT_TAIL_BYTES = 2048

interface Found {
  readonly name: string
  readonly start: number
  readonly end: number
  readonly problem: string | null
}

/**
 * Every `{word}` of a command (`${VAR}` is the shell's), and whether a quoted value may go there.
 * Only a bare word is safe: inside '…', "…" or `…` the value's own quotes would end the
 * operator's, after a backslash its first quote would be literal, and a here-document expands
 * `$(…)` whatever the quotes; in each case a host name like `$(…)` could run.
 */
function scan(command: string): Found[] {
  const found: Found[] = []
  const heredoc = command.indexOf('<<')
  let quoteChar: string | null = null
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!
    const name = c === '{' && command[i - 1] !== '$' ? /^\{(\w+)\}/.exec(command.slice(i))?.[1] : undefined
    if (name !== undefined) {
      let problem: string | null = null
      if (!(CHECK_PLACEHOLDERS as readonly string[]).includes(name)) {
        problem = `has unknown placeholder {${name}} (known: ${CHECK_PLACEHOLDERS.map((p) => `{${p}}`).join(', ')})`
      } else if (command[i - 1] === '\\') problem = `has {${name}} after a backslash: write it bare, fleet shell-quotes the value`
      else if (quoteChar !== null) problem = `has {${name}} inside quotes: write it bare, fleet shell-quotes the value`
      else if (heredoc >= 0 && i > heredoc) problem = `has {${name}} after a here-document (<<), where shell quoting does not apply`
      found.push({ name, start: i, end: i + name.length + 2, problem })
      i += name.length + 1
    } else if (c === '\\' && quoteChar !== "'") {
      if (command[i + 1] !== '{') i++ // an escaped character; an escaped placeholder is reported above
    } else if (quoteChar === null && (c === '"' || c === "'" || c === '`')) quoteChar = c
    else if (c === quoteChar) quoteChar = null
  }
  return found
}

/** Why this command's placeholders are wrong (for the config error), or null. */
export const commandPlaceholderProblem = (command: string): string | null => scan(command).find((f) => f.problem)?.problem ?? null

/**
 * The command with each placeholder replaced by one shell-quoted word ({hosts}: names joined by
 * ","). Throws if a placeholder is where quoting cannot protect it (the config refuses those).
 */
export function substituteCommand(command: string, ctx: GateContext): string {
  const values: Record<string, string> = { sha: ctx.sha, stage: String(ctx.stage), hosts: ctx.hosts.join(',') }
  let out = command
  for (const f of scan(command).reverse()) {
    if (f.problem) throw new Error(`check command ${f.problem}`)
    out = out.slice(0, f.start) + quote(values[f.name]!) + out.slice(f.end)
  }
  return out
}

export interface CheckOptions {
  readonly timeoutMs: number
  /** Where the command runs (e.g. the config file's directory). Default: the current directory. */
  readonly cwd?: string
  /** Aborting kills the command; the result is then an error "aborted". */
  readonly signal?: AbortSignal
  readonly env?: NodeJS.ProcessEnv
}

export interface CheckResult {
  readonly verdict: Verdict
  /** null: killed by a signal, timed out, or never started. */
  readonly exitCode: number | null
  readonly reason: string
  /** Last ~2 KiB of stdout and stderr (interleaved as written), sanitized. */
  readonly output: string
  readonly durationMs: number
}

/** Keeps only the last `max` bytes written. */
class Tail {
  private chunks: Buffer[] = []
  private size = 0
  constructor(private readonly max: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk)
    this.size += chunk.length
    while (this.size - this.chunks[0]!.length >= this.max) this.size -= this.chunks.shift()!.length
  }
  text(): string {
    const all = Buffer.concat(this.chunks)
    const cut = all.subarray(Math.max(0, all.length - this.max))
    // A cut through a multi-byte character leaves replacement characters at the start.
    return cut.toString('utf8').replace(/^\uFFFD+/, '')
  }
}

const lastLine = (output: string): string => {
  const lines = output.split('\n').map((l) => l.trim()).filter(Boolean)
  const line = sanitizeLine(lines.at(-1) ?? '')
  return line.length > 200 ? `${line.slice(0, 197)}...` : line
}

/** Runs `command` (placeholders already substituted, see runCheck) and classifies the outcome. */
export function runCommand(command: string, options: CheckOptions): Promise<CheckResult> {
  const started = Date.now()
  const tail = new Tail(OUTPUT_TAIL_BYTES)
  return new Promise((resolve) => {
    let timedOut = false
    let aborted = false
    let settled = false
    const child = spawn('/bin/sh', ['-c', command], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group: the timeout kills the whole tree
    })
    const killGroup = () => {
      if (!child.pid) return
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {
        // the group is gone already
      }
    }
    const finish = (verdict: Verdict, exitCode: number | null, why: string) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
      // Whatever the command left behind (a background job holding the pipes) goes with it; a child
      // that left the group (`setsid -f …`) may keep the pipes open, so our ends are closed: it can
      // never keep fleet alive.
      killGroup()
      child.stdout.destroy()
      child.stderr.destroy()
      child.unref()
      const output = sanitize(tail.text())
      const last = lastLine(output)
      resolve({ verdict, exitCode, reason: last ? `${why}: ${last}` : why, output, durationMs: Date.now() - started })
    }
    const onAbort = () => {
      aborted = true
      killGroup()
    }
    const timer = setTimeout(() => {
      timedOut = true
      killGroup()
    }, options.timeoutMs)
    if (options.signal?.aborted) onAbort()
    else options.signal?.addEventListener('abort', onAbort, { once: true })
    child.stdout.on('data', (c: Buffer) => tail.push(c))
    child.stderr.on('data', (c: Buffer) => tail.push(c))
    child.on('error', (err) => finish('error', null, `could not run the command: ${sanitizeLine(err.message)}`))
    const classify = (code: number | null, signal: NodeJS.Signals | null) => {
      if (timedOut) finish('error', null, `timed out after ${options.timeoutMs} ms`)
      else if (aborted) finish('error', null, 'aborted')
      else if (code === 0) finish('pass', 0, 'exit 0')
      else if (code === 1) finish('fail', 1, 'exit 1')
      else if (code !== null) finish('error', code, `exit ${code}${code === 127 ? ' (command not found)' : code === 126 ? ' (not executable)' : ''}`)
      else finish('error', null, `killed by ${signal}`)
    }
    child.on('exit', (code, signal) => {
      // The pipes close once the group is gone (a background job may hold them); then the output is complete.
      killGroup()
      const fallback = setTimeout(() => classify(code, signal), 1000)
      child.once('close', () => {
        clearTimeout(fallback)
        classify(code, signal)
      })
    })
  })
}

/**
 * A check gate: substitutes the placeholders, runs the command, classifies. Besides the placeholders
 * (each one shell-quoted word) a check gets the same facts in its environment, so a script never has
 * to re-parse a word it was given: FLEET_SHA, FLEET_STAGE (0-based, as {stage}), FLEET_HOSTS (names,
 * one a line) and FLEET_HOSTS_FILE (a file with one name a line, removed after the check).
 */
export async function runCheck(command: string, ctx: GateContext, options: CheckOptions): Promise<CheckResult> {
  let substituted: string
  try {
    substituted = substituteCommand(command, ctx)
  } catch (err) {
    return { verdict: 'error', exitCode: null, reason: sanitizeLine((err as Error).message), output: '', durationMs: 0 }
  }
  const dir = await mkdtemp(join(tmpdir(), 'fleet-check-'))
  const hostsFile = join(dir, 'hosts')
  try {
    await writeFile(hostsFile, ctx.hosts.map((h) => `${h}\n`).join(''), { mode: 0o600 })
    const env = { ...(options.env ?? process.env), FLEET_SHA: ctx.sha, FLEET_STAGE: String(ctx.stage), FLEET_HOSTS: ctx.hosts.join('\n'), FLEET_HOSTS_FILE: hostsFile }
    return await runCommand(substituted, { ...options, env })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
