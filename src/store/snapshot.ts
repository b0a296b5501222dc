import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import type { RolloutStatus } from '../rollout/status.js'

/**
 * The embedded PGlite store can be open in one process only. While a rollout
 * holds it, that process keeps a status snapshot next to it so
 * `fleet rollout status` works from another shell.
 */
const FILE = 'status.json'

export interface StatusSnapshot {
  readonly writtenAt: string
  readonly pid: number
  readonly status: RolloutStatus
}

export function writeStatusSnapshot(dir: string, status: RolloutStatus): void {
  const path = join(dir, FILE)
  const snapshot: StatusSnapshot = { writtenAt: new Date().toISOString(), pid: process.pid, status }
  // Write then rename: a reader never sees half a file.
  writeFileSync(`${path}.${process.pid}.tmp`, JSON.stringify(snapshot))
  renameSync(`${path}.${process.pid}.tmp`, path)
}

export function readStatusSnapshot(dir: string): StatusSnapshot | null {
  try {
    return JSON.parse(readFileSync(join(dir, FILE), 'utf8')) as StatusSnapshot
  } catch {
    return null
  }
}
