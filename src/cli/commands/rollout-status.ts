import { setTimeout as sleep } from 'node:timers/promises'

import { formatDuration, parseDuration } from '../../duration.js'
import { FleetError, ExitCode, UsageError } from '../../errors.js'
import { leaseIsStale } from '../../rollout/engine.js'
import { exitCodeFor } from '../../rollout/exit-code.js'
import type { RolloutStatus } from '../../rollout/status.js'
import type { RolloutState } from '../../types.js'
import { renderStatus } from '../../render/status-table.js'
import { palette } from '../../render/style.js'
import { makeContext, type GlobalFlags } from '../context.js'
import { printJson } from '../output.js'
import { withReadSource } from '../../report/read-source.js'

export interface RolloutStatusFlags extends GlobalFlags {
  readonly watch?: boolean
  /** Poll interval of --watch, e.g. 500ms, 2s. */
  readonly interval?: string
  /** With --watch: give up after this long (exit WATCH_TIMEOUT_EXIT). */
  readonly timeout?: string
  /** List every host, even on a big fleet. */
  readonly all?: boolean
}

/** `status --watch --timeout` ran out before the rollout ended: not one of the design's codes (0-7, 130). */
export const WATCH_TIMEOUT_EXIT = ExitCode.watchTimeout

const MIN_INTERVAL_MS = 100
const IN_PROGRESS: ReadonlySet<string> = new Set(['running', 'baking'])

/** What counts as a change worth a new view: anything but the heartbeat and the time it was read. */
const changeKey = (status: RolloutStatus): string => JSON.stringify({ ...status, heartbeatAt: null, readAt: null })

/**
 * Still marked running, but its orchestrator stopped heartbeating (or, on this machine, is gone).
 * Not while baking: between `rollout tick` runs from cron no process holds a baking rollout.
 */
const isStale = (status: RolloutStatus): boolean => status.orchestrator === 'gone'

/** The code the rollout itself ended with (recorded, or derived from its state for older records). */
const rolloutExitCode = (status: RolloutStatus): number => status.exitCode ?? exitCodeFor(status.state as RolloutState, status.counts)


/**
 * Redraws a view in place on a terminal: cursor up over the previous frame, erase to the end of
 * the screen, write the new one. Scrollback keeps only the last frame. A frame taller than the
 * screen is cut (the cursor cannot go above the top to erase it).
 */
async function inPlace(stream: NodeJS.WritableStream & { columns?: number; rows?: number }) {
  // Loaded only for a terminal view: the one-shot status and --json need neither.
  const [{ default: stringWidth }, { default: stripAnsi }] = await Promise.all([import('string-width'), import('strip-ansi')])
  /** Rows a text takes on a terminal `columns` wide (long lines wrap). */
  const rowsOf = (text: string, columns: number): number =>
    text.split('\n').reduce((sum, line) => sum + Math.max(1, Math.ceil(stringWidth(stripAnsi(line)) / columns)), 0)
  let drawn = 0
  return (frame: string): void => {
    // A terminal of unknown size (0×0 under some ptys) counts as 80 columns and unbounded height.
    const columns = stream.columns || 80
    const height = Math.max(3, (stream.rows || 1000) - 1)
    let lines = frame.split('\n')
    if (rowsOf(frame, columns) > height) {
      while (lines.length > 1 && rowsOf(lines.join('\n'), columns) > height - 1) lines = lines.slice(0, -1)
      lines.push(`… (the terminal is too small for the whole view)`)
    }
    const text = lines.join('\n')
    stream.write(`${drawn > 0 ? `\x1b[${drawn}A\r\x1b[J` : ''}${text}\n`)
    drawn = rowsOf(text, columns)
  }
}

export async function rolloutStatus(id: string | undefined, flags: RolloutStatusFlags): Promise<number> {
  const ctx = makeContext(flags)
  const intervalMs = parseDuration(flags.interval ?? '2s', '--interval')
  if (intervalMs < MIN_INTERVAL_MS) throw new UsageError(`--interval must be at least ${MIN_INTERVAL_MS}ms, got ${JSON.stringify(flags.interval)}`)
  if (flags.timeout !== undefined && !flags.watch) throw new UsageError('--timeout bounds --watch; add --watch')
  const timeoutMs = flags.timeout === undefined ? null : parseDuration(flags.timeout, '--timeout')
  if (timeoutMs !== null && timeoutMs <= 0) throw new UsageError(`--timeout must be more than 0, got ${JSON.stringify(flags.timeout)}`)
  const { out } = ctx
  const view = (status: RolloutStatus): string =>
    renderStatus(status, { color: out.color, width: out.stdout.columns ?? 120, all: flags.all === true })
  const show = (status: RolloutStatus): void => (out.json ? printJson(out, status) : void out.stdout.write(`${view(status)}\n`))

  return withReadSource(ctx, async (source) => {
    let status = await source.status(id)
    if (!status) {
      if (id) throw new FleetError(`no rollout with id ${id}`, ExitCode.usage)
      if (out.json) printJson(out, null)
      else out.stdout.write('no rollouts yet\n')
      return ExitCode.ok
    }
    if (!flags.watch) {
      show(status)
      return ExitCode.ok
    }

    // Watch the rollout we started with, even if a newer one begins meanwhile.
    const stop = new AbortController()
    const onSignal = (): void => stop.abort()
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    const deadline = timeoutMs === null ? Infinity : Date.now() + timeoutMs
    const draw = out.live ? await inPlace(out.stdout) : () => {}
    try {
      let shown = ''
      for (;;) {
        const stale = isStale(status)
        const done = !IN_PROGRESS.has(status.state) || stale
        if (out.live) {
          const footer = done ? '' : `\n${palette(out.color).gray(`watching every ${formatDuration(intervalMs)}${timeoutMs === null ? '' : ` for up to ${formatDuration(timeoutMs)}`}; Ctrl-C to stop`)}`
          draw(`${view(status)}${footer}`)
        } else if (changeKey(status) !== shown) show(status)
        shown = changeKey(status)
        if (stale) {
          out.stderr.write(`fleet: rollout ${status.id} is still marked running but its orchestrator is gone (no heartbeat since ${status.heartbeatAt}); not waiting for it (see fleet rollout resume / abort)\n`)
          return ExitCode.internal
        }
        if (done) return rolloutExitCode(status)
        const left = deadline - Date.now()
        if (left <= 0) {
          out.stderr.write(`fleet: rollout ${status.id} is still ${status.state} after --timeout ${formatDuration(timeoutMs ?? 0)}; stopped watching (exit ${WATCH_TIMEOUT_EXIT})\n`)
          return WATCH_TIMEOUT_EXIT
        }
        await sleep(Math.min(intervalMs, left), undefined, { signal: stop.signal }).catch(() => {})
        if (stop.signal.aborted) return ExitCode.interrupted
        const next = await source.status(status.id)
        if (!next) throw new FleetError(`rollout ${status.id} disappeared from the store`, ExitCode.internal)
        status = next
      }
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
  })
}
