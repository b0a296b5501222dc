import { createHash } from 'node:crypto'
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import type { HistoryEntry } from '../rollout/history.js'
import type { RolloutStatus } from '../rollout/status.js'
import type { HostRow } from './store.js'

/**
 * What the read-only commands need of the embedded store, kept in `<dir>/snapshot.json`.
 * PGlite can be open in one process only, and opening it costs about a second; so
 *  - the process holding the store (a rollout) rewrites it while it runs (`final: false`): other
 *    shells read it, saying when and by which pid it was written;
 *  - every process closing the store writes it last (`final: true`) with the fingerprint of the
 *    store's control file after the close. PGlite rewrites that file whenever it opens or closes
 *    the store, so a snapshot whose fingerprint still matches is exactly the store's content.
 */
const FILE = 'snapshot.json'
const VERSION = 1

export interface SnapshotData {
  /** Every row of fleet's hosts table (updatedAt as ISO text). */
  readonly hosts: readonly SnapshotHost[]
  /** The configured inventory.query and its rows, when the writer had one. */
  readonly inventory: { readonly query: string; readonly rows: readonly Record<string, unknown>[] } | null
  /** Newest first, up to the largest `history --limit`. */
  readonly history: readonly HistoryEntry[]
  /** The most recently started rollout. */
  readonly latest: RolloutStatus | null
}

export type SnapshotHost = Omit<HostRow, 'updatedAt'> & { readonly updatedAt: string | null }

export interface StoreSnapshot extends SnapshotData {
  readonly version: number
  readonly writtenAt: string
  readonly pid: number
  /** The `since` of the directory lock the writer held: ties a live snapshot to that holder. */
  readonly lockSince: string
  /** Written at close: exact while `fingerprint` matches the store. */
  readonly final: boolean
  readonly fingerprint: string | null
}

/** A digest of PGlite's control file, which changes on every open and close of the store. */
export function storeFingerprint(dir: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(join(dir, 'global', 'pg_control'))).digest('hex')
  } catch {
    return null
  }
}

export function writeSnapshot(dir: string, data: SnapshotData, meta: { lockSince: string; final: boolean }): void {
  const path = join(dir, FILE)
  const snapshot: StoreSnapshot = {
    version: VERSION,
    writtenAt: new Date().toISOString(),
    pid: process.pid,
    lockSince: meta.lockSince,
    final: meta.final,
    fingerprint: meta.final ? storeFingerprint(dir) : null,
    ...data,
  }
  // Write then rename: a reader never sees half a file.
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(snapshot), { mode: 0o600 })
  renameSync(tmp, path)
}

export function readSnapshot(dir: string): StoreSnapshot | null {
  try {
    const snapshot = JSON.parse(readFileSync(join(dir, FILE), 'utf8')) as StoreSnapshot
    return snapshot.version === VERSION ? snapshot : null
  } catch {
    return null
  }
}
