import { setTimeout as sleep } from 'node:timers/promises'

import { formatDuration, parseDuration } from '../../config/duration.js'
import { FleetError, ExitCode, UsageError } from '../../errors.js'
import { leaseIsStale } from '../../rollout/engine.js'
import { buildStatus, type RolloutStatus } from '../../rollout/status.js'
import { renderStatus } from '../../render/status-table.js'
import { palette } from '../../render/style.js'
import type { Store } from '../../store/store.js'
import { makeContext, withStore, type GlobalFlags } from '../context.js'
import { printJson } from '../output.js'

export interface RolloutStatusFlags extends GlobalFlags {
  readonly watch?: boolean
  /** Poll interval of --watch, e.g. 500ms, 2s. */
  readonly interval?: string
  /** List every host, even on a big fleet. */
  readonly all?: boolean
}

const MIN_INTERVAL_MS = 100
const CLEAR_SCREEN = '\x1b[2J\x1b[H'

const readStatus = async (store: Store, id?: string): Promise<RolloutStatus | null> => {
  const rollout = await store.getRollout(id)
  return rollout && buildStatus(rollout, await store.listRolloutHosts(rollout.id))
}

/** What counts as a change worth a new view: anything but the heartbeat. */
const changeKey = (status: RolloutStatus): string => JSON.stringify({ ...status, heartbeatAt: null })

/** Still marked running, but its orchestrator stopped heartbeating (or, on this machine, is gone). */
const isStale = (status: RolloutStatus, now: number): boolean =>
  status.state === 'running' && leaseIsStale(status.owner, new Date(status.heartbeatAt), now)

export async function rolloutStatus(id: string | undefined, flags: RolloutStatusFlags): Promise<number> {
  const ctx = makeContext(flags)
  const intervalMs = parseDuration(flags.interval ?? '2s', '--interval')
  if (intervalMs < MIN_INTERVAL_MS) throw new UsageError(`--interval must be at least ${MIN_INTERVAL_MS}ms, got ${JSON.stringify(flags.interval)}`)
  const { out } = ctx
  const view = (status: RolloutStatus): string =>
    renderStatus(status, { color: out.color, width: out.stdout.columns ?? 120, all: flags.all === true })
  const show = (status: RolloutStatus): void => (out.json ? printJson(out, status) : void out.stdout.write(`${view(status)}\n`))

  return withStore(ctx.config, async (store) => {
    let status = await readStatus(store, id)
    if (!status) throw new FleetError(id ? `no rollout with id ${id}` : 'no rollout has run yet', ExitCode.usage)
    if (!flags.watch) {
      show(status)
      return ExitCode.ok
    }

    // Watch the rollout we started with, even if a newer one begins meanwhile.
    const stop = new AbortController()
    const onSignal = (): void => stop.abort()
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    try {
      let shown = ''
      for (;;) {
        const done = status.state !== 'running' || isStale(status, Date.now())
        if (out.live) {
          const footer = done ? '' : `\n${palette(out.color).gray(`watching every ${formatDuration(intervalMs)}; Ctrl-C to stop`)}`
          out.stdout.write(`${CLEAR_SCREEN}${view(status)}${footer}\n`)
        } else if (changeKey(status) !== shown) show(status)
        shown = changeKey(status)
        if (done) break
        await sleep(intervalMs, undefined, { signal: stop.signal }).catch(() => {})
        if (stop.signal.aborted) return ExitCode.interrupted
        const next = await readStatus(store, status.id)
        if (!next) throw new FleetError(`rollout ${status.id} disappeared from the store`, ExitCode.internal)
        status = next
      }
      if (isStale(status, Date.now()))
        out.stderr.write(`fleet: rollout ${status.id} is still marked running but its orchestrator is gone (no heartbeat since ${status.heartbeatAt}); not waiting for it (see fleet rollout resume / abort)\n`)
      return ExitCode.ok
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
  })
}
