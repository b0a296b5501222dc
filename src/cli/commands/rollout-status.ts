import { setTimeout as sleep } from 'node:timers/promises'

import { formatDuration, parseDuration } from '../../config/duration.js'
import { FleetError, ExitCode, LockedError, UsageError } from '../../errors.js'
import { leaseIsStale } from '../../rollout/engine.js'
import { buildStatus, type RolloutStatus } from '../../rollout/status.js'
import { renderStatus } from '../../render/status-table.js'
import { palette } from '../../render/style.js'
import type { FleetConfig } from '../../config/types.js'
import { openDatabase, type Database } from '../../store/database.js'
import { readStatusSnapshot } from '../../store/snapshot.js'
import { Store } from '../../store/store.js'
import { makeContext, type GlobalFlags } from '../context.js'
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
  return rollout && buildStatus(rollout, await store.listRolloutHostStates(rollout.id))
}

type ReadStatus = (id?: string) => Promise<RolloutStatus | null>

/**
 * Reads from the store; when the embedded store is held by a running rollout
 * (PGlite is single-process), reads the snapshot that rollout keeps beside it.
 */
async function withStatusSource<T>(config: FleetConfig, stderr: NodeJS.WritableStream, fn: (read: ReadStatus) => Promise<T>): Promise<T> {
  let database: Database
  try {
    database = await openDatabase(config.database)
  } catch (error) {
    const dir = config.database.dir
    if (!(error instanceof LockedError) || config.database.url || !readStatusSnapshot(dir)) throw error
    stderr.write(`fleet: the embedded store is in use by the running rollout; showing the snapshot it keeps (updated every second)\n`)
    return fn(async (id) => {
      const snapshot = readStatusSnapshot(dir)
      if (!snapshot) return null
      if (id && snapshot.status.id !== id) throw new LockedError(`${error.message}; only the running rollout ${snapshot.status.id} can be shown until it finishes`)
      return snapshot.status
    })
  }
  try {
    const store = new Store(database)
    return await fn((id) => readStatus(store, id))
  } finally {
    await database.close()
  }
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

  return withStatusSource(ctx.config, out.stderr, async (readStatus) => {
    let status = await readStatus(id)
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
        const next = await readStatus(status.id)
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
