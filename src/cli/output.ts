import type { Writable } from 'node:stream'

import { sanitize, sanitizeDeep } from '../text/sanitize.js'

/** Where and how a command prints; decided once from flags, env and the terminal. */
export interface Output {
  readonly stdout: Writable & { isTTY?: boolean; columns?: number }
  readonly stderr: Writable & { isTTY?: boolean }
  readonly json: boolean
  readonly color: boolean
  readonly verbose: boolean
  readonly quiet: boolean
  /** A live, redrawn view is allowed (stdout is a terminal and not --json). */
  readonly live: boolean
}

export interface OutputFlags {
  readonly json?: boolean
  readonly color?: boolean
  readonly verbose?: boolean
  readonly quiet?: boolean
}

export function makeOutput(flags: OutputFlags, env: NodeJS.ProcessEnv = process.env, streams = { stdout: process.stdout, stderr: process.stderr }): Output {
  const tty = streams.stdout.isTTY === true
  const forced = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false'
  const noColor = flags.color === false || (env.NO_COLOR !== undefined && env.NO_COLOR !== '')
  return {
    ...streams,
    json: flags.json === true,
    color: !noColor && (forced || (tty && env.TERM !== 'dumb')),
    verbose: flags.verbose === true,
    quiet: flags.quiet === true,
    live: tty && flags.json !== true && env.TERM !== 'dumb' && env.CI === undefined,
  }
}

/**
 * Human text: stdout normally, stderr under --json so stdout stays machine-readable. The output
 * edge: no escape sequence or control character reaches the terminal, whoever wrote the text
 * (a host, the inventory, another operator's --reason). Only renderers that sanitise their own
 * fields and add colour use sayStyled.
 */
export const say = (out: Output, line: string): void => sayStyled(out, sanitize(line))

export const sayStyled = (out: Output, line: string): void => {
  ;(out.json ? out.stderr : out.stdout).write(`${line}\n`)
}

export const printJson = (out: Output, value: unknown): void => {
  out.stdout.write(`${JSON.stringify(sanitizeDeep(value))}\n`)
}
