import { randomUUID } from 'node:crypto'

import type { FleetConfig } from '../config/types.js'
import { leaseIsStale } from './lease.js'
import { isAlive, readDirLock } from '../store/dir-lock.js'
import { openDatabase } from '../store/database.js'
import { writeRequestFile, type RequestFile } from '../store/request-files.js'
import { Store } from '../store/store.js'

/**
 * How pause and promote requests reach the rollout in progress: a row of
 * fleet_requests, consumed once by id by whoever drives it (or by the next
 * command that takes it over). The embedded PGlite store is open in one
 * process only, so a request to a rollout that process drives waits as a file
 * beside the store until that process takes it in (store/request-files.ts).
 */

export const newRequestId = (): string => randomUUID()

/** Who runs the rollout now, if a live process does: the lease holder by the database's clock (Postgres) or the store's lock holder (PGlite). */
export async function liveHolder(config: FleetConfig, open: () => Promise<Store | null>): Promise<string | null> {
  if (!config.database.url) {
    const lock = readDirLock(config.database.dir)
    // Only a process running a rollout takes requests in; a reader holds the store for a moment only.
    const runsRollout = /\b(rollout (start|resume|promote|tick|abort)|demo)\b/.test(lock?.command ?? '')
    return lock && runsRollout && isAlive(lock.pid) ? `pid ${lock.pid} on ${lock.host} (fleet ${lock.command ?? ''})` : null
  }
  const store = await open()
  const lease = await store!.leaseState()
  if (!lease.holder || !lease.heartbeatAt) return null
  return leaseIsStale(lease.holder, lease.heartbeatAt, lease.now.getTime()) ? null : lease.holder
}

/** Records a request for the rollout in progress: a row (Postgres), or a file for the process holding the embedded store. */
export async function sendRequest(config: FleetConfig, store: Store | null, rolloutId: string | null, request: Omit<RequestFile, 'rolloutId'>): Promise<void> {
  if (store && rolloutId) await store.addRequest({ ...request, rolloutId })
  else writeRequestFile(config.database.dir, { ...request, rolloutId })
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
