import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import type { FleetConfig } from '../config/types.js'
import type { ControlChannel, ControlRequest } from '../rollout/control.js'
import { leaseIsStale } from '../rollout/lease.js'
import { isAlive, readDirLock } from '../store/dir-lock.js'
import { openDatabase } from '../store/database.js'
import { Store } from '../store/store.js'

/**
 * How pause and promote requests reach a process that is running a rollout.
 * On Postgres they are events in the rollout's log, which the running process
 * polls. The embedded PGlite store is open in that process only, so there
 * they are small files in `<database.dir>/control/`, written whole (temp file
 * + rename) and removed once read.
 */

const REQUEST_TYPES = { pause: 'pause-requested', promote: 'promote-requested' } as const

const controlDir = (config: FleetConfig): string => join(config.database.dir, 'control')
const STALE_REQUEST_MS = 60_000

export function controlChannel(config: FleetConfig, store: Store): ControlChannel {
  if (config.database.url) {
    // Requests made before this process took the rollout over were for an earlier run of it.
    const since = Date.now()
    let seen = 0
    return {
      poll: async (rolloutId) => {
        const events = await store.listEvents(rolloutId, Object.values(REQUEST_TYPES))
        const fresh = events.slice(seen)
        seen = events.length
        return fresh.map((e) => e.data as ControlRequest).filter((r) => Date.parse(r.at) >= since)
      },
    }
  }
  const dir = controlDir(config)
  return {
    poll: async (rolloutId) => {
      let names: string[]
      try {
        names = readdirSync(dir).filter((n) => n.endsWith('.json')).sort()
      } catch {
        return []
      }
      const requests: ControlRequest[] = []
      for (const name of names) {
        const path = join(dir, name)
        try {
          const { rolloutId: target, request } = JSON.parse(readFileSync(path, 'utf8')) as { rolloutId: string | null; request: ControlRequest }
          // The sender cannot open the store the running process holds: null means whichever rollout it runs.
          // A request nobody picked up for long (its rollout ended meanwhile) is not acted on later.
          const fresh = Date.now() - Date.parse(request.at) < STALE_REQUEST_MS
          if (fresh && (target === null || target === rolloutId)) requests.push(request)
        } catch {
          /* unreadable: dropped below */
        }
        rmSync(path, { force: true })
      }
      return requests
    },
  }
}

/** Who runs the rollout now, if a live process does: the lease holder (Postgres) or the store's lock holder (PGlite). */
export async function liveHolder(config: FleetConfig, open: () => Promise<Store | null>): Promise<string | null> {
  if (!config.database.url) {
    const lock = readDirLock(config.database.dir)
    // Only a process running a rollout polls for requests; a reader holds the store for a moment only.
    const runsRollout = /\b(rollout (start|resume|promote|tick|abort)|demo)\b/.test(lock?.command ?? '')
    return lock && runsRollout && isAlive(lock.pid) ? `pid ${lock.pid} on ${lock.host} (fleet ${lock.command ?? ''})` : null
  }
  const store = await open()
  const lease = await store!.leaseState()
  if (!lease.holder || !lease.heartbeatAt) return null
  return leaseIsStale(lease.holder, lease.heartbeatAt, Date.now()) ? null : lease.holder
}

/** Hands a request to the process running `rolloutId`; it acts on it within seconds. */
export async function sendControl(config: FleetConfig, store: Store | null, rolloutId: string | null, request: ControlRequest): Promise<void> {
  if (config.database.url && store && rolloutId) {
    await store.appendEvent({ rolloutId, type: REQUEST_TYPES[request.kind], data: request })
    return
  }
  const dir = controlDir(config)
  mkdirSync(dir, { recursive: true })
  const name = `${Date.now()}-${process.pid}-${request.kind}`
  writeFileSync(join(dir, `${name}.tmp`), JSON.stringify({ rolloutId, request }))
  renameSync(join(dir, `${name}.tmp`), join(dir, `${name}.json`))
}

/** Opens the store only when needed (Postgres), so PGlite held by a running rollout is never touched. */
export async function whoRunsIt(config: FleetConfig): Promise<{ holder: string | null; store: Store | null; close(): Promise<void> }> {
  let database: Awaited<ReturnType<typeof openDatabase>> | null = null
  const holder = await liveHolder(config, async () => {
    database = await openDatabase(config.database)
    return new Store(database)
  })
  const db = database as Awaited<ReturnType<typeof openDatabase>> | null
  return { holder, store: db ? new Store(db) : null, close: async () => void (await db?.close()) }
}

