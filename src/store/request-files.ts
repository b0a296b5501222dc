import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import type { NewRequest } from './requests.js'

/**
 * Requests to a rollout whose embedded store (PGlite) another process holds:
 * the sender cannot open the store, so it leaves a small file in
 * `<database.dir>/requests/` (written whole: temp file + rename), addressed to
 * the process holding the store (its pid and lock time). That process imports
 * it into fleet_requests by its id for the rollout it drives, then removes the
 * file. The sender waits for that and withdraws a file nobody took in, so a
 * request is never matched by time, never dropped silently, and never taken
 * in by a later, unrelated rollout.
 */

export type RequestFile = Omit<NewRequest, 'rolloutId'> & {
  readonly rolloutId: string | null
  /** The process it was sent to; another process that finds it records it as not applied. */
  readonly to?: { readonly pid: number; readonly since: string }
}

const requestsDir = (storeDir: string): string => join(storeDir, 'requests')
const fileOf = (storeDir: string, id: string): string => join(requestsDir(storeDir), `${id}.json`)

export function writeRequestFile(storeDir: string, request: RequestFile): void {
  const dir = requestsDir(storeDir)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, `${request.id}.tmp`), JSON.stringify(request))
  renameSync(join(dir, `${request.id}.tmp`), fileOf(storeDir, request.id))
}

/**
 * Claims the files waiting (a rename the sender's withdrawal cannot also win), oldest name first,
 * with those a dead importer claimed but did not record. Remove each once recorded.
 */
export function claimRequestFiles(storeDir: string): { request: RequestFile; path: string }[] {
  let names: string[]
  try {
    names = readdirSync(requestsDir(storeDir)).filter((n) => n.endsWith('.json') || n.endsWith('.taking')).sort()
  } catch {
    return []
  }
  const found: { request: RequestFile; path: string }[] = []
  for (const name of names) {
    let path = join(requestsDir(storeDir), name)
    if (name.endsWith('.json')) {
      const taking = path.replace(/\.json$/, '.taking')
      try {
        renameSync(path, taking)
      } catch {
        continue // withdrawn by its sender meanwhile
      }
      path = taking
    }
    try {
      found.push({ request: JSON.parse(readFileSync(path, 'utf8')) as RequestFile, path })
    } catch {
      /* unreadable: it has no id we could record */
    }
  }
  return found
}

export const removeRequestFile = (path: string): void => rmSync(path, { force: true })

/** The holder imported it (and removed the file). */
export const requestFileTakenIn = (storeDir: string, id: string): boolean => !existsSync(fileOf(storeDir, id))

/** Takes a file back before anyone imports it: false when the holder took it in first (the rename is the race's one winner). */
export function withdrawRequestFile(storeDir: string, id: string): boolean {
  const withdrawn = join(requestsDir(storeDir), `${id}.withdrawn`)
  try {
    renameSync(fileOf(storeDir, id), withdrawn)
  } catch {
    return false
  }
  rmSync(withdrawn, { force: true })
  return true
}

/** What the holder did with a request that came as a file: its sender reads it (and removes it). */
export interface RequestAnswer {
  readonly outcome: string
  readonly rolloutId: string
}

const answerOf = (storeDir: string, id: string): string => join(requestsDir(storeDir), `${id}.answer`)

export function writeAnswerFile(storeDir: string, id: string, answer: RequestAnswer): void {
  const tmp = `${answerOf(storeDir, id)}.tmp`
  writeFileSync(tmp, JSON.stringify(answer))
  renameSync(tmp, answerOf(storeDir, id))
}

/** The answer, once written (and then removed); null while there is none. */
export function takeAnswerFile(storeDir: string, id: string): RequestAnswer | null {
  try {
    const answer = JSON.parse(readFileSync(answerOf(storeDir, id), 'utf8')) as RequestAnswer
    rmSync(answerOf(storeDir, id), { force: true })
    return answer
  } catch {
    return null
  }
}

