import { createHash } from 'node:crypto'
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

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

/** The bookkeeping of a snapshot; what it holds (`D`) is defined by its readers (cli/snapshot-data.ts). */
export interface SnapshotMeta {
  readonly version: number
  readonly writtenAt: string
  readonly pid: number
  /** The `since` of the directory lock the writer held: ties a live snapshot to that holder. */
  readonly lockSince: string
  /** Written at close: exact while `fingerprint` matches the store. */
  readonly final: boolean
  readonly fingerprint: string | null
}

export type StoreSnapshot<D extends object> = SnapshotMeta & D

/** A digest of PGlite's control file, which changes on every open and close of the store. */
export function storeFingerprint(dir: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(join(dir, 'global', 'pg_control'))).digest('hex')
  } catch {
    return null
  }
}

export function writeSnapshot<D extends object>(dir: string, data: D, meta: { lockSince: string; final: boolean }): void {
  const path = join(dir, FILE)
  const snapshot: StoreSnapshot<D> = {
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

export function readSnapshot<D extends object>(dir: string): StoreSnapshot<D> | null {
  try {
    const snapshot = JSON.parse(readFileSync(join(dir, FILE), 'utf8')) as StoreSnapshot<D>
    return snapshot.version === VERSION ? snapshot : null
  } catch {
    return null
  }
}
