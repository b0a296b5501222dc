import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'

import { LockedError } from '../errors.js'

export interface DirLock {
  /** When we took it (ties a snapshot we write to this hold of the lock). */
  readonly since: string
  release(): void
}

export interface LockInfo {
  pid: number
  host: string
  since: string
  command?: string
}

export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** A lock left by a process of this machine that no longer exists. */
export const lockHolderGone = (holder: LockInfo): boolean => holder.host === hostname() && !isAlive(holder.pid)

export const readDirLock = (dir: string): LockInfo | null => {
  try {
    return JSON.parse(readFileSync(join(dir, 'fleet.lock'), 'utf8')) as LockInfo
  } catch {
    return null
  }
}

/**
 * An exclusive lock on the embedded store's directory (a lock file with our
 * pid). A lock left by a dead process on this machine is taken over.
 */
export function acquireDirLock(dir: string): DirLock {
  const path = join(dir, 'fleet.lock')
  for (let attempt = 0; attempt < 2; attempt++) {
    // Write the whole file first, then link it into place: link() fails atomically if the
    // lock exists, and a reader never sees an empty or half-written lock.
    const info: LockInfo = { pid: process.pid, host: hostname(), since: new Date().toISOString(), command: process.argv.slice(2).join(' ') }
    const tmp = `${path}.${process.pid}.tmp`
    writeFileSync(tmp, JSON.stringify(info), { mode: 0o600 })
    try {
      try {
        linkSync(tmp, path)
      } finally {
        rmSync(tmp, { force: true })
      }
      let released = false
      return {
        since: info.since,
        release() {
          if (released) return
          released = true
          rmSync(path, { force: true })
        },
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      const holder = readDirLock(dir)
      if (holder && lockHolderGone(holder)) {
        rmSync(path, { force: true })
        continue
      }
      throw new LockedError(
        holder
          ? `the embedded store ${dir} is in use by pid ${holder.pid} on ${holder.host} since ${holder.since} (${holder.command ?? 'fleet'})`
          : `the embedded store ${dir} is in use by another fleet process`,
      )
    }
  }
  throw new LockedError(`the embedded store ${dir} is in use by another fleet process`)
}
