import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import type { NewRequest } from './requests.js'

/**
 * Requests to a rollout whose embedded store (PGlite) another process holds:
 * the sender cannot open the store, so it leaves a small file in
 * `<database.dir>/requests/` (written whole: temp file + rename). Whoever
 * holds the store next imports it into fleet_requests by its id, then removes
 * the file: a request is never matched by time and never dropped.
 */

export type RequestFile = Omit<NewRequest, 'rolloutId'> & { readonly rolloutId: string | null }

const requestsDir = (storeDir: string): string => join(storeDir, 'requests')

export function writeRequestFile(storeDir: string, request: RequestFile): void {
  const dir = requestsDir(storeDir)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, `${request.id}.tmp`), JSON.stringify(request))
  renameSync(join(dir, `${request.id}.tmp`), join(dir, `${request.id}.json`))
}

/** The files waiting, oldest name first; a file that cannot be read is left for a person (and reported). */
export function readRequestFiles(storeDir: string): { request: RequestFile; path: string }[] {
  let names: string[]
  try {
    names = readdirSync(requestsDir(storeDir)).filter((n) => n.endsWith('.json')).sort()
  } catch {
    return []
  }
  const found: { request: RequestFile; path: string }[] = []
  for (const name of names) {
    const path = join(requestsDir(storeDir), name)
    try {
      found.push({ request: JSON.parse(readFileSync(path, 'utf8')) as RequestFile, path })
    } catch {
      /* half-written by a dying sender: it has no id we could record */
    }
  }
  return found
}

export const removeRequestFile = (path: string): void => rmSync(path, { force: true })
