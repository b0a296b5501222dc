/**
 * One migrated PGlite store shared by every test file of a run (and by later runs of the same
 * code): creating one costs ~6 s of CPU (initdb and migrations), copying it ~0.3 s. It lives in
 * the temp dir under a name made from the store code and PGlite's version, so a change to either
 * builds a new one; it is written whole, then renamed into place, so a file never sees half of it.
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { mkdtemp, rename, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import { openDatabase } from '../../src/store/database.js'
import { REPO_ROOT } from './origin.js'

function key(): string {
  const hash = createHash('sha256')
  const store = path.join(REPO_ROOT, 'src', 'store')
  for (const name of readdirSync(store).sort()) hash.update(name).update(readFileSync(path.join(store, name)))
  hash.update(readFileSync(path.join(REPO_ROOT, 'node_modules', '@electric-sql', 'pglite', 'package.json')))
  return hash.digest('hex').slice(0, 16)
}

let shared: Promise<string> | null = null

export function pgliteTemplate(): Promise<string> {
  shared ??= (async () => {
    const dir = path.join(os.tmpdir(), `fleet-pglite-template-${key()}`)
    if (existsSync(path.join(dir, 'PG_VERSION'))) return dir
    const building = await mkdtemp(`${dir}.building-`)
    await (await openDatabase({ url: null, dir: building })).close()
    try {
      await rename(building, dir)
    } catch {
      // Another test process renamed its own into place first: use that one.
      await rm(building, { recursive: true, force: true })
    }
    return dir
  })()
  return shared
}
